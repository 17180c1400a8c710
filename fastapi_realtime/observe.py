"""The observation seam: what the Admin UI, the metrics and the traces are told.

An `Observer` hears about connections, packets, sockets, rooms, events and handler runs. The
server holds at most one (`Realtime.observe` combines several into `Observers`); every call site
in the core is one `is not None` test, so a server nobody observes does no work for it.
Methods are called synchronously from the event loop, where the event happens; they must be
quick and must not raise (an exception would reach the code that called them).

Handler and connect runs get a token: `*_started` returns one (anything), `*_finished` gets it
back with the exception the run ended with, if any, so an observer can time a run or hold a
span open across it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._types import EioFrame


class Observer:
    """No-op hooks; an observer overrides those it needs. Arguments typed Any are the core's
    objects (sessions.EngineSession, socket.Socket), which this module, below them, cannot name."""

    # -- Engine.IO connections ----------------------------------------------------------------
    def engine_opened(self, session: Any) -> None:
        """A handshake succeeded (session.transport: "polling" or "websocket")."""

    def engine_refused(self, transport: str, code: int, message: str) -> None:
        """A handshake or request got an Engine.IO error (protocol.md §1.8 codes; 503 busy is 3)."""

    def engine_upgraded(self, session: Any) -> None:
        """A polling session moved to WebSocket."""

    def engine_closed(self, session: Any, reason: str) -> None:
        """A session ended (Node's reason strings)."""

    def packet_in(self, session: Any, data: str | bytes) -> None:
        """One Engine.IO message payload from a client."""

    def packets_out(self, session: Any, frames: Sequence[EioFrame]) -> None:
        """Frames queued or written to one client."""

    def queue_overflow(self, session: Any) -> None:
        """A client read too slowly and was closed (max_queue)."""

    # -- Socket.IO ----------------------------------------------------------------------------
    def connect_started(self, nsp: str, sid: str, session: Any) -> Any:
        """A client's CONNECT to a namespace is being admitted; returns a token."""
        return None

    def connect_finished(self, token: Any, error: str | None) -> None:
        """The admission ended: error is None when the socket joined, else the refusal message."""

    def socket_connected(self, socket: Any) -> None: ...

    def socket_disconnected(self, socket: Any, reason: str) -> None: ...

    def room_joined(self, nsp: str, room: str, sid: str) -> None: ...

    def room_left(self, nsp: str, room: str, sid: str) -> None: ...

    def event_received(self, socket: Any, event: Any, args: Sequence[Any]) -> None: ...

    def event_sent(self, nsp: str, sid: str | None, data: Sequence[Any], count: int) -> None:
        """An event went to `count` local clients (sid: the one client of a direct emit)."""

    def broadcast_sent(self, nsp: str, sids: Sequence[str], data: Sequence[Any]) -> None:
        """The local clients a broadcast reached (after event_sent with their count)."""

    def handler_started(self, socket: Any, event: Any) -> Any:
        """A handler run begins for `event` (in the client's event order); returns a token."""
        return None

    def handler_finished(self, token: Any, error: BaseException | None) -> None: ...

    def handler_failed(self, socket: Any, event: Any, exc: BaseException) -> None:
        """A handler (event="connect": a connect middleware or handler) raised `exc`; called
        inside its run, before the exception handlers turn it into an answer."""

    def server_started(self, server: Any) -> None:
        """The server started serving (its lifespan began), or the observer was added to a running one."""

    def server_stopping(self, server: Any) -> None:
        """The server's shutdown begins."""

    def ack_received(self, nsp: str, seconds: float) -> None:
        """A client answered a server emit_with_ack after `seconds`."""

    def recovery(self, nsp: str, outcome: str) -> None:
        """A connection state recovery attempt: "recovered", "missed" (unknown or too old)."""

    def adapter_error(self, kind: str) -> None:
        """A cluster adapter problem: "publish" (Redis write failed), "timeout" (a request)."""


class Observers(Observer):
    """Several observers as one; each call reaches every one, in the order they were added."""

    def __init__(self, observers: Sequence[Observer]) -> None:
        self.observers = tuple(observers)

    def engine_opened(self, session: Any) -> None:
        for o in self.observers:
            o.engine_opened(session)

    def engine_refused(self, transport: str, code: int, message: str) -> None:
        for o in self.observers:
            o.engine_refused(transport, code, message)

    def engine_upgraded(self, session: Any) -> None:
        for o in self.observers:
            o.engine_upgraded(session)

    def engine_closed(self, session: Any, reason: str) -> None:
        for o in self.observers:
            o.engine_closed(session, reason)

    def packet_in(self, session: Any, data: str | bytes) -> None:
        for o in self.observers:
            o.packet_in(session, data)

    def packets_out(self, session: Any, frames: Sequence[EioFrame]) -> None:
        for o in self.observers:
            o.packets_out(session, frames)

    def queue_overflow(self, session: Any) -> None:
        for o in self.observers:
            o.queue_overflow(session)

    def connect_started(self, nsp: str, sid: str, session: Any) -> Any:
        return [o.connect_started(nsp, sid, session) for o in self.observers]

    def connect_finished(self, token: Any, error: str | None) -> None:
        for o, t in zip(self.observers, token):
            o.connect_finished(t, error)

    def socket_connected(self, socket: Any) -> None:
        for o in self.observers:
            o.socket_connected(socket)

    def socket_disconnected(self, socket: Any, reason: str) -> None:
        for o in self.observers:
            o.socket_disconnected(socket, reason)

    def room_joined(self, nsp: str, room: str, sid: str) -> None:
        for o in self.observers:
            o.room_joined(nsp, room, sid)

    def room_left(self, nsp: str, room: str, sid: str) -> None:
        for o in self.observers:
            o.room_left(nsp, room, sid)

    def event_received(self, socket: Any, event: Any, args: Sequence[Any]) -> None:
        for o in self.observers:
            o.event_received(socket, event, args)

    def event_sent(self, nsp: str, sid: str | None, data: Sequence[Any], count: int) -> None:
        for o in self.observers:
            o.event_sent(nsp, sid, data, count)

    def broadcast_sent(self, nsp: str, sids: Sequence[str], data: Sequence[Any]) -> None:
        for o in self.observers:
            o.broadcast_sent(nsp, sids, data)

    def handler_started(self, socket: Any, event: Any) -> Any:
        return [o.handler_started(socket, event) for o in self.observers]

    def handler_finished(self, token: Any, error: BaseException | None) -> None:
        # The last started finishes first, as nested spans close.
        for o, t in reversed(list(zip(self.observers, token))):
            o.handler_finished(t, error)

    def handler_failed(self, socket: Any, event: Any, exc: BaseException) -> None:
        for o in self.observers:
            o.handler_failed(socket, event, exc)

    def server_started(self, server: Any) -> None:
        for o in self.observers:
            o.server_started(server)

    def server_stopping(self, server: Any) -> None:
        for o in self.observers:
            o.server_stopping(server)

    def ack_received(self, nsp: str, seconds: float) -> None:
        for o in self.observers:
            o.ack_received(nsp, seconds)

    def recovery(self, nsp: str, outcome: str) -> None:
        for o in self.observers:
            o.recovery(nsp, outcome)

    def adapter_error(self, kind: str) -> None:
        for o in self.observers:
            o.adapter_error(kind)


class Observation:
    """The one slot the core reads (`.observer`), shared by the server, its session manager
    and its namespaces, so an observer added while serving is seen everywhere at once."""

    __slots__ = ("observer", "_all")

    def __init__(self) -> None:
        self.observer: Observer | None = None
        self._all: list[Observer] = []

    def add(self, observer: Observer) -> None:
        self._all.append(observer)
        self.observer = self._all[0] if len(self._all) == 1 else Observers(self._all)

    def remove(self, observer: Observer) -> None:
        self._all.remove(observer)
        self.observer = None if not self._all else self._all[0] if len(self._all) == 1 else Observers(self._all)
