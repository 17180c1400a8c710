"""Admin UI compatibility: the server side of @socket.io/admin-ui 0.5 (protocol.md §10).

    from fastapi_realtime.admin import BasicAuth, instrument
    instrument(realtime, auth=BasicAuth("admin", "$2b$10$..."), mode="development")
    # or: realtime.instrument(auth=BasicAuth("admin", "$2b$10$..."))

The UI is fed by an `AdminObserver` installed with `realtime.observe` (fastapi_realtime.observe).
Basic auth needs the `admin` extra (bcrypt), imported only when BasicAuth is used.
"""

from ..observe import Observer  # the seam's base class (kept importable from here)
from .auth import BasicAuth, MemorySessionStore, SessionStore, hash_password
from .instrument import Instrumentation, Mode, instrument
from .observer import AdminObserver

__all__ = [
    "AdminObserver",
    "BasicAuth",
    "Instrumentation",
    "MemorySessionStore",
    "Mode",
    "Observer",
    "SessionStore",
    "hash_password",
    "instrument",
]
