"""Socket.IO-compatible realtime endpoints (Engine.IO v4, Socket.IO v5) for FastAPI and Starlette."""

from .adapters import Adapter, BroadcastOptions, MemoryAdapter
from .broadcast import BroadcastOperator, RemoteSocket
from .dependencies import Auth, CurrentRealtime, CurrentSocket
from .exceptions import (
    AckTimeoutError,
    ConnectionRejected,
    DisconnectedError,
    LocalProtocolError,
    ProtocolError,
    RealtimeError,
    EventValidationError,
    RemoteProtocolError,
)
from .namespace import Namespace
from .reasons import DisconnectReason
from .recovery import MemoryRecoveryStore, RecoveryOptions, RecoveryStore, SessionSnapshot
from .router import RealtimeRouter
from .server import Realtime
from .socket import Handshake, Socket
from ._version import __version__

__all__ = [
    "DisconnectReason",
    "AckTimeoutError",
    "Auth",
    "CurrentRealtime",
    "CurrentSocket",
    "EventValidationError",
    "Adapter",
    "BroadcastOperator",
    "BroadcastOptions",
    "ConnectionRejected",
    "DisconnectedError",
    "Handshake",
    "LocalProtocolError",
    "MemoryAdapter",
    "MemoryRecoveryStore",
    "Namespace",
    "ProtocolError",
    "RealtimeError",
    "Realtime",
    "RealtimeRouter",
    "RecoveryOptions",
    "RecoveryStore",
    "RemoteProtocolError",
    "RemoteSocket",
    "SessionSnapshot",
    "Socket",
    "__version__",
]
