"""Admin namespace authentication, as @socket.io/admin-ui 0.5 does it (protocol.md §10).

Basic credentials whose password is stored as a bcrypt hash (the same `$2a$`/`$2b$` hashes
Node's bcryptjs makes), and session ids the UI reconnects with instead of the password.
bcrypt is an optional dependency (`pip install "fastapi-realtime[admin]"`), imported lazily.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol

# bcrypt ignores what follows the 72nd byte; bcrypt 5 raises instead, bcryptjs truncates: truncate
# too, so that a hash made in Node matches the same password here.
BCRYPT_MAX_BYTES = 72
INVALID_CREDENTIALS = "invalid credentials"  # the UI matches this message exactly


def _bcrypt() -> ModuleType:
    try:
        import bcrypt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "admin basic auth needs bcrypt: pip install \"fastapi-realtime[admin]\" (or bcrypt>=4)"
        ) from exc
    return bcrypt


def hash_password(password: str, rounds: int = 10) -> str:
    """A bcrypt hash of `password`, for `BasicAuth(password=...)` (Node: `bcrypt.hashSync`)."""
    raw = password.encode()[:BCRYPT_MAX_BYTES]
    hashed: bytes = _bcrypt().hashpw(raw, _bcrypt().gensalt(rounds))
    return hashed.decode()


@dataclass(frozen=True, slots=True)
class BasicAuth:
    """`{type: "basic", username, password}`: `password` is a bcrypt hash, never the password."""

    username: str
    password: str

    def __post_init__(self) -> None:
        if not isinstance(self.username, str) or not isinstance(self.password, str):
            raise TypeError("username and password must be strings")
        bcrypt = _bcrypt()
        try:
            # Checking any password against it parses the hash (Node checks with getRounds).
            bcrypt.checkpw(b"", self.password.encode())
        except ValueError:
            raise ValueError("the `password` field must be a valid bcrypt hash") from None

    async def verify(self, username: Any, password: Any) -> bool:
        if not isinstance(username, str) or not isinstance(password, str):
            return False
        if not secrets.compare_digest(username.encode(), self.username.encode()):
            return False
        raw = password.encode(errors="replace")[:BCRYPT_MAX_BYTES]
        hashed = self.password.encode()
        # bcrypt takes tens of milliseconds by design: off the event loop.
        return bool(await asyncio.to_thread(_bcrypt().checkpw, raw, hashed))


class SessionStore(Protocol):
    """Where admin session ids live (Node's `store` option; in memory by default)."""

    async def exists(self, session_id: str) -> bool: ...

    async def save(self, session_id: str) -> None: ...


class MemorySessionStore:
    """Session ids in this process, the oldest forgotten past `max_sessions` (Node keeps them all)."""

    def __init__(self, max_sessions: int = 10_000) -> None:
        self.max_sessions = max_sessions
        self._ids: OrderedDict[str, None] = OrderedDict()

    async def exists(self, session_id: str) -> bool:
        return session_id in self._ids

    async def save(self, session_id: str) -> None:
        self._ids[session_id] = None
        while len(self._ids) > self.max_sessions:
            self._ids.popitem(last=False)


def new_session_id() -> str:
    return secrets.token_hex(8)  # 16 hex characters, as Node's randomBytes(8)
