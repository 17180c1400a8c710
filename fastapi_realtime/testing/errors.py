"""The test client's own error: a refused connection, at the handshake or at the CONNECT."""

from __future__ import annotations

from typing import Any

from ..exceptions import RealtimeError

__all__ = ["ConnectionRefused"]


class ConnectionRefused(RealtimeError, ConnectionRefusedError):
    """The server refused the connection: a CONNECT_ERROR packet, or a refused handshake.

    `message` and `data` are those of the CONNECT_ERROR (`data` is None when absent); for a
    refused handshake, `data` holds the HTTP status or the WebSocket close code.
    """

    def __init__(self, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data
