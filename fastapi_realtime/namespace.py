"""A namespace: its sockets, its adapter, its handler table and its ack id counter."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from ._types import EioFrame
from .adapters.base import NO_ANSWER, AckCallback, Adapter, BroadcastOptions, SocketInfo
from .broadcast import Broadcaster, BroadcastOperator
from .observe import Observation
from .options import ServerOptions
from .recovery import RecoveryStore
from .router import HandlerTable, Hooks, UsesMiddlewares
from .socket import SocketServer
from .socketio import msgpack_codec
from .socketio.packet import Packet, PacketType, ack_packet, encode
from .socketio.speedups import FAST

if TYPE_CHECKING:
    from .socket import Socket


class NamespaceServer(SocketServer, Protocol):
    """The server as its namespaces use it (server.Realtime is one; that module is above this
    one): what their sockets need, the JSON fallback, and the factories of a namespace's adapter
    and recovery store."""

    @property
    def json_default(self) -> Callable[[Any], Any]: ...

    @property
    def options(self) -> ServerOptions: ...

    @property
    def observation(self) -> Observation: ...

    @property
    def adapter_factory(self) -> Callable[[Namespace], Adapter]: ...

    def recovery_factory(self, nsp: Namespace) -> RecoveryStore | None: ...


def _server_side_event(event: str) -> str:
    if not isinstance(event, str) or not event:
        raise TypeError("a server-side event name must be a non-empty string")
    return event


class Namespace(Broadcaster, UsesMiddlewares):
    """Server-side state of one namespace; also offers the broadcast operations on all of it."""

    def __init__(self, server: NamespaceServer, name: str, table: HandlerTable) -> None:
        self.server = server
        self.name = name
        self.table = table
        self.sockets: dict[str, Socket] = {}
        # Recovered sockets not yet admitted: what reaches them meanwhile waits here, in order.
        self._recovering: dict[str, list[EioFrame]] = {}
        self._ack_id = 0
        self.json_default = server.json_default
        self.observation = server.observation
        self._msgpack = server.options.parser == "msgpack"
        # The text before an EVENT's or ACK's id, for the C accelerator (the JSON parser only).
        suffix = "" if name == "/" else name + ","
        self._heads: dict[PacketType, str] = (
            {} if self._msgpack else {PacketType.EVENT: "42" + suffix, PacketType.ACK: "43" + suffix}
        )
        self._ack_head = self._heads.get(PacketType.ACK)  # None: msgpack
        self.adapter: Adapter = server.adapter_factory(self)
        self.recovery: RecoveryStore | None = server.recovery_factory(self)

    def __repr__(self) -> str:
        return f"<Namespace {self.name}>"

    # -- hooks for the adapter -------------------------------------------------------------
    def encode(self, packet: Packet) -> list[EioFrame]:
        if self._msgpack:
            return [msgpack_codec.encode(packet, self.json_default)]  # one binary message
        fast = FAST.frame
        if fast is not None and packet.namespace == self.name:
            head = self._heads.get(packet.type)
            if head is not None:
                text = fast(head, packet.data, packet.id)
                if text is not None:
                    return [text]
        parts = encode(packet, self.json_default)
        parts[0] = "4" + parts[0]  # type: ignore[operator]
        return parts

    def encode_ack(self, data: Any, ack_id: int) -> list[EioFrame]:
        """The frames of an ACK (every acked event sends one): as encode(ack_packet(...))."""
        fast = FAST.frame
        head = self._ack_head
        if fast is not None and head is not None:
            text = fast(head, data, ack_id)
            if text is not None:
                return [text]
        return self.encode(ack_packet(self.name, data, ack_id))

    async def frames_for(self, packet: Packet, opts: BroadcastOptions, offset: str | None = None) -> list[EioFrame]:
        store = self.recovery
        # Stored (and so given an offset): plain events without an ack id, not volatile (§2.4.2).
        if store is None or opts.volatile or packet.id is not None or packet.type is not PacketType.EVENT:
            return self.encode(packet)
        return await store.store(packet, opts, self.encode, offset)

    async def on_server_side(self, packet: list[Any]) -> Any:
        handler = self.table.server_side.get(packet[0]) if packet and type(packet[0]) is str else None
        if handler is None:
            return NO_ANSWER
        result = handler(*packet[1:])
        return await result if inspect.isawaitable(result) else result

    async def server_side_emit(self, event: str, *args: Any) -> None:
        """Run `event`'s `@router.on_server_side` handler on every other node of the cluster."""
        await self.adapter.server_side_emit([_server_side_event(event), *args])

    async def server_side_emit_with_ack(self, event: str, *args: Any, timeout: float = 5.0) -> list[Any]:
        """As `server_side_emit`, and return the other nodes' answers (one per node that handles
        `event`). Raises AckTimeoutError, carrying the answers that came, after `timeout` seconds."""
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ValueError("timeout must be a positive number of seconds")
        return await self.adapter.server_side_emit_with_ack([_server_side_event(event), *args], float(timeout))

    async def server_count(self) -> int:
        """How many nodes serve this namespace (1 without a cluster adapter)."""
        return await self.adapter.server_count()

    def deliver(self, sid: str, frames: Sequence[EioFrame], volatile: bool) -> bool:
        socket = self.sockets.get(sid)
        if socket is None:
            pending = self._recovering.get(sid)
            if pending is None or volatile:
                return False
            pending.extend(frames)
            return True
        return socket.send_frames(frames, volatile)

    def begin_recovery(self, sid: str, rooms: Sequence[str]) -> None:
        """A recovered session rejoins its rooms now, in the step that ended its replay, so no
        event falls between the replay and live delivery; events for it wait until it is admitted."""
        self._recovering[sid] = []
        self.adapter.add_all(sid, rooms)

    def register_ack(self, sid: str, ack_id: int, callback: AckCallback) -> bool:
        socket = self.sockets.get(sid)
        if socket is None:
            return False
        socket.register_ack(ack_id, callback)
        return True

    def next_ack_id(self) -> int:
        ack_id = self._ack_id
        self._ack_id += 1
        return ack_id

    def socket_info(self, sid: str) -> SocketInfo | None:
        socket = self.sockets.get(sid)
        if socket is None:
            return None
        return SocketInfo(socket.id, self.name, socket.rooms, socket.data, socket.handshake.to_dict())

    def disconnect_local(self, sid: str, close: bool) -> None:
        socket = self.sockets.get(sid)
        if socket is not None:
            socket.disconnect_now(close)

    # -- membership --------------------------------------------------------------------------
    def add(self, socket: Socket) -> None:
        self.sockets[socket.id] = socket
        self.adapter.add_all(socket.id, (socket.id,))
        observer = self.observation.observer
        if observer is not None:
            observer.socket_connected(socket)
        pending = self._recovering.pop(socket.id, None)
        if pending:
            socket.send_frames(pending)  # held until the CONNECT reply, after the replay

    def remove(self, socket: Socket) -> None:
        if self.sockets.get(socket.id) is socket:
            del self.sockets[socket.id]
        self._recovering.pop(socket.id, None)
        self.adapter.remove_all(socket.id)

    def _hooks(self) -> Hooks:
        return self.table

    def _all(self) -> BroadcastOperator:
        return BroadcastOperator(self)
