"""Socket.IO-compatible realtime endpoints (Engine.IO v4, Socket.IO v5) for FastAPI and Starlette."""

from ._version import __version__
from .adapters import Adapter, BroadcastOptions, MemoryAdapter
from .asyncapi.routes import docs_routes
from .broadcast import BroadcastOperator, RemoteSocket
from .dependencies import Auth, CurrentRealtime, CurrentSocket
from .exceptions import (
    AckTimeoutError,
    ConnectionRejected,
    DisconnectedError,
    EventValidationError,
    LocalProtocolError,
    ProtocolError,
    RealtimeError,
    RemoteProtocolError,
)
from .namespace import Namespace
from .reasons import DisconnectReason
from .recovery import MemoryRecoveryStore, RecoveryOptions, RecoveryStore, SessionSnapshot
from .router import RealtimeRouter
from .server import Realtime
from .socket import Handshake, Socket

# The AsyncAPI docs are built on the server and never imported by it: the package entry, above
# both, installs their routes on every Realtime (`<path>/asyncapi.json`, `<path>/asyncapi`;
# `Realtime(docs=False)` turns them off). Importing any fastapi_realtime module runs this first.
if docs_routes not in Realtime.route_extensions:
    Realtime.route_extensions.append(docs_routes)

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
