"""The cluster adapter of socket.io-adapter's newer backends (protocol.md §6.1), sans transport.

Messages `{uid, nsp, type, data}` with the types below; the sharded Redis and the Redis Streams
adapters carry them differently, so a subclass says only how to publish a message (returning
its offset when the backend has one) and how to answer one node, and feeds what it reads to
`on_message`. Also home of what every cluster adapter does alike for a request from another
node: act on local sockets, run a server-side handler, describe local sockets.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from abc import abstractmethod
from collections.abc import Callable, Coroutine, Sequence
from enum import IntEnum
from typing import Any

from .._logging import RateLimitedLog
from ..exceptions import AdapterUnavailableError
from ..socketio.packet import Packet, PacketType
from . import wire
from .base import NO_ANSWER, AckCallback, BroadcastOptions, NamespaceHooks, SocketInfo
from .memory import MemoryAdapter
from .pending import PendingRequests
from .redis_link import RedisLink, RedisUnavailable

logger = logging.getLogger("fastapi_realtime.redis")


class MessageType(IntEnum):
    INITIAL_HEARTBEAT = 1
    HEARTBEAT = 2
    BROADCAST = 3
    SOCKETS_JOIN = 4
    SOCKETS_LEAVE = 5
    DISCONNECT_SOCKETS = 6
    FETCH_SOCKETS = 7
    FETCH_SOCKETS_RESPONSE = 8
    SERVER_SIDE_EMIT = 9
    SERVER_SIDE_EMIT_RESPONSE = 10
    BROADCAST_CLIENT_COUNT = 11
    BROADCAST_ACK = 12
    ADAPTER_CLOSE = 13


# Types whose data may hold binary (then msgpack rather than JSON).
MAY_HOLD_BINARY = frozenset(
    {
        MessageType.BROADCAST,
        MessageType.BROADCAST_ACK,
        MessageType.FETCH_SOCKETS_RESPONSE,
        MessageType.SERVER_SIDE_EMIT,
        MessageType.SERVER_SIDE_EMIT_RESPONSE,
    }
)
RESPONSES = frozenset(
    {
        MessageType.FETCH_SOCKETS_RESPONSE,
        MessageType.SERVER_SIDE_EMIT_RESPONSE,
        MessageType.BROADCAST_CLIENT_COUNT,
        MessageType.BROADCAST_ACK,
    }
)


def random_id() -> str:
    """16 hex characters, as Node's ClusterAdapter names nodes and requests."""
    return secrets.token_hex(8)


def socket_payload(info: SocketInfo) -> dict[str, Any]:
    """A socket as Node's RemoteSocket is built from: id, handshake, rooms, data."""
    return {"id": info.id, "handshake": info.handshake, "rooms": sorted(info.rooms), "data": info.data}


def socket_info(item: Any, namespace: str) -> SocketInfo:
    item = wire.expect_dict(item, "socket")
    handshake = item.get("handshake")
    data = item.get("data")
    return SocketInfo(
        id=wire.expect_str(item.get("id"), "socket id"),
        namespace=namespace,
        rooms=set(wire.room_list(item.get("rooms"), "socket rooms")),
        data=data if data is not None else {},
        handshake=handshake if isinstance(handshake, dict) else {},
    )


def server_side_packet(value: Any) -> list[Any]:
    if not isinstance(value, list) or not value or not isinstance(value[0], str):
        raise wire.MalformedMessage("server-side emit data is not [event, ...args]")
    return value


class RemoteOps(MemoryAdapter):
    """What a node does for another node's request, whatever the wire: shared by every Redis adapter."""

    def __init__(self, nsp: NamespaceHooks, link: RedisLink) -> None:
        super().__init__(nsp)
        self.link = link
        # The server's observers hear of lost publishes and requests nobody answered in time.
        link.observation = nsp.observation
        self._requests = PendingRequests(on_timeout=self._request_timed_out)
        self._acks: dict[str, tuple[Callable[[int], None], AckCallback]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._warn = RateLimitedLog(logger, logging.WARNING, interval=10.0)

    def _request_timed_out(self) -> None:
        observer = self.nsp.observation.observer
        if observer is not None:
            observer.adapter_error("timeout")

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def cancel_tasks(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    def malformed(self, where: str, exc: Exception) -> None:
        self.link.malformed += 1
        self._warn("dropped a malformed message from Redis (%s): %s", where, exc)

    def apply_membership(self, opts: BroadcastOptions, rooms: Sequence[str], join: bool) -> None:
        for sid in self.matching(opts):
            if join:
                self.add_all(sid, rooms)
            else:
                for room in rooms:
                    self.remove(sid, room)

    def disconnect_matching(self, opts: BroadcastOptions, close: bool) -> None:
        for sid in self.matching(opts):
            self.nsp.disconnect_local(sid, close)

    def local_sockets(self, opts: BroadcastOptions) -> list[dict[str, Any]]:
        found = (self.nsp.socket_info(sid) for sid in self.matching(opts))
        return [socket_payload(info) for info in found if info is not None]

    def run_server_side(self, packet: list[Any], answer: Callable[[Any], None] | None) -> None:
        """Run the handler in its own task (user code must not hold up the Redis reader)."""

        async def run() -> None:
            try:
                result = await self.nsp.on_server_side(packet)
            except Exception:
                logger.exception("server-side handler for %r failed on %s", packet[0], self.nsp.name)
                return
            if answer is not None and result is not NO_ANSWER:
                answer(result)

        self.spawn(run())

    def broadcast_for_other(
        self, data: list[Any], opts: BroadcastOptions, on_count: Callable[[int], None], on_ack: Callable[[Any], None]
    ) -> None:
        """Another node's broadcast with acks, on this node's sockets: count, then each ack's
        first argument (as Node passes on)."""

        def ack(args: list[Any] | None) -> None:
            if args is not None:
                on_ack(args[0] if args else None)

        packet = Packet(PacketType.EVENT, self.nsp.name, data)
        self.spawn(MemoryAdapter.broadcast_with_ack(self, packet, opts, on_count, ack))

    def expect_acks(self, rid: str, on_count: Callable[[int], None], on_ack: AckCallback, timeout: float) -> None:
        self._acks[rid] = (on_count, on_ack)
        # As in Node: nothing tells when every remote ack is in, so the request is forgotten later.
        asyncio.get_running_loop().call_later(timeout + 1.0, self._acks.pop, rid, None)

    async def count_others(self, what: str, partial: list[Any] | None = None) -> int:
        try:
            return await self.server_count() - 1
        except AdapterUnavailableError as exc:
            raise AdapterUnavailableError(f"{what}: {exc}", partial) from None

    async def numsub(self, channel: str, sharded: bool = False) -> int:
        try:
            return max(1, await self.link.numsub(channel, sharded=sharded))
        except RedisUnavailable as exc:
            raise AdapterUnavailableError(str(exc)) from exc


class ClusterAdapter(RemoteOps):
    """§6.1 messages over some transport; subclasses publish and read."""

    requests_timeout = 5.0

    def __init__(self, nsp: NamespaceHooks, link: RedisLink) -> None:
        super().__init__(nsp, link)
        self.uid = random_id()

    @abstractmethod
    async def do_publish(self, message: dict[str, Any]) -> str | None:
        """Send `message` to the other nodes; its offset when the backend keeps one."""

    @abstractmethod
    def do_publish_response(self, requester: str, response: dict[str, Any]) -> None:
        """Send `response` to node `requester` only."""

    def message(self, kind: MessageType, data: dict[str, Any] | None = None) -> dict[str, Any]:
        message: dict[str, Any] = {"uid": self.uid, "nsp": self.nsp.name, "type": int(kind)}
        if data is not None:
            message["data"] = data
        return message

    async def publish(self, kind: MessageType, data: dict[str, Any] | None = None) -> str | None:
        try:
            return await self.do_publish(self.message(kind, data))
        except RedisUnavailable as exc:
            self._warn("cannot publish to Redis (%s); only this node's sockets are reached", exc)
            return None

    def respond(self, requester: str, kind: MessageType, data: dict[str, Any]) -> None:
        self.do_publish_response(requester, self.message(kind, data))

    # -- incoming -------------------------------------------------------------------------------
    async def on_message(self, message: Any, offset: str | None = None) -> None:
        """A message read from the backend (any node's, possibly this one's)."""
        message = wire.expect_dict(message, "message")
        uid = message.get("uid")
        if uid == self.uid or message.get("nsp") != self.nsp.name:
            return
        kind = wire.expect_int(message.get("type"), "message type")
        data = message.get("data")
        requester = uid if isinstance(uid, str) else ""
        if kind == MessageType.BROADCAST:
            data = wire.expect_dict(data, "data")
            event = wire.event_data(data.get("packet"), self.nsp.name)
            if event is None:
                return
            opts = wire.decode_options(data.get("opts"))
            rid = data.get("requestId")
            if rid is None:
                await self.deliver_broadcast(Packet(PacketType.EVENT, self.nsp.name, event), opts, offset)
                return
            rid = wire.expect_str(rid, "requestId")
            self.broadcast_for_other(
                event,
                opts,
                lambda count: self.respond(
                    requester, MessageType.BROADCAST_CLIENT_COUNT, {"requestId": rid, "clientCount": count}
                ),
                lambda arg: self.respond(requester, MessageType.BROADCAST_ACK, {"requestId": rid, "packet": arg}),
            )
        elif kind in (MessageType.SOCKETS_JOIN, MessageType.SOCKETS_LEAVE):
            data = wire.expect_dict(data, "data")
            rooms = wire.room_list(data.get("rooms"), "rooms")
            self.apply_membership(wire.decode_options(data.get("opts")), rooms, kind == MessageType.SOCKETS_JOIN)
        elif kind == MessageType.DISCONNECT_SOCKETS:
            data = wire.expect_dict(data, "data")
            self.disconnect_matching(wire.decode_options(data.get("opts")), bool(data.get("close")))
        elif kind == MessageType.FETCH_SOCKETS:
            data = wire.expect_dict(data, "data")
            rid = wire.expect_str(data.get("requestId"), "requestId")
            sockets = self.local_sockets(wire.decode_options(data.get("opts")))
            self.respond(requester, MessageType.FETCH_SOCKETS_RESPONSE, {"requestId": rid, "sockets": sockets})
        elif kind == MessageType.SERVER_SIDE_EMIT:
            data = wire.expect_dict(data, "data")
            packet = server_side_packet(data.get("packet"))
            rid = data.get("requestId")
            if rid is None:
                self.run_server_side(packet, None)
            else:
                rid = wire.expect_str(rid, "requestId")
                self.run_server_side(
                    packet,
                    lambda answer: self.respond(
                        requester, MessageType.SERVER_SIDE_EMIT_RESPONSE, {"requestId": rid, "packet": answer}
                    ),
                )
        elif kind in RESPONSES:
            self.on_response(kind, wire.expect_dict(data, "data"), requester)
        # Heartbeats and ADAPTER_CLOSE need nothing here: nodes are counted by subscribers.

    def on_response(self, kind: int, data: dict[str, Any], node: str) -> None:
        rid = data.get("requestId")
        if not isinstance(rid, str):
            return
        if kind == MessageType.BROADCAST_CLIENT_COUNT:
            ack = self._acks.get(rid)
            if ack is not None:
                ack[0](wire.expect_int(data.get("clientCount"), "clientCount"))
        elif kind == MessageType.BROADCAST_ACK:
            ack = self._acks.get(rid)
            if ack is not None:
                ack[1]([data.get("packet")])
        elif kind == MessageType.FETCH_SOCKETS_RESPONSE:
            sockets = data.get("sockets")
            if not isinstance(sockets, list):
                raise wire.MalformedMessage("sockets is not a list")
            self._requests.answer(rid, [socket_info(item, self.nsp.name) for item in sockets])
        elif kind == MessageType.SERVER_SIDE_EMIT_RESPONSE:
            self._requests.answer(rid, [data.get("packet")])

    async def deliver_broadcast(self, packet: Packet, opts: BroadcastOptions, offset: str | None) -> None:
        """Hand a broadcast to this node's sockets (with its offset, when it is recoverable)."""
        try:
            frames = await self.nsp.frames_for(packet, opts, offset)
        except (TypeError, ValueError, RecursionError) as exc:
            self.malformed("broadcast", exc)
            return
        self.deliver_frames(frames, opts, offset, packet.data)

    def deliver_frames(self, frames: list[Any], opts: BroadcastOptions, offset: str | None, data: Any = None) -> int:
        """Deliver to the local sockets `opts` reaches; how many took it."""
        return self.deliver_local(frames, opts, data)

    # -- outgoing -------------------------------------------------------------------------------
    async def broadcast(self, packet: Packet, opts: BroadcastOptions) -> None:
        offset = None
        if not opts.local:
            offset = await self.publish(
                MessageType.BROADCAST,
                {"packet": wire.event_packet_dict(self.nsp.name, packet.data), "opts": wire.encode_options(opts)},
            )
        await self.deliver_broadcast(packet, opts, offset)

    async def broadcast_with_ack(
        self, packet: Packet, opts: BroadcastOptions, on_count: Callable[[int], None], on_ack: AckCallback
    ) -> None:
        if not opts.local:
            rid = random_id()
            self.expect_acks(rid, on_count, on_ack, opts.timeout or self.requests_timeout)
            await self.publish(
                MessageType.BROADCAST,
                {
                    "packet": wire.event_packet_dict(self.nsp.name, packet.data),
                    "requestId": rid,
                    "opts": wire.encode_options(opts),
                },
            )
        await MemoryAdapter.broadcast_with_ack(self, packet, opts, on_count, on_ack)

    async def fetch_sockets(self, opts: BroadcastOptions) -> list[SocketInfo]:
        local = await MemoryAdapter.fetch_sockets(self, opts)
        if opts.local:
            return local
        others = await self.count_others("fetch_sockets", list(local))
        if others <= 0:
            return local
        rid = random_id()
        self._requests.open(rid, others, local)
        await self.publish(MessageType.FETCH_SOCKETS, {"opts": wire.encode_options(opts), "requestId": rid})
        return await self._requests.wait(rid, opts.timeout or self.requests_timeout, "fetch_sockets")

    async def add_sockets(self, opts: BroadcastOptions, rooms: Sequence[str]) -> None:
        if not opts.local:
            await self.publish(MessageType.SOCKETS_JOIN, {"opts": wire.encode_options(opts), "rooms": list(rooms)})
        await MemoryAdapter.add_sockets(self, opts, rooms)

    async def del_sockets(self, opts: BroadcastOptions, rooms: Sequence[str]) -> None:
        if not opts.local:
            await self.publish(MessageType.SOCKETS_LEAVE, {"opts": wire.encode_options(opts), "rooms": list(rooms)})
        await MemoryAdapter.del_sockets(self, opts, rooms)

    async def disconnect_sockets(self, opts: BroadcastOptions, close: bool) -> None:
        if not opts.local:
            await self.publish(MessageType.DISCONNECT_SOCKETS, {"opts": wire.encode_options(opts), "close": close})
        await MemoryAdapter.disconnect_sockets(self, opts, close)

    async def server_side_emit(self, packet: list[Any]) -> None:
        await self.publish(MessageType.SERVER_SIDE_EMIT, {"packet": packet})

    async def server_side_emit_with_ack(self, packet: list[Any], timeout: float) -> list[Any]:
        others = await self.count_others("server_side_emit_with_ack")
        if others <= 0:
            return []
        rid = random_id()
        self._requests.open(rid, others)
        await self.publish(MessageType.SERVER_SIDE_EMIT, {"requestId": rid, "packet": packet})
        return await self._requests.wait(rid, timeout, "server_side_emit_with_ack")
