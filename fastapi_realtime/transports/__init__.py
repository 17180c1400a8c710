"""I/O: ASGI <-> Engine.IO session. Knows nothing of Socket.IO."""
