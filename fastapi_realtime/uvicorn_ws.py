"""An opt-in uvicorn WebSocket protocol that coalesces writes: one socket write per event-loop
iteration per connection, instead of one per frame.

uvicorn's websockets-sansio protocol writes every outgoing frame with its own
``transport.write``, which on an idle socket is one ``send()`` syscall each. A broadcast that
emits several messages per loop iteration pays that syscall per message per client; profiling
put it at most of a delivery's CPU. This protocol is uvicorn's own, with its transport wrapped
so that writes made during one iteration are joined and written once, at the start of the
next (one ``loop.call_soon`` per iteration serves all connections). Everything else
(handshake, keepalive, close, flow control) is uvicorn's code unchanged.

Enable it (uvicorn's ``--ws`` takes an import string or a class)::

    uvicorn app:app --ws fastapi_realtime.uvicorn_ws:CoalescingWebSocketProtocol
    uvicorn.run(app, ws=CoalescingWebSocketProtocol)

Disable it by going back to the stock protocol: ``--ws websockets-sansio``. It builds on
uvicorn internals, so importing this module checks that uvicorn is a release it was tested
with (SUPPORTED_UVICORN) and that the parts it relies on are still there, and raises
UnsupportedUvicornError (an ImportError) otherwise.

Guarantees kept:
- order: every write of the connection (frames, pings, close frames, HTTP responses) goes
  through the same buffer, and ``close()`` writes what is pending before closing;
- backpressure: pending bytes are handed to the real transport as soon as they reach
  FLUSH_BYTES, so its high-water mark pauses the protocol (``pause_writing``) as before and
  ``send()`` waits on it; what is held back here never exceeds FLUSH_BYTES per connection;
- a lost connection drops what is pending (it could not be delivered anyway).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import uvicorn
from uvicorn.protocols.websockets import websockets_sansio_impl

__all__ = [
    "SUPPORTED_UVICORN",
    "TESTED_UVICORN",
    "CoalescingWebSocketProtocol",
    "UnsupportedUvicornError",
    "check_uvicorn",
]

# The releases this module was run against (tests/uvicorn_ws/test_uvicorn_versions.py); the
# range is what check_uvicorn() accepts. A newer uvicorn must be tested before it is added.
TESTED_UVICORN = ("0.52.1", "0.52.2", "0.52.3", "0.52.4", "0.53.0", "0.54.0", "0.55.0")
_LOWEST = (0, 52, 1)
_BELOW = (0, 56, 0)
SUPPORTED_UVICORN = ">=0.52.1,<0.56"

# Pending bytes are written at once past this size: large messages do not wait (or get copied
# into a join) and the per-connection buffer stays bounded; the transport's own flow control
# (pause_writing at its high-water mark, 64 KiB by default) takes over from there.
FLUSH_BYTES = 64 * 1024

_DISABLE_HINT = (
    "serve with uvicorn's own protocol instead: `--ws websockets-sansio` (or "
    "uvicorn.run(..., ws='websockets-sansio')), or install a supported uvicorn "
    f"(pip install 'uvicorn{SUPPORTED_UVICORN}')"
)


class UnsupportedUvicornError(ImportError):
    """This uvicorn is not one the coalescing protocol was built and tested for."""


def _version_tuple(version: str) -> tuple[int, int, int] | None:
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", version)
    if match is None:
        return None
    return int(match[1]), int(match[2]), int(match[3] or 0)


def _problems(base: Any, version: str) -> list[str]:
    found: list[str] = []
    parsed = _version_tuple(version)
    if parsed is None or not (_LOWEST <= parsed < _BELOW):
        found.append(f"uvicorn {version} is outside {SUPPORTED_UVICORN}")
    if not isinstance(base, type) or not issubclass(base, asyncio.Protocol):
        return [*found, "uvicorn has no WebSocketsSansIOProtocol class"]
    for name in ("connection_made", "connection_lost", "pause_writing", "resume_writing", "send", "shutdown"):
        # uvicorn's own, not asyncio.Protocol's empty default.
        if not any(name in vars(cls) for cls in base.__mro__ if cls.__module__.startswith("uvicorn.")):
            found.append(f"WebSocketsSansIOProtocol.{name} is missing")
    # What the wrapping relies on: the protocol keeps its transport in `self.transport` (set by
    # connection_made) and writes only through it, and send() waits on `self.writable`, the
    # event pause_writing/resume_writing toggle. Read from the compiled code, not assumed.
    uses = {
        "connection_made": ("transport",),
        "send": ("writable", "wait", "transport", "write"),
        "pause_writing": ("writable",),
        "resume_writing": ("writable",),
    }
    for name, needed in uses.items():
        code = getattr(getattr(base, name, None), "__code__", None)
        names = set(getattr(code, "co_names", ()))
        missing = [n for n in needed if n not in names]
        if missing and f"WebSocketsSansIOProtocol.{name} is missing" not in found:
            found.append(f"WebSocketsSansIOProtocol.{name} no longer uses {', '.join(missing)}")
    return found


def check_uvicorn() -> None:
    """Raise UnsupportedUvicornError unless the installed uvicorn is one this module supports."""
    version = str(getattr(uvicorn, "__version__", "unknown"))
    base = getattr(websockets_sansio_impl, "WebSocketsSansIOProtocol", None)
    problems = _problems(base, version)
    if problems:
        raise UnsupportedUvicornError(
            f"fastapi_realtime.uvicorn_ws supports uvicorn{SUPPORTED_UVICORN} (tested: "
            f"{', '.join(TESTED_UVICORN)}), not this one: {'; '.join(problems)}. To turn it off, "
            f"{_DISABLE_HINT}."
        )


check_uvicorn()


class _Flusher:
    """One callback per loop iteration flushes every connection written to in it. With a
    handle per connection, request/response traffic (one frame per connection per iteration,
    nothing to join) cost more CPU per round trip than with uvicorn's own protocol."""

    __slots__ = ("_loop", "_dirty")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._dirty: list[_CoalescingTransport] = []

    def add(self, transport: _CoalescingTransport) -> None:
        if not self._dirty:
            self._loop.call_soon(self._run)
        self._dirty.append(transport)

    def _run(self) -> None:
        dirty, self._dirty = self._dirty, []
        for transport in dirty:
            try:
                transport.flush_scheduled()
            except Exception as exc:  # one connection's fault must not hold the others' bytes
                self._loop.call_exception_handler(
                    {"message": "error flushing a coalesced WebSocket write", "exception": exc}
                )


# One flusher per event loop (uvicorn runs one; tests may run several in turn). A plain dict,
# pruned of closed loops: uvloop's loops cannot be weakly referenced.
_flushers: dict[asyncio.AbstractEventLoop, _Flusher] = {}


def _flusher(loop: asyncio.AbstractEventLoop) -> _Flusher:
    flusher = _flushers.get(loop)
    if flusher is None:
        for old in [old for old in _flushers if old.is_closed()]:
            del _flushers[old]
        flusher = _flushers[loop] = _Flusher(loop)
    return flusher


class _CoalescingTransport(asyncio.Transport):
    """The connection's transport, with writes of one loop iteration joined into one."""

    __slots__ = ("_transport", "_flusher", "_pending", "_pending_size", "_scheduled", "_closed")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._flusher = _flusher(loop)
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._scheduled = False
        self._closed = False

    # -- writing --------------------------------------------------------------------------------
    def write(self, data: bytes | bytearray | memoryview[Any]) -> None:
        if self._closed:
            # After close() nothing is held back: the real transport decides, as it would.
            self._transport.write(data)
            return
        if not data:
            return
        # A copy of a mutable buffer: the caller may reuse it before the flush.
        chunk = data if type(data) is bytes else bytes(data)
        self._pending.append(chunk)
        self._pending_size += len(chunk)
        if self._pending_size >= FLUSH_BYTES:
            self.flush()
        elif not self._scheduled:
            self._scheduled = True
            self._flusher.add(self)

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def flush_scheduled(self) -> None:
        self._scheduled = False
        self.flush()

    def flush(self) -> None:
        """Hand what is pending to the real transport now (one write)."""
        pending = self._pending
        if not pending:
            return
        self._pending = []
        self._pending_size = 0
        if len(pending) == 1:
            self._transport.write(pending[0])
        else:
            # writelines: a scatter write where the transport has one (uvloop, Python 3.12+).
            self._transport.writelines(pending)

    def discard(self) -> None:
        """Drop what is pending: the connection is gone."""
        self._pending = []
        self._pending_size = 0

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + self._pending_size

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    # -- closing: pending bytes first, so a close frame follows the frames sent before it --------
    def close(self) -> None:
        if not self._closed:
            self.flush()
            self._closed = True
        self._transport.close()

    def abort(self) -> None:
        self.discard()
        self._closed = True
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    # -- everything else is the real transport's -------------------------------------------------
    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()


class CoalescingWebSocketProtocol(websockets_sansio_impl.WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol, writing once per loop iteration per connection."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        # Read after super(): uvicorn may have normalised it; every later write goes through us.
        self.coalescer = _CoalescingTransport(self.transport, self.loop)
        self.transport = self.coalescer

    def connection_lost(self, exc: Exception | None) -> None:
        self.coalescer.discard()
        super().connection_lost(exc)
