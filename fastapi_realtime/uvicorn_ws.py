"""An opt-in uvicorn WebSocket protocol that spends less per message than uvicorn's own.

It is uvicorn's websockets-sansio protocol (handshake, keepalive, close handshake, control
frames, deflate and flow control stay uvicorn's and websockets' code) with three changes:

- **Writes are coalesced**: uvicorn writes every outgoing frame with its own
  ``transport.write``, which on an idle socket is one ``send()`` syscall each. A broadcast that
  emits several messages per loop iteration pays that syscall per message per client;
  profiling put it at most of a delivery's CPU. Here the transport is wrapped so that writes
  made during one iteration are joined and written once, at the start of the next (one
  ``loop.call_soon`` per iteration serves all connections).
- **Reading is not paused per message**: uvicorn pauses reading after every message and
  resumes it when the app takes the message: two epoll_ctl calls and a selector update per
  message. Here reading
  pauses only once the messages waiting for the app hold READ_PAUSE_BYTES (or
  READ_PAUSE_MESSAGES), and resumes when they are down to a quarter.
- **Data frames are framed directly**: a text or binary message on an open connection without
  extensions is framed here (the same bytes websockets writes) instead of through websockets'
  Frame objects. With permessage-deflate negotiated, uvicorn's path is taken.

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
- incoming backpressure: per connection, at most READ_PAUSE_BYTES of messages (plus one read
  of the socket, 256 KiB) wait for the app before reading pauses;
- a lost connection drops what is pending (it could not be delivered anyway).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import struct
from typing import Any

import uvicorn
from uvicorn.protocols.websockets import websockets_sansio_impl
from websockets.protocol import Protocol as WebSocketsProtocol
from websockets.protocol import State
from websockets.streams import StreamReader

try:
    from websockets.speedups import apply_mask
except ImportError:  # websockets built without its C extension
    from websockets.utils import apply_mask

_OPEN = State.OPEN

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
        "send": ("writable", "wait", "transport", "write", "conn", "close_sent", "disconnected",
                 "handshake_complete", "initial_response"),
        "pause_writing": ("writable",),
        "resume_writing": ("writable",),
        # Replaced here (messages queue without a pause of reading each): what they must use.
        "send_receive_event_to_app": ("frames", "curr_msg_data_type", "close_sent", "queue",
                                      "read_paused", "pause_reading", "handle_parser_exception"),
        "receive": ("queue", "get", "read_paused", "resume_reading"),
        "connection_lost": ("queue", "put_nowait"),
    }
    for name, needed in uses.items():
        code = getattr(getattr(base, name, None), "__code__", None)
        names = set(getattr(code, "co_names", ()))
        missing = [n for n in needed if n not in names]
        if missing and f"WebSocketsSansIOProtocol.{name} is missing" not in found:
            found.append(f"WebSocketsSansIOProtocol.{name} no longer uses {', '.join(missing)}")
    # Data frames are framed here only while websockets would send them as they are: its
    # send_text/send_binary check these before framing (state OPEN, not mid-fragment).
    for name in ("send_text", "send_binary"):
        code = getattr(getattr(WebSocketsProtocol, name, None), "__code__", None)
        names = set(getattr(code, "co_names", ()))
        missing = [n for n in ("state", "expect_continuation_frame", "send_frame") if n not in names]
        if missing:
            found.append(f"websockets' Protocol.{name} no longer uses {', '.join(missing)}")
    # Incoming frames are parsed here only while websockets' parser waits between two frames:
    # its parse() then sits in StreamReader.at_eof (see _between_frames).
    init_names = set(getattr(getattr(WebSocketsProtocol.__init__, "__code__", None), "co_names", ()))
    if not ({"current_size", "cur_size"} & init_names and {"max_message_size", "max_size"} & init_names):
        found.append("websockets' Protocol no longer has current_size/cur_size and max_message_size/max_size")
    parse_code = getattr(getattr(WebSocketsProtocol, "parse", None), "__code__", None)
    if "at_eof" not in getattr(parse_code, "co_names", ()) or not hasattr(StreamReader, "at_eof"):
        found.append("websockets' Protocol.parse no longer waits in StreamReader.at_eof")
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


def _size(message: Any) -> int:
    """What a queued ASGI message counts for: its text's characters or its bytes (0: an event)."""
    body = message.get("text") or message.get("bytes")
    return len(body) if body else 0


class _Inbox:
    """The connection's receive queue, for uvicorn's code and the ASGI receive: asyncio.Queue's
    put_nowait/get/empty with the size of the messages it holds counted (reading pauses on
    that, see READ_PAUSE_BYTES) and without its join() bookkeeping, which nothing here uses.

    Lists read from a moving head, not deques: an idle connection's empty deques would cost
    about 600 bytes each, and popping a list's front costs its whole length (one socket read
    can queue tens of thousands of tiny messages)."""

    __slots__ = ("_items", "_head", "_getters", "_loop", "size")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._items: list[Any] = []
        self._head = 0  # the next item to take; those before it are taken
        self._getters: list[asyncio.Future[None]] | None = None
        self._loop = loop
        self.size = 0

    def __len__(self) -> int:
        return len(self._items) - self._head

    def empty(self) -> bool:
        return self._head == len(self._items)

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        self.size += _size(item)
        if self._getters:
            self._wake_one()

    def get_nowait(self) -> Any:
        items = self._items
        head = self._head
        item = items[head]
        self.size -= _size(item)
        head += 1
        if head == len(items):
            items.clear()
            head = 0
        elif head >= 64 and head * 2 >= len(items):
            del items[:head]
            head = 0
        else:
            items[head - 1] = None  # not held until the list is cleared
        self._head = head
        return item

    async def get(self) -> Any:
        while self._head == len(self._items):
            getter = self._loop.create_future()
            if self._getters is None:
                self._getters = []
            self._getters.append(getter)
            try:
                await getter
            except BaseException:
                getter.cancel()
                with contextlib.suppress(ValueError):
                    self._getters.remove(getter)
                # A wake-up this getter took but cannot use goes to the next one.
                if not self.empty() and not getter.cancelled():
                    self._wake_one()
                raise
        return self.get_nowait()

    def _wake_one(self) -> None:
        getters = self._getters
        while getters:
            getter = getters.pop(0)
            if not getter.done():
                getter.set_result(None)
                break


# Reading pauses once the messages queued for the app hold this many bytes (text counted in
# characters) or this many messages, and resumes when they are down to a quarter. uvicorn's own protocol pauses after
# every message and resumes when the app takes it: two epoll_ctl calls and a selector update per
# message. Per connection, at most this much (plus one read of the socket) waits in memory.
READ_PAUSE_BYTES = 64 * 1024
READ_PAUSE_MESSAGES = 64

_H16 = struct.Struct("!BBH")
_H64 = struct.Struct("!BBQ")


def _server_frame(first: int, payload: bytes) -> bytes:
    """An unmasked, unfragmented frame (a server's), as websockets serializes it without extensions."""
    n = len(payload)
    if n < 126:
        return bytes((first, n)) + payload
    if n < 65536:
        return _H16.pack(first, 126, n) + payload
    return _H64.pack(first, 127, n) + payload


_AT_EOF = StreamReader.at_eof.__code__


# websockets 16 renamed two Protocol attributes (max_size became max_message_size, with an
# optional max_fragment_size; cur_size became current_size); the package allows websockets>=14.
def _message_size(conn: Any) -> int | None:
    """The size so far of a fragmented message being received (None: not inside one)."""
    size: int | None = conn.current_size if hasattr(conn, "current_size") else conn.cur_size
    return size


def _size_limit(conn: Any) -> int | None:
    """The largest frame websockets would take now (outside a fragmented message)."""
    if not hasattr(conn, "max_message_size"):
        limit: int | None = conn.max_size
        return limit
    limit = conn.max_message_size
    fragment: int | None = getattr(conn, "max_fragment_size", None)
    if fragment is not None:
        limit = fragment if limit is None else min(limit, fragment)
    return limit


def _between_frames(conn: Any) -> bool:
    """Is websockets' parser waiting for the first byte of a frame? (Its generators then wait
    in StreamReader.at_eof; mid-frame they wait in Frame.parse, possibly with the header
    already taken from the buffer.)"""
    gen = conn.parser
    for _ in range(4):  # ServerProtocol.parse -> Protocol.parse -> StreamReader.at_eof
        gen = getattr(gen, "gi_yieldfrom", None)
        if gen is None:
            return False
        if getattr(gen, "gi_code", None) is _AT_EOF:
            return True
    return False


class CoalescingWebSocketProtocol(websockets_sansio_impl.WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol, writing once per loop iteration per connection,
    with reading paused only when messages pile up, and data frames framed directly."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = self.inbox = _Inbox(self.loop)  # type: ignore[assignment]
        # True while websockets' parser is known to wait between frames: frames are then
        # parsed here (data_received), up to websockets' size limit.
        self._direct = False
        self._limit: int | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        # Read after super(): uvicorn may have normalised it; every later write goes through us.
        self.coalescer = _CoalescingTransport(self.transport, self.loop)
        self.transport = self.coalescer

    def connection_lost(self, exc: Exception | None) -> None:
        self.coalescer.discard()
        super().connection_lost(exc)

    # -- reading --------------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self.handshake_complete and not self.close_sent and (self._direct or self._may_read_directly()):
            data = self._take_frames(data)
            if not data:
                return
        # Anything else (a control frame, a fragment, a partial or oversized frame, bad
        # framing) is websockets' to parse, from the first byte not taken here; it may then
        # be mid-frame until _may_read_directly() says otherwise.
        self._direct = False
        super().data_received(data)

    def _may_read_directly(self) -> bool:
        conn = self.conn
        self._direct = (
            self.initial_response is None
            and conn.state is _OPEN
            and not conn.extensions
            and _message_size(conn) is None
            and not self.frames
            and _between_frames(conn)
        )
        if self._direct:
            self._limit = _size_limit(conn)
        return self._direct

    def _take_frames(self, data: bytes) -> bytes:
        """Take the whole, unfragmented, masked text and binary frames at the start of `data`
        (what clients send) as websockets would, and return the bytes from the first other one."""
        limit = self._limit
        pos = 0
        end = len(data)
        while end - pos >= 6:
            first = data[pos]
            second = data[pos + 1]
            if (first != 0x81 and first != 0x82) or second < 0x80:  # FIN, no RSV, masked
                break
            size = second & 0x7F
            head = pos + 2
            if size == 126:
                if end - pos < 8:
                    break
                size = (data[head] << 8) | data[head + 1]
                head += 2
            elif size == 127:
                break  # 64 KiB and up: websockets' (rare, and it checks the limits)
            if limit is not None and size > limit:
                break
            start = head + 4
            if end - start < size:
                break
            payload = apply_mask(data[start : start + size], data[head:start])
            pos = start + size
            self.curr_msg_data_type = "text" if first == 0x81 else "bytes"
            self.frames = [payload]
            self.send_receive_event_to_app()
            if self.close_sent:
                return b""  # invalid UTF-8 closed the connection: nothing more is read
        return data[pos:] if pos else data

    def send_receive_event_to_app(self) -> None:
        frames = self.frames
        data = frames[0] if len(frames) == 1 else b"".join(frames)
        self.frames = []
        if self.close_sent:
            return  # past the app's close: dropped, reading goes on until the peer's close
        inbox = self.inbox
        if self.curr_msg_data_type == "text":
            try:
                text = data.decode()
            except UnicodeDecodeError:
                self.logger.warning("Invalid UTF-8 sequence received from client.")
                self.conn.send_close(1007)
                self.handle_parser_exception()
                return
            inbox.put_nowait({"type": "websocket.receive", "text": text})
        else:
            inbox.put_nowait({"type": "websocket.receive", "bytes": data})
        if not self.read_paused and (inbox.size >= READ_PAUSE_BYTES or len(inbox) >= READ_PAUSE_MESSAGES):
            self.read_paused = True
            self.transport.pause_reading()

    async def receive(self) -> Any:
        inbox = self.inbox
        message = await inbox.get() if inbox.empty() else inbox.get_nowait()
        if self.read_paused and inbox.size < READ_PAUSE_BYTES // 4 and len(inbox) < READ_PAUSE_MESSAGES // 4:
            self.read_paused = False
            self.transport.resume_reading()
        return message

    # -- writing --------------------------------------------------------------------------------
    async def send(self, message: Any) -> None:
        # A data frame on an open connection without extensions is framed here, without
        # websockets' Frame objects; everything else (handshake, close, deflate, a full write
        # buffer, a connection going away) takes uvicorn's path.
        if (
            message["type"] == "websocket.send"
            and self.handshake_complete
            and not self.close_sent
            and self.initial_response is None
            and self.writable.is_set()
            and not self.disconnected
        ):
            conn = self.conn
            if conn.state is _OPEN and not conn.extensions and not conn.expect_continuation_frame:
                text = message.get("text")
                if text is not None:
                    self.transport.write(_server_frame(0x81, text.encode()))
                    return
                data = message.get("bytes")
                if data is not None:
                    self.transport.write(_server_frame(0x82, bytes(data)))
                    return
        await super().send(message)
