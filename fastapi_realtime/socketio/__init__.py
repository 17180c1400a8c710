"""Sans-I/O Socket.IO v5: packets, binary attachments, the decoder. Standard library only."""
