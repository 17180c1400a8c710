"""The observer that feeds the admin UI (installed with `realtime.observe`, see fastapi_realtime.observe).

`AdminObserver` turns the core's hooks into the aggregated counters of `server_stats` and, in
development mode, the per-socket events the UI shows, broadcast to the admin namespace (so with
a cluster adapter they reach admin clients on every node). As @socket.io/admin-ui 0.5 in Node:

* rawConnection / rawDisconnection (with the close reason), packetsIn / bytesIn, packetsOut /
  bytesOut (bytes of each Engine.IO packet's data, its type character left out);
* socket_connected when the socket joins its namespace, before its connect handler (Node's
  listener is prepended to "connection"); socket_updated with its data once the connect handler
  ran, and with its transport when it upgrades; socket_disconnected with the exact reason;
* room_joined / room_left, event_received, event_sent (never for the admin namespace itself).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from .._types import EioFrame
from ..observe import Observer
from ..reasons import DisconnectReason
from ..socket import Socket
from .serialize import ADMIN_KEY, admin_marks, iso_now, public_data, serialize_local

logger = logging.getLogger("fastapi_realtime.admin")

# Bounds: admin events waiting to be broadcast (a flood is dropped, not queued without end), and
# distinct (second, type, subtype) counters between two `server_stats`.
MAX_PENDING_EMITS = 10_000
MAX_BUFFER_KEYS = 1_000

Emit = Callable[..., Awaitable[None]]
Key = tuple[str, str]  # (namespace, socket id)


def _nothing() -> None:
    pass


def _size(data: str | bytes) -> int:
    if isinstance(data, str):
        return len(data) if data.isascii() else len(data.encode())
    return len(data)


class EventBuffer:
    """Counts per (second, type, subtype), handed out and cleared with each `server_stats`."""

    def __init__(self) -> None:
        self._counts: dict[tuple[int, str, str | None], int] = {}

    def push(self, kind: str, sub_type: str | None = None, count: int = 1) -> None:
        key = (int(time.time()) * 1000, kind, sub_type)
        counts = self._counts
        if key in counts:
            counts[key] += count
        elif len(counts) < MAX_BUFFER_KEYS:
            counts[key] = count

    def take(self) -> list[dict[str, Any]]:
        counts, self._counts = self._counts, {}
        out: list[dict[str, Any]] = []
        for (timestamp, kind, sub_type), count in counts.items():
            event: dict[str, Any] = {"timestamp": timestamp, "type": kind, "count": count}
            if sub_type is not None:
                event["subType"] = sub_type
            out.append(event)
        return out


class AdminObserver(Observer):
    """Aggregates what the core reports; in development mode also tells the admin clients.

    `on_connection` is called at each new Engine.IO connection and `on_shutdown` when the server
    closes its connections for shutdown (the instrumentation starts and stops its stats timer so).
    """

    def __init__(
        self,
        emit: Emit,
        *,
        admin_namespace: str,
        development: bool,
        on_connection: Callable[[], None] = _nothing,
        on_shutdown: Callable[[], None] = _nothing,
    ) -> None:
        self._emit = emit
        self.admin_namespace = admin_namespace
        self.development = development
        self.on_connection = on_connection
        self.on_shutdown = on_shutdown
        self.buffer = EventBuffer()
        # Development mode: the local sockets reported connected, their last reported transport,
        # and their keys by Engine.IO session (for upgrades).
        self.sockets: dict[Key, Socket] = {}
        self._transports: dict[Key, str] = {}
        self._by_session: dict[str, set[Key]] = {}
        self._pending: deque[tuple[str, tuple[Any, ...]]] = deque()
        self._worker: asyncio.Task[None] | None = None
        self.dropped = 0

    # -- the admin broadcast queue: hooks are synchronous, broadcasting is not ------------------
    def send(self, event: str, *args: Any) -> None:
        if len(self._pending) >= MAX_PENDING_EMITS:
            self.dropped += 1
            return
        self._pending.append((event, args))
        if self._worker is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return  # no loop (set-up code): the next call from the loop starts the worker
            self._worker = loop.create_task(self._drain())

    async def _drain(self) -> None:
        pending = self._pending
        try:
            while pending:
                event, args = pending.popleft()
                try:
                    await self._emit(event, *args)
                except Exception:
                    # Unencodable socket data, an adapter that failed: this event is lost, not the next.
                    logger.exception("admin event %r could not be broadcast", event)
        finally:
            self._worker = None

    async def flush(self) -> None:
        """Wait until the queued admin events are out (tests, shutdown)."""
        for _ in range(1000):  # bounded: a steady flood would never leave the queue empty
            worker = self._worker
            if worker is None:
                if not self._pending:
                    return
                self._worker = asyncio.get_running_loop().create_task(self._drain())
                continue
            await asyncio.shield(worker)

    # -- server ------------------------------------------------------------------------------
    def server_started(self, server: Any) -> None:
        self.on_connection()  # the stats run from start-up, as Node's from instrument()

    def server_stopping(self, server: Any) -> None:
        self.on_shutdown()

    # -- engine ------------------------------------------------------------------------------
    def engine_opened(self, session: Any) -> None:
        self.buffer.push("rawConnection")
        self.on_connection()

    def engine_closed(self, session: Any, reason: str) -> None:
        self.buffer.push("rawDisconnection", str(reason))
        self._by_session.pop(session.sid, None)  # its sockets left just before
        if reason == DisconnectReason.SERVER_SHUTTING_DOWN:
            self.on_shutdown()

    def engine_upgraded(self, session: Any) -> None:
        if self.development:
            for key in list(self._by_session.get(session.sid, ())):
                socket = self.sockets.get(key)
                if socket is not None:
                    self.transport_changed(key, socket)

    def packet_in(self, session: Any, data: str | bytes) -> None:
        buffer = self.buffer
        buffer.push("packetsIn")
        buffer.push("bytesIn", None, _size(data))

    def packets_out(self, session: Any, frames: Sequence[EioFrame]) -> None:
        size = 0
        for frame in frames:
            # A text frame carries the Engine.IO type first; Node counts the packet's data only.
            size += _size(frame) - 1 if isinstance(frame, str) else len(frame)
        buffer = self.buffer
        buffer.push("packetsOut", None, len(frames))
        buffer.push("bytesOut", None, size)

    # -- Socket.IO ----------------------------------------------------------------------------
    def connect_started(self, nsp: str, sid: str, session: Any) -> Any:
        return (nsp, sid)

    def connect_finished(self, token: Any, error: str | None) -> None:
        if not self.development:
            return
        socket = self.sockets.get(token)
        if socket is None:
            return  # never reported (refused by a middleware), or already reported gone
        if error is None:
            # The connect handler ran: what it put in the socket's data (Node's data proxy
            # reports each change; this reports them once, as the socket is in).
            self.mark(socket)
            data = public_data(socket.data)
            if data:
                self.send("socket_updated", {"id": socket.id, "nsp": socket.namespace, "data": data})
        elif not socket.connected:
            # Refused by its connect handler after socket_connected: gone without a disconnect.
            self.socket_disconnected(socket, DisconnectReason.SERVER_NAMESPACE_DISCONNECT)

    def socket_connected(self, socket: Any) -> None:
        if not self.development:
            return
        key = (socket.namespace, socket.id)
        self.sockets[key] = socket
        self._by_session.setdefault(socket.client.session.sid, set()).add(key)
        self.mark(socket)
        self._transports[key] = str(socket.transport)
        self.send("socket_connected", serialize_local(socket), iso_now())

    def socket_disconnected(self, socket: Any, reason: str) -> None:
        if not self.development:
            return
        key = (socket.namespace, socket.id)
        self.sockets.pop(key, None)
        self._transports.pop(key, None)
        keys = self._by_session.get(socket.client.session.sid)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_session[socket.client.session.sid]
        self.send("socket_disconnected", socket.namespace, socket.id, str(reason), iso_now())

    def room_joined(self, nsp: str, room: str, sid: str) -> None:
        if self.development:
            self.send("room_joined", nsp, room, sid, iso_now())

    def room_left(self, nsp: str, room: str, sid: str) -> None:
        if self.development:
            self.send("room_left", nsp, room, sid, iso_now())

    def event_received(self, socket: Any, event: Any, args: Sequence[Any]) -> None:
        if self.development and socket.namespace != self.admin_namespace:
            self.send("event_received", socket.namespace, socket.id, [event, *args], iso_now())

    def event_sent(self, nsp: str, sid: str | None, data: Sequence[Any], count: int) -> None:
        # Node reports every event a socket is sent, broadcasts included (one event_sent per
        # recipient). A broadcast (sid None) names no recipient here: see broadcast_sent.
        if sid is not None and self.development and nsp != self.admin_namespace:
            self.send("event_sent", nsp, sid, list(data), iso_now())

    def broadcast_sent(self, nsp: str, sids: Sequence[str], data: Sequence[Any]) -> None:
        """A broadcast's local recipients: one event_sent each, as Node. Not an Observer hook yet
        (the core would call it beside event_sent(nsp, None, data, len(sids)))."""
        if self.development and nsp != self.admin_namespace:
            args = list(data)
            date = iso_now()
            for sid in sids:
                self.send("event_sent", nsp, sid, args, date)

    # -- socket data marks ------------------------------------------------------------------------
    @staticmethod
    def mark(socket: Socket) -> None:
        """Client id and transport in the socket's data, where fetch_sockets on another node finds them."""
        data = socket.data
        if isinstance(data, dict):
            data[ADMIN_KEY] = admin_marks(socket)

    def transport_changed(self, key: Key, socket: Socket) -> None:
        transport = str(socket.transport)
        if self._transports.get(key) == transport:
            return
        self._transports[key] = transport
        self.mark(socket)
        self.send("socket_updated", {"id": socket.id, "nsp": socket.namespace, "transport": transport})

    def refresh(self) -> None:
        """Each stats tick: put back the data mark a handler replaced with a new dict."""
        if not self.development:
            return
        for socket in list(self.sockets.values()):
            data = socket.data
            if isinstance(data, dict) and ADMIN_KEY not in data:
                self.mark(socket)
