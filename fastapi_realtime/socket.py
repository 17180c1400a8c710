"""The per-client, per-namespace handle that handlers receive."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from email.utils import formatdate
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from ._types import EioFrame
from .adapters.base import BroadcastOptions
from .broadcast import (
    DEFAULT_ACK_TIMEOUT,
    BroadcastNamespace,
    BroadcastOperator,
    RoomArg,
    ack_data,
    ack_value,
    event_packet,
    rooms_of,
)
from .errors import internal_error
from .exceptions import AckTimeoutError, DisconnectedError
from .handlers import CallNext, EventMiddleware, HandlerSpec, call_exception_handler
from .observe import Observation, Observer
from .recovery import RECOVERABLE_REASONS, RecoveryStore, SessionSnapshot
from .socketio.packet import Packet, PacketType

if TYPE_CHECKING:
    from .sessions import EngineSession

logger = logging.getLogger("fastapi_realtime")


# What a socket needs from the objects above it, which this module does not import (the
# client, namespace and server modules import this one).


class SocketServer(Protocol):
    """The server as its sockets use it (server.Realtime is one)."""

    @property
    def event_middlewares(self) -> Sequence[EventMiddleware[Socket]]: ...

    async def handle_exception(self, socket: Socket, exc: Exception, event: Any, wants_ack: bool) -> Any: ...

    def persist_later(self, store: RecoveryStore, snapshot: SessionSnapshot) -> None: ...


class SocketClient(Protocol):
    """The connection as its sockets use it (client.Client is one)."""

    @property
    def session(self) -> EngineSession: ...

    def spawn(self, job: Awaitable[None]) -> None: ...

    def forget(self, socket: Socket) -> None: ...

    def schedule_disconnect(self, socket: Socket, reason: str) -> None: ...

    def disconnect_all(self) -> None: ...


class EventTable(Protocol):
    """A namespace's handlers as its sockets look them up (router.HandlerTable is one)."""

    @property
    def events(self) -> Mapping[str, HandlerSpec]: ...

    @property
    def any(self) -> HandlerSpec | None: ...

    @property
    def disconnect(self) -> HandlerSpec | None: ...  # the client runs it, reaching it through the socket

    def concurrent_events(self, event: Any) -> bool: ...


class SocketNamespace(BroadcastNamespace, Protocol):
    """The namespace as its sockets use it (namespace.Namespace is one)."""

    @property
    def server(self) -> SocketServer: ...

    @property
    def recovery(self) -> RecoveryStore | None: ...

    @property
    def table(self) -> EventTable: ...

    @property
    def observation(self) -> Observation: ...

    def encode(self, packet: Packet) -> list[EioFrame]: ...

    def encode_ack(self, data: Any, ack_id: int) -> list[EioFrame]: ...

    def next_ack_id(self) -> int: ...

    def remove(self, socket: Socket) -> None: ...


@dataclass(slots=True)
class Handshake:
    """What the client presented when it connected to the namespace."""

    headers: dict[str, str]
    query: dict[str, str]
    auth: dict[str, Any]
    address: str
    time: str
    issued: int
    url: str
    secure: bool
    xdomain: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("extra")
        return data


def make_handshake(scope: Any, auth: dict[str, Any], issued: float) -> Handshake:
    headers: dict[str, str] = {}
    for raw_key, raw_value in scope.get("headers", ()):
        key = raw_key.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    from .transports.http import query_params

    client = scope.get("client")
    query_string = scope.get("query_string", b"").decode("latin-1")
    path = scope.get("path", "")  # ASGI servers and Starlette include root_path in it
    return Handshake(
        headers=headers,
        query=query_params(scope),
        auth=auth,
        address=client[0] if client else "",
        time=formatdate(issued, usegmt=True),
        issued=int(issued * 1000),
        url=f"{path}?{query_string}" if query_string else path,
        secure=scope.get("scheme") in ("https", "wss"),
        xdomain="origin" in headers,
    )


NO_HANDLER: Any = object()  # what an event with no handler "returns": it gets no ack


def _chain(socket: Socket, middlewares: Sequence[EventMiddleware[Socket]], last: CallNext) -> CallNext:
    """Wrap `last` in the event middlewares, the first one outermost."""
    call_next = last
    for middleware in reversed(middlewares):

        def step(event: Any, args: list[Any], _mw: EventMiddleware[Socket] = middleware, _next: CallNext = call_next) -> Awaitable[Any]:
            return _mw(socket, event, args, _next)

        call_next = step
    return call_next


def _ack_timed(observer: Observer, nsp: str, started: float, future: asyncio.Future[list[Any]]) -> None:
    if not future.cancelled() and future.exception() is None:
        observer.ack_received(nsp, future.get_loop().time() - started)


def _call_spec(socket: Socket, spec: HandlerSpec, catch_all: bool, event: Any, args: list[Any]) -> Awaitable[Any]:
    return spec.call(socket, [event, *args] if catch_all else args)


class Socket:
    """One client's connection to one namespace."""

    __slots__ = (
        "id", "pid", "nsp", "client", "data", "connected", "recovered",
        "_acks", "_held", "_auth", "_issued", "_handshake",
    )

    def __init__(self, nsp: SocketNamespace, client: SocketClient, sid: str, auth: dict[str, Any]) -> None:
        self.id = sid
        self.pid: str | None = None
        self.nsp = nsp
        self.client = client
        self.data: dict[str, Any] = {}
        self._auth = auth
        self._issued = time.time()
        # Built on first use: most sockets never read it, and it would copy every header.
        self._handshake: Handshake | None = None
        self.connected = False
        self.recovered = False
        self._acks: dict[int, Any] = {}
        # Frames emitted while the connect handler runs wait here until the CONNECT reply is out.
        self._held: list[EioFrame] | None = []

    def __repr__(self) -> str:
        return f"<Socket {self.id} {self.nsp.name}>"

    @property
    def handshake(self) -> Handshake:
        """Headers, query, auth, address, time and url of the connection request."""
        if self._handshake is None:
            self._handshake = make_handshake(self.client.session.scope, self._auth, self._issued)
        return self._handshake

    @property
    def namespace(self) -> str:
        return self.nsp.name

    @property
    def server(self) -> SocketServer:
        return self.nsp.server

    @property
    def rooms(self) -> set[str]:
        return self.nsp.adapter.socket_rooms(self.id)

    @property
    def transport(self) -> str:
        return self.client.session.transport

    # -- sending -------------------------------------------------------------------------
    def send_frames(self, frames: Sequence[EioFrame], volatile: bool = False) -> bool:
        if self._held is not None:
            if self.client.session.closed:
                return False
            self._held.extend(frames)
            return True
        if not self.connected:
            return False
        session = self.client.session
        if volatile and not session.writable:
            return False
        session.send(frames)
        return True

    def release_held(self) -> None:
        held, self._held = self._held, None
        if held:
            self.client.session.send(held)

    async def emit(self, event: str, *args: Any) -> None:
        """Send an event to this client."""
        packet = event_packet(self.nsp.name, event, args)
        if self.nsp.recovery is not None:
            # Through the adapter like a broadcast to the socket's own room, so the event is
            # stored with an offset and can be replayed after a reconnection (§2.4.2).
            await self.nsp.adapter.broadcast(packet, BroadcastOptions(rooms=frozenset((self.id,))))
        else:
            self.send_frames(self.nsp.encode(packet))
            observer = self.nsp.observation.observer
            if observer is not None:
                observer.event_sent(self.nsp.name, self.id, packet.data, 1)

    async def emit_with_ack(self, event: str, *args: Any, timeout: float | None = DEFAULT_ACK_TIMEOUT) -> Any:
        """Send an event and wait for the client's ack: None, its one argument, or a tuple of several.

        Raises AckTimeoutError when no ack comes within `timeout` seconds, DisconnectedError if the
        client goes away first.
        """
        packet = event_packet(self.nsp.name, event, args)
        ack_id = self.nsp.next_ack_id()
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()

        def on_ack(ack_args: list[Any] | None) -> None:
            if future.done():
                return
            if ack_args is None:
                future.set_exception(DisconnectedError("the client disconnected before acknowledging"))
            else:
                future.set_result(ack_args)

        self._acks[ack_id] = on_ack
        self.send_frames(self.nsp.encode(Packet(packet.type, packet.namespace, packet.data, ack_id)))
        observer = self.nsp.observation.observer
        if observer is not None:
            observer.event_sent(self.nsp.name, self.id, packet.data, 1)
            started = future.get_loop().time()
            future.add_done_callback(partial(_ack_timed, observer, self.nsp.name, started))
        try:
            return ack_value(await asyncio.wait_for(future, timeout))
        except asyncio.TimeoutError:
            raise AckTimeoutError(f"no ack for {event!r} within {timeout}s") from None
        finally:
            self._acks.pop(ack_id, None)

    def register_ack(self, ack_id: int, callback: Any) -> None:
        self._acks[ack_id] = callback

    def on_ack(self, packet: Packet) -> None:
        callback = self._acks.pop(packet.id, None) if packet.id is not None else None
        if callback is not None:  # an ack for an unknown id is ignored (§2.3)
            callback(packet.data)

    # -- rooms and broadcasting ------------------------------------------------------------
    async def join(self, *rooms: RoomArg) -> None:
        self.nsp.adapter.add_all(self.id, rooms_of(rooms))

    async def leave(self, *rooms: RoomArg) -> None:
        for room in rooms_of(rooms):
            self.nsp.adapter.remove(self.id, room)

    def to(self, *rooms: RoomArg) -> BroadcastOperator:
        """Broadcast to `rooms`, leaving this socket out."""
        return BroadcastOperator(self.nsp, rooms=rooms_of(rooms), except_rooms=frozenset({self.id}))

    in_ = to

    def except_(self, *rooms: RoomArg) -> BroadcastOperator:
        return BroadcastOperator(self.nsp, except_rooms=rooms_of(rooms) | {self.id})

    @property
    def broadcast(self) -> BroadcastOperator:
        """Everyone in the namespace but this socket."""
        return BroadcastOperator(self.nsp, except_rooms=frozenset({self.id}))

    # -- handling events --------------------------------------------------------------------
    def handle_event(self, packet: Packet) -> Awaitable[None] | None:
        """The handler's run, to await in the client's event order (None: it runs beside it)."""
        args: list[Any] = packet.data
        observer = self.nsp.observation.observer
        if observer is not None:
            observer.event_received(self, args[0], args[1:])
            return self._observed_run(observer, args[0], args[1:], packet.id)
        if self.nsp.table.concurrent_events(args[0]):
            self.client.spawn(self._run(args[0], args[1:], packet.id))
            return None
        return self._run(args[0], args[1:], packet.id)

    def _observed_run(self, observer: Observer, event: Any, args: list[Any], ack_id: int | None) -> Awaitable[None] | None:
        run = self._observed(observer, event, args, ack_id)
        if self.nsp.table.concurrent_events(event):
            self.client.spawn(run)
            return None
        return run

    async def _observed(self, observer: Observer, event: Any, args: list[Any], ack_id: int | None) -> None:
        """A handler run the observers see begin and end (the traces' span, the metrics' timing)."""
        token = observer.handler_started(self, event)
        try:
            await self._run(event, args, ack_id)
        except BaseException as exc:
            observer.handler_finished(token, exc)
            raise
        observer.handler_finished(token, None)

    async def _call_handler(self, event: Any, args: list[Any]) -> Any:
        """The innermost step of the server's event middleware chain: the handler, inside its
        routers' event middlewares and exception handlers."""
        table = self.nsp.table
        found = table.events.get(event) if type(event) is str else None
        catch_all = found is None
        spec = table.any if found is None else found
        if spec is None:
            return NO_HANDLER
        try:
            if spec.event_middlewares:
                return await _chain(self, spec.event_middlewares, partial(_call_spec, self, spec, catch_all))(
                    event, args
                )
            if spec.plain and not catch_all:
                # No dependencies, validation or thread: the function itself, with no layers between.
                return await spec.func(*spec.bind(self, args))
            return await _call_spec(self, spec, catch_all, event, args)
        except Exception as exc:
            return await self._handler_failed(spec, exc)

    async def _handler_failed(self, spec: HandlerSpec, exc: Exception) -> Any:
        """The answer of the handler's routers' exception handler for `exc`; re-raised if none takes it."""
        handler = spec.exception_handler_for(exc)
        if handler is None:
            raise exc
        return await call_exception_handler(handler, self, exc)

    async def _run(self, event: Any, args: list[Any], ack_id: int | None) -> None:
        middlewares = self.nsp.server.event_middlewares
        try:
            if middlewares:
                result = await _chain(self, middlewares, self._call_handler)(event, args)
            else:
                spec = self.nsp.table.events.get(event) if type(event) is str else None
                if spec is not None and spec.plain and not spec.event_middlewares:
                    # The usual handler, called here rather than through _call_handler: one
                    # coroutine less per event (its exception handlers as there).
                    try:
                        result = await spec.func(*spec.bind(self, args))
                    except Exception as exc:
                        result = await self._handler_failed(spec, exc)
                else:
                    result = await self._call_handler(event, args)
        except Exception as exc:
            observer = self.nsp.observation.observer
            if observer is not None:
                observer.handler_failed(self, event, exc)
            result = await self.nsp.server.handle_exception(self, exc, event, ack_id is not None)
        if ack_id is not None and self.connected and result is not NO_HANDLER:
            # Like Node: nobody listening means no ack, and the client's ack times out.
            data = ack_data(result)
            try:
                frames = self.nsp.encode_ack(data, ack_id)
            except (TypeError, ValueError, RecursionError):
                logger.exception(
                    "the ack of %s for event %r on %s cannot be encoded as JSON",
                    self._handler_name(event), event, self.nsp.name,
                )
                frames = self.nsp.encode_ack([internal_error()], ack_id)
            self.send_frames(frames)

    def _handler_name(self, event: Any) -> str:
        table = self.nsp.table
        spec = (table.events.get(event) if type(event) is str else None) or table.any
        if spec is None:
            return "the event middleware"
        return f"handler {getattr(spec.func, '__qualname__', repr(spec.func))}"

    # -- disconnecting ----------------------------------------------------------------------
    async def disconnect(self, close: bool = False) -> None:
        """Leave the namespace (the client is told); with close=True end the whole connection."""
        self.disconnect_now(close)

    def disconnect_now(self, close: bool = False) -> None:
        if close:
            self.client.disconnect_all()
            return
        if not self.connected:
            return
        self.send_frames(self.nsp.encode(Packet(PacketType.DISCONNECT, self.nsp.name)))
        self.on_close("server namespace disconnect")

    def on_close(self, reason: str) -> None:
        """Tear down local state at once; the disconnect handler runs in the client's event order."""
        if not self.connected:
            return
        store = self.nsp.recovery
        if store is not None and self.pid is not None and reason in RECOVERABLE_REASONS:
            self.nsp.server.persist_later(store, SessionSnapshot(self.id, self.pid, sorted(self.rooms), self.data))
        self.connected = False
        self.nsp.remove(self)
        observer = self.nsp.observation.observer
        if observer is not None:
            observer.socket_disconnected(self, reason)
        self.client.forget(self)
        self.fail_acks()
        self.client.schedule_disconnect(self, reason)

    def fail_acks(self) -> None:
        """The client can no longer answer: waiting emit_with_ack calls raise DisconnectedError."""
        acks, self._acks = self._acks, {}
        for callback in acks.values():
            callback(None)
