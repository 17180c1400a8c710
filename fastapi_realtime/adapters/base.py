"""The adapter interface (protocol.md §6): room bookkeeping and the remote-capable operations.

An adapter talks to its namespace only through `NamespaceHooks`, a few methods that deliver
pre-encoded frames and act on local sockets; it never reaches into the server's private parts.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .._types import EioFrame
from ..observe import Observation
from ..socketio.packet import Packet

AckCallback = Callable[[list[Any] | None], None]
# What `NamespaceHooks.on_server_side` returns when no handler listens: no answer is sent, as
# in Node (the requester's wait for that node times out).
NO_ANSWER: Any = object()


@dataclass(frozen=True, slots=True)
class BroadcastOptions:
    """Which sockets a broadcast reaches, and how (protocol.md §6, `apply`)."""

    rooms: frozenset[str] = frozenset()
    except_rooms: frozenset[str] = frozenset()
    volatile: bool = False
    local: bool = False
    timeout: float | None = None


@dataclass(slots=True)
class SocketInfo:
    """A snapshot of a socket that can travel between nodes."""

    id: str
    namespace: str
    rooms: set[str]
    data: dict[str, Any]
    handshake: dict[str, Any] = field(default_factory=dict)


class NamespaceHooks(Protocol):
    """The narrow callback surface a namespace offers its adapter."""

    name: str
    # Turns what JSON cannot hold (models, dates) into what it can, as for clients.
    json_default: Callable[[Any], Any]
    # The server's observers (Admin UI, metrics, traces): told of rooms and deliveries.
    observation: Observation

    def encode(self, packet: Packet) -> list[EioFrame]: ...

    async def frames_for(self, packet: Packet, opts: BroadcastOptions, offset: str | None = None) -> list[EioFrame]:
        """The packet's frames, with its recovery offset when it is a stored event: `offset`
        when the adapter supplies one (a stream entry id, the same on every node), else one the
        recovery store mints."""
        ...

    async def on_server_side(self, packet: list[Any]) -> Any:
        """Run the server-side handler of `packet[0]` (`@router.on_server_side`) with the rest
        as its arguments; its answer, or NO_ANSWER when no handler listens."""
        ...

    def deliver(self, sid: str, frames: Sequence[EioFrame], volatile: bool) -> bool: ...

    def register_ack(self, sid: str, ack_id: int, callback: AckCallback) -> bool: ...

    def next_ack_id(self) -> int: ...

    def socket_info(self, sid: str) -> SocketInfo | None: ...

    def disconnect_local(self, sid: str, close: bool) -> None: ...


class Adapter(ABC):
    """Per-namespace room state plus broadcast; subclasses add other nodes."""

    def __init__(self, nsp: NamespaceHooks) -> None:
        self.nsp = nsp
        self.rooms: dict[str, set[str]] = {}
        self.sids: dict[str, set[str]] = {}

    async def init(self) -> None:
        """Start background work (subscriptions, heartbeats)."""

    async def close(self) -> None:
        """Stop background work."""

    async def server_count(self) -> int:
        return 1

    # -- local bookkeeping ---------------------------------------------------------------------
    def room_created(self, room: str) -> None:
        """A room got its first local member (a sharded adapter subscribes to its channel)."""

    def room_deleted(self, room: str) -> None:
        """A room lost its last local member."""

    def add_all(self, sid: str, rooms: Iterable[str]) -> None:
        joined = self.sids.setdefault(sid, set())
        all_rooms = self.rooms
        for room in rooms:
            if room not in joined:
                joined.add(room)
                members = all_rooms.get(room)
                if members is None:
                    all_rooms[room] = {sid}
                    self.room_created(room)
                else:
                    members.add(sid)
                observer = self.nsp.observation.observer
                if observer is not None:
                    observer.room_joined(self.nsp.name, room, sid)

    def remove(self, sid: str, room: str) -> None:
        joined = self.sids.get(sid)
        if joined is not None:
            joined.discard(room)
        self._leave(sid, room)

    def remove_all(self, sid: str) -> None:
        for room in self.sids.pop(sid, ()):
            self._leave(sid, room)

    def _leave(self, sid: str, room: str) -> None:
        members = self.rooms.get(room)
        if members is not None and sid in members:
            observer = self.nsp.observation.observer
            if observer is not None:
                observer.room_left(self.nsp.name, room, sid)
            members.discard(sid)
            if not members:
                del self.rooms[room]
                self.room_deleted(room)

    def sent(self, data: Any, sids: Sequence[str]) -> None:
        """Tell the observers a broadcast event went to these local clients."""
        observer = self.nsp.observation.observer
        if observer is not None:
            observer.event_sent(self.nsp.name, None, data, len(sids))
            observer.broadcast_sent(self.nsp.name, sids, data)

    def socket_rooms(self, sid: str) -> set[str]:
        return set(self.sids.get(sid, ()))

    def matching(self, opts: BroadcastOptions) -> Iterable[str]:
        """Local socket ids a broadcast with `opts` reaches: the rooms' union minus the except rooms."""
        rooms = self.rooms
        excluded: set[str] = set()
        for room in opts.except_rooms:
            excluded.update(rooms.get(room, ()))
        if opts.rooms:
            if len(opts.rooms) == 1:
                (room,) = opts.rooms
                members: Iterable[str] = rooms.get(room, ())
            else:
                union: set[str] = set()
                for room in opts.rooms:
                    union.update(rooms.get(room, ()))
                members = union
        else:
            members = self.sids
        if excluded:
            return [sid for sid in members if sid not in excluded]
        return list(members)

    # -- operations (local here; cluster adapters also reach other nodes) -----------------
    @abstractmethod
    async def broadcast(self, packet: Packet, opts: BroadcastOptions) -> None: ...

    @abstractmethod
    async def broadcast_with_ack(
        self, packet: Packet, opts: BroadcastOptions, on_count: Callable[[int], None], on_ack: AckCallback
    ) -> None: ...

    async def fetch_sockets(self, opts: BroadcastOptions) -> list[SocketInfo]:
        found = (self.nsp.socket_info(sid) for sid in self.matching(opts))
        return [info for info in found if info is not None]

    async def add_sockets(self, opts: BroadcastOptions, rooms: Sequence[str]) -> None:
        for sid in self.matching(opts):
            self.add_all(sid, rooms)

    async def del_sockets(self, opts: BroadcastOptions, rooms: Sequence[str]) -> None:
        for sid in self.matching(opts):
            for room in rooms:
                self.remove(sid, room)

    async def disconnect_sockets(self, opts: BroadcastOptions, close: bool) -> None:
        for sid in self.matching(opts):
            self.nsp.disconnect_local(sid, close)

    async def server_side_emit(self, packet: list[Any]) -> None:
        """Run `packet[0]`'s server-side handlers on the other nodes (this one is not one of
        them, as in Node); a single node has none."""

    async def server_side_emit_with_ack(self, packet: list[Any], timeout: float) -> list[Any]:
        """As `server_side_emit`, and collect each other node's answer within `timeout` seconds;
        raises AckTimeoutError (with the answers that came) when some node did not answer."""
        return []
