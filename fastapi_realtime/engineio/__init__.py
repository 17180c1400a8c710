"""Sans-I/O Engine.IO v4: packets and payloads. Standard library only."""
