"""Sans-I/O Engine.IO v4: packets, payloads, the handshake and the session state machine. Standard library only."""
