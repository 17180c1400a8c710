"""The server's options: frozen, keyword-only, validated at construction, declared once.

EngineOptions and ServerOptions hold the defaults; Settings names every one of them for the
type checker (a test keeps the three in step), so `Realtime(**settings)` repeats none.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal, TypedDict

if TYPE_CHECKING:
    from starlette.requests import HTTPConnection

TRANSPORTS = ("polling", "websocket")
Transport = Literal["polling", "websocket"]
Transports = Transport | Sequence[Transport]
AllowRequest = Callable[["HTTPConnection"], Awaitable[bool | str | None]]
PARSERS = ("default", "msgpack")
Parser = Literal["default", "msgpack"]


def _positive(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineOptions:
    """Engine.IO settings (protocol.md §1.9). Durations are in seconds."""

    ping_interval: float = 25.0
    ping_timeout: float = 20.0
    upgrade_timeout: float = 10.0
    max_http_buffer_size: int = 1_000_000
    # A name or a sequence of names; stored as a tuple.
    transports: Transports = ("polling", "websocket")
    allow_upgrades: bool = True
    # None: same origin only; "*": any origin; a sequence: those origins besides the same origin.
    cors_allowed_origins: str | Sequence[str] | None = None
    cors_credentials: bool = False
    allow_request: AllowRequest | None = None
    cookie: str | None = None
    # Outgoing packets buffered for one connection before it counts as too slow and is closed.
    max_queue: int = 1024
    # Sessions that have not yet joined a namespace (each holds a session and its timers):
    # over this, new handshakes get 503 so a flood of bare handshakes cannot exhaust memory.
    max_pending_sessions: int = 1000
    close_timeout: float = 5.0
    # Polling responses of at least http_compression_threshold bytes are sent gzip- or
    # deflate-encoded when the client accepts it (Node's httpCompression).
    http_compression: bool = True
    http_compression_threshold: int = 1024
    _origins: frozenset[str] = field(init=False, repr=False, default=frozenset())

    def __post_init__(self) -> None:
        for name in ("ping_interval", "ping_timeout", "upgrade_timeout", "close_timeout"):
            _positive(name, getattr(self, name))
        for name in ("max_http_buffer_size", "max_queue", "max_pending_sessions", "http_compression_threshold"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("allow_upgrades", "cors_credentials", "http_compression"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")
        # One name is one transport; tuple("websocket") would be its letters.
        transports = (self.transports,) if isinstance(self.transports, str) else tuple(self.transports)
        if not transports or any(t not in TRANSPORTS for t in transports) or len(set(transports)) != len(transports):
            raise ValueError(f"transports must be a non-empty subset of {TRANSPORTS}, got {self.transports!r}")
        object.__setattr__(self, "transports", transports)
        origins = self.cors_allowed_origins
        if isinstance(origins, str):
            if origins != "*":
                origins = (origins,)
        elif origins is not None:
            origins = tuple(origins)
            if not all(isinstance(o, str) for o in origins):
                raise ValueError("cors_allowed_origins must hold strings")
        object.__setattr__(self, "cors_allowed_origins", origins)
        if origins is not None and origins != "*":
            object.__setattr__(self, "_origins", frozenset(o.rstrip("/") for o in origins))
        hook = self.allow_request
        if hook is not None and not (
            inspect.iscoroutinefunction(hook) or inspect.iscoroutinefunction(getattr(hook, "__call__", None))
        ):
            raise ValueError("allow_request must be an async callable (async def)")
        if self.cookie is not None and (not isinstance(self.cookie, str) or not self.cookie):
            raise ValueError("cookie must be a cookie name or None")

    @property
    def compression_threshold(self) -> int | None:
        """The smallest polling body that is compressed; None when compression is off."""
        return self.http_compression_threshold if self.http_compression else None

    def origin_allowed(self, origin: str, same_origin: str) -> bool:
        # The app's own pages are never cross-origin: a list adds origins, it does not replace them.
        if self.cors_allowed_origins == "*" or origin == same_origin:
            return True
        if self.cors_allowed_origins is None:
            return False
        return origin.rstrip("/") in self._origins


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerOptions:
    """The Socket.IO server's own settings (the engine's are EngineOptions). Durations in seconds."""

    path: str = "/socket.io"
    # From the handshake to the first namespace connection; over it the connection is closed.
    connect_timeout: float = 45.0
    max_attachments: int = 10
    # Incoming packets waiting for one client's handlers: over this the server stops reading
    # from that client until they catch up (the outgoing queue is EngineOptions.max_queue).
    max_pending_events: int = 1024
    # The Socket.IO packet format: "default" (JSON text and binary attachments) or "msgpack"
    # (npm socket.io-msgpack-parser's; needs the msgpack extra). Every client must use the same.
    parser: Parser = "default"
    docs: bool = True
    # None: taken from the FastAPI app serving the docs.
    docs_title: str | None = None
    docs_version: str | None = None
    docs_description: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.path, str) or not self.path.startswith("/"):
            raise ValueError(f"path must start with '/', got {self.path!r}")
        object.__setattr__(self, "path", self.path.rstrip("/") or "/")
        _positive("connect_timeout", self.connect_timeout)
        if isinstance(self.max_attachments, bool) or not isinstance(self.max_attachments, int) or self.max_attachments < 0:
            raise ValueError("max_attachments must be a non-negative integer")
        value = self.max_pending_events
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"max_pending_events must be a positive integer, got {value!r}")
        if self.parser not in PARSERS:
            raise ValueError(f"parser must be one of {PARSERS}, got {self.parser!r}")
        if not isinstance(self.docs, bool):
            raise ValueError("docs must be a bool")
        for name in ("docs_title", "docs_version", "docs_description"):
            text = getattr(self, name)
            if text is not None and not isinstance(text, str):
                raise ValueError(f"{name} must be a str or None")


class Settings(TypedDict, total=False):
    """Every keyword of EngineOptions and ServerOptions, as `Realtime(...)` takes them."""

    # EngineOptions
    ping_interval: float
    ping_timeout: float
    upgrade_timeout: float
    max_http_buffer_size: int
    transports: Transports
    allow_upgrades: bool
    cors_allowed_origins: str | Sequence[str] | None
    cors_credentials: bool
    allow_request: AllowRequest | None
    cookie: str | None
    max_queue: int
    max_pending_sessions: int
    close_timeout: float
    http_compression: bool
    http_compression_threshold: int
    # ServerOptions
    path: str
    connect_timeout: float
    max_attachments: int
    max_pending_events: int
    parser: Parser
    docs: bool
    docs_title: str | None
    docs_version: str | None
    docs_description: str | None


ENGINE_SETTINGS = frozenset(f.name for f in fields(EngineOptions) if f.init)
SERVER_SETTINGS = frozenset(f.name for f in fields(ServerOptions) if f.init)


def split_settings(settings: Settings) -> tuple[EngineOptions, ServerOptions]:
    """The two option objects; a keyword neither knows is a TypeError, as a misspelt argument is."""
    given: dict[str, Any] = dict(settings)
    unknown = sorted(given.keys() - ENGINE_SETTINGS - SERVER_SETTINGS)
    if unknown:
        raise TypeError(f"Realtime() got unexpected keyword arguments: {', '.join(map(repr, unknown))}")
    engine = EngineOptions(**{k: v for k, v in given.items() if k in ENGINE_SETTINGS})
    server = ServerOptions(**{k: v for k, v in given.items() if k in SERVER_SETTINGS})
    return engine, server
