"""Why a connection or a namespace connection ended: Node's exact strings, one list of them."""

from __future__ import annotations

from enum import StrEnum


class DisconnectReason(StrEnum):
    """Handlers receive these (a StrEnum: each is also the plain string Node uses)."""

    TRANSPORT_CLOSE = "transport close"
    TRANSPORT_ERROR = "transport error"
    PING_TIMEOUT = "ping timeout"
    PARSE_ERROR = "parse error"
    FORCED_CLOSE = "forced close"
    FORCED_SERVER_CLOSE = "forced server close"
    SERVER_SHUTTING_DOWN = "server shutting down"
    CLIENT_NAMESPACE_DISCONNECT = "client namespace disconnect"
    SERVER_NAMESPACE_DISCONNECT = "server namespace disconnect"


RECOVERABLE_REASONS: frozenset[DisconnectReason] = frozenset(
    {
        DisconnectReason.TRANSPORT_ERROR,
        DisconnectReason.TRANSPORT_CLOSE,
        DisconnectReason.FORCED_CLOSE,
        DisconnectReason.PING_TIMEOUT,
        DisconnectReason.SERVER_SHUTTING_DOWN,
        DisconnectReason.FORCED_SERVER_CLOSE,
    }
)
