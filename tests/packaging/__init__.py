"""The package as a user installs it: wheel, metadata, lowest allowed dependency versions."""
