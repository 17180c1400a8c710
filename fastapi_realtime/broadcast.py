"""The immutable broadcast builder: to(), except_(), volatile, local, timeout()."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from .adapters.base import Adapter, BroadcastOptions, SocketInfo
from .exceptions import AckTimeoutError
from .socketio.packet import Packet, PacketType

RoomArg = str | Iterable[str]

DEFAULT_ACK_TIMEOUT = 5.0


def rooms_of(args: tuple[RoomArg, ...]) -> frozenset[str]:
    rooms: set[str] = set()
    for arg in args:
        if isinstance(arg, str):
            rooms.add(arg)
        else:
            rooms.update(arg)
    return frozenset(rooms)


def ack_value(args: list[Any]) -> Any:
    """An ack's arguments as one value: None for none, the value for one, a tuple for several."""
    if not args:
        return None
    if len(args) == 1:
        return args[0]
    return tuple(args)


def ack_data(result: Any) -> list[Any]:
    """A handler's return value as an ack's arguments (the inverse of `ack_value`)."""
    if result is None:
        return []
    if isinstance(result, tuple):
        return list(result)
    return [result]


def event_packet(namespace: str, event: str, args: tuple[Any, ...]) -> Packet:
    if not isinstance(event, str):
        raise TypeError("event name must be a string")
    from .socketio.packet import RESERVED_EVENTS

    if event in RESERVED_EVENTS:
        raise ValueError(f"{event!r} is a reserved event name")
    return Packet(PacketType.EVENT, namespace, [event, *args])


class BroadcastNamespace(Protocol):
    """The namespace as broadcasting uses it (namespace.Namespace is one; that module is above
    this one)."""

    @property
    def name(self) -> str: ...

    @property
    def adapter(self) -> Adapter: ...

    async def server_side_emit(self, event: str, *args: Any) -> None: ...

    async def server_side_emit_with_ack(self, event: str, *args: Any, timeout: float = 5.0) -> list[Any]: ...

    async def server_count(self) -> int: ...


@dataclass(frozen=True, slots=True)
class RemoteSocket:
    """A socket found by fetch_sockets: a snapshot plus the operations that work from any node."""

    id: str
    namespace: str
    rooms: frozenset[str]
    data: dict[str, Any]
    handshake: dict[str, Any]
    _nsp: BroadcastNamespace

    def _only(self) -> BroadcastOperator:
        return BroadcastOperator(self._nsp, rooms=frozenset({self.id}))

    async def emit(self, event: str, *args: Any) -> None:
        await self._only().emit(event, *args)

    async def join(self, *rooms: RoomArg) -> None:
        await self._only().sockets_join(*rooms)

    async def leave(self, *rooms: RoomArg) -> None:
        await self._only().sockets_leave(*rooms)

    async def disconnect(self, close: bool = False) -> None:
        await self._only().disconnect_sockets(close)


@dataclass(frozen=True, slots=True)
class BroadcastOperator:
    """Selects sockets in one namespace; every method returns a new operator or acts."""

    nsp: BroadcastNamespace
    rooms: frozenset[str] = frozenset()
    except_rooms: frozenset[str] = frozenset()
    is_volatile: bool = False
    is_local: bool = False
    ack_timeout: float | None = None

    def to(self, *rooms: RoomArg) -> BroadcastOperator:
        return replace(self, rooms=self.rooms | rooms_of(rooms))

    in_ = to

    def except_(self, *rooms: RoomArg) -> BroadcastOperator:
        return replace(self, except_rooms=self.except_rooms | rooms_of(rooms))

    @property
    def volatile(self) -> BroadcastOperator:
        """Drop the packet for clients whose transport cannot take it right now."""
        return replace(self, is_volatile=True)

    @property
    def local(self) -> BroadcastOperator:
        """Reach this node's sockets only."""
        return replace(self, is_local=True)

    def timeout(self, seconds: float) -> BroadcastOperator:
        if seconds <= 0:
            raise ValueError("timeout must be positive")
        return replace(self, ack_timeout=seconds)

    @property
    def options(self) -> BroadcastOptions:
        return BroadcastOptions(self.rooms, self.except_rooms, self.is_volatile, self.is_local, self.ack_timeout)

    async def emit(self, event: str, *args: Any) -> None:
        await self.nsp.adapter.broadcast(event_packet(self.nsp.name, event, args), self.options)

    async def emit_with_ack(self, event: str, *args: Any, timeout: float | None = None) -> list[Any]:
        """Emit to every selected client and collect each one's ack.

        Raises AckTimeoutError (with the acks that did arrive) if some client has not answered in time.
        """
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        responses: list[Any] = []
        counts: list[int] = []  # one per node that said how many clients it reached
        servers: list[int] = []  # how many nodes there are, once known

        def check() -> None:
            # As Node: complete once every node gave its count and every counted client answered.
            if servers and len(counts) >= servers[0] and len(responses) >= sum(counts) and not done.done():
                done.set_result(None)

        def on_count(count: int) -> None:
            counts.append(count)
            check()

        def on_ack(args: list[Any] | None) -> None:
            if args is not None:
                responses.append(ack_value(args))
                check()

        packet = event_packet(self.nsp.name, event, args)
        limit = timeout if timeout is not None else self.ack_timeout or DEFAULT_ACK_TIMEOUT
        opts = self.options if self.ack_timeout == limit else replace(self, ack_timeout=limit).options
        adapter = self.nsp.adapter
        await adapter.broadcast_with_ack(packet, opts, on_count, on_ack)
        if self.is_local:
            servers.append(1)
        else:
            try:
                servers.append(await adapter.server_count())
            except Exception:
                servers.append(1)  # the other nodes cannot be counted: wait for this one
        check()
        try:
            await asyncio.wait_for(done, limit)
        except asyncio.TimeoutError:
            raise AckTimeoutError(responses=list(responses)) from None
        return responses

    async def fetch_sockets(self) -> list[RemoteSocket]:
        infos: list[SocketInfo] = await self.nsp.adapter.fetch_sockets(self.options)
        return [
            RemoteSocket(i.id, i.namespace, frozenset(i.rooms), i.data, i.handshake, self.nsp) for i in infos
        ]

    async def sockets_join(self, *rooms: RoomArg) -> None:
        await self.nsp.adapter.add_sockets(self.options, sorted(rooms_of(rooms)))

    async def sockets_leave(self, *rooms: RoomArg) -> None:
        await self.nsp.adapter.del_sockets(self.options, sorted(rooms_of(rooms)))

    async def disconnect_sockets(self, close: bool = False) -> None:
        await self.nsp.adapter.disconnect_sockets(self.options, close)


class Broadcaster:
    """The broadcast operations on a whole namespace, for objects that can name their operator."""

    def _all(self) -> BroadcastOperator:
        raise NotImplementedError

    def to(self, *rooms: RoomArg) -> BroadcastOperator:
        return self._all().to(*rooms)

    in_ = to

    def except_(self, *rooms: RoomArg) -> BroadcastOperator:
        return self._all().except_(*rooms)

    @property
    def volatile(self) -> BroadcastOperator:
        return self._all().volatile

    @property
    def local(self) -> BroadcastOperator:
        return self._all().local

    def timeout(self, seconds: float) -> BroadcastOperator:
        return self._all().timeout(seconds)

    async def emit(self, event: str, *args: Any) -> None:
        await self._all().emit(event, *args)

    async def emit_with_ack(self, event: str, *args: Any, timeout: float | None = None) -> list[Any]:
        return await self._all().emit_with_ack(event, *args, timeout=timeout)

    async def fetch_sockets(self) -> list[RemoteSocket]:
        return await self._all().fetch_sockets()

    async def sockets_join(self, *rooms: RoomArg) -> None:
        await self._all().sockets_join(*rooms)

    async def sockets_leave(self, *rooms: RoomArg) -> None:
        await self._all().sockets_leave(*rooms)

    async def disconnect_sockets(self, close: bool = False) -> None:
        await self._all().disconnect_sockets(close)

    async def server_side_emit(self, event: str, *args: Any) -> None:
        """Run `event`'s `@router.on_server_side` handler on every other node of the cluster."""
        await self._all().nsp.server_side_emit(event, *args)

    async def server_side_emit_with_ack(self, event: str, *args: Any, timeout: float = 5.0) -> list[Any]:
        """As `server_side_emit`; returns the other nodes' answers, or raises AckTimeoutError
        (carrying the answers that came) after `timeout` seconds."""
        return await self._all().nsp.server_side_emit_with_ack(event, *args, timeout=timeout)

    async def server_count(self) -> int:
        """How many nodes serve the namespace (1 without a cluster adapter)."""
        return await self._all().nsp.server_count()
