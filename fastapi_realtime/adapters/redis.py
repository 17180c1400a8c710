"""The Redis pub/sub adapter, wire-compatible with Node's `@socket.io/redis-adapter` 8.x
(protocol.md §7), so Python and Node nodes can serve one cluster.

Broadcasts are msgpack `[uid, packet, opts]` on `<key>#<nsp>#` (or `<key>#<nsp>#<room>#` for
exactly one room); requests are JSON on `<key>-request#<nsp>#` (a broadcast with acks is
msgpack), answers go to `<key>-response#<nsp>#`. The node count is the number of subscribers
of the request channel.
"""

from __future__ import annotations

import logging
import secrets
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..socketio.packet import Packet, PacketType
from . import wire
from .base import AckCallback, BroadcastOptions, NamespaceHooks, SocketInfo
from .cluster import RemoteOps, server_side_packet, socket_info
from .redis_link import DEFAULT_MAX_OUTBOX, LinkedFactory, LinkOptions, RedisLink, positive_seconds, url_connector

logger = logging.getLogger("fastapi_realtime.redis")

DEFAULT_REQUESTS_TIMEOUT = 5.0

# The classic adapter's own request types (not the ClusterAdapter ones of §6.1).
SOCKETS, ALL_ROOMS, REMOTE_JOIN, REMOTE_LEAVE, REMOTE_DISCONNECT, REMOTE_FETCH = range(6)
SERVER_SIDE_EMIT, BROADCAST, BROADCAST_CLIENT_COUNT, BROADCAST_ACK = range(6, 10)

_UID_ALPHABET = string.ascii_letters + string.digits


def node_uid(length: int = 6) -> str:
    return "".join(secrets.choice(_UID_ALPHABET) for _ in range(length))


def glob_escape(text: str) -> str:
    """A PSUBSCRIBE pattern matching `text` literally."""
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


@dataclass(frozen=True, slots=True, kw_only=True)
class RedisAdapterOptions:
    """Options of the pub/sub adapter (Node's names in comments). Durations are in seconds."""

    key: str = "socket.io"  # key
    requests_timeout: float = DEFAULT_REQUESTS_TIMEOUT  # requestsTimeout
    # Answers to the requester's own channel instead of the common one (Node's
    # publishOnSpecificResponseChannel; every 8.x node listens on both).
    publish_on_specific_response_channel: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key:
            raise ValueError("key must be a non-empty string")
        positive_seconds("requests_timeout", self.requests_timeout)
        if not isinstance(self.publish_on_specific_response_channel, bool):
            raise ValueError("publish_on_specific_response_channel must be a bool")


RedisAdapterFactory = LinkedFactory["RedisAdapter", RedisAdapterOptions]


class RedisAdapter(RemoteOps):
    """Rooms and broadcasts across every node on one Redis (pub/sub: nothing is kept)."""

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        key: str = "socket.io",
        requests_timeout: float = DEFAULT_REQUESTS_TIMEOUT,
        publish_on_specific_response_channel: bool = False,
        max_outbox: int = DEFAULT_MAX_OUTBOX,
        redis_options: dict[str, Any] | None = None,
    ) -> RedisAdapterFactory:
        """An adapter factory for `Realtime(adapter=...)` on the Redis at `url`.

        `redis_options` go to `redis.asyncio.Redis.from_url` (timeouts, TLS, credentials).
        """
        options = RedisAdapterOptions(
            key=key,
            requests_timeout=requests_timeout,
            publish_on_specific_response_channel=publish_on_specific_response_channel,
        )
        link = RedisLink(url_connector(url, redis_options), options=LinkOptions(max_outbox=max_outbox))
        return LinkedFactory(RedisAdapter, link, options)

    @classmethod
    def from_client(
        cls,
        client: Any,
        *,
        key: str = "socket.io",
        requests_timeout: float = DEFAULT_REQUESTS_TIMEOUT,
        publish_on_specific_response_channel: bool = False,
        max_outbox: int = DEFAULT_MAX_OUTBOX,
    ) -> RedisAdapterFactory:
        """As `from_url`, over a `redis.asyncio.Redis` client of yours (it is not closed)."""
        options = RedisAdapterOptions(
            key=key,
            requests_timeout=requests_timeout,
            publish_on_specific_response_channel=publish_on_specific_response_channel,
        )
        link = RedisLink(lambda: client, options=LinkOptions(max_outbox=max_outbox), owns_client=False)
        return LinkedFactory(RedisAdapter, link, options)

    def __init__(self, nsp: NamespaceHooks, link: RedisLink, options: RedisAdapterOptions) -> None:
        super().__init__(nsp, link)
        self.options = options
        self.uid = node_uid()
        name = nsp.name
        self.channel = f"{options.key}#{name}#"
        self.request_channel = f"{options.key}-request#{name}#"
        self.response_channel = f"{options.key}-response#{name}#"
        self.specific_response_channel = f"{self.response_channel}{self.uid}#"
        # What every broadcast of this node starts with: msgpack [uid, ... (a 3-array, a fixstr).
        self._own_prefix = b"\x93" + wire.pack(self.uid)
        self._started = False

    # -- lifecycle -----------------------------------------------------------------------------
    async def init(self) -> None:
        if self._started:
            return
        self._started = True
        await self.link.acquire()
        await self.link.subscribe(glob_escape(self.channel) + "*", self._on_broadcast, kind="pattern")
        for channel in (self.request_channel, self.response_channel, self.specific_response_channel):
            await self.link.subscribe(channel, self._on_request_channel)

    async def close(self) -> None:
        if not self._started:
            return
        self._started = False
        await self.link.unsubscribe(glob_escape(self.channel) + "*", kind="pattern")
        for channel in (self.request_channel, self.response_channel, self.specific_response_channel):
            await self.link.unsubscribe(channel)
        self.cancel_tasks()
        await self.link.release()

    async def server_count(self) -> int:
        return await self.numsub(self.request_channel)

    def _json(self, obj: Any) -> bytes:
        return wire.to_json(obj, self.nsp.json_default)

    def _pack(self, obj: Any) -> bytes:
        return wire.pack(obj, self.nsp.json_default)

    # -- broadcasting ----------------------------------------------------------------------------
    async def broadcast(self, packet: Packet, opts: BroadcastOptions) -> None:
        # Encoded for local clients first: data they cannot take raises before anything leaves.
        frames = await self.nsp.frames_for(packet, opts)
        if not opts.local:
            message = [self.uid, wire.event_packet_dict(self.nsp.name, packet.data), wire.encode_options(opts)]
            channel = self.channel
            if len(opts.rooms) == 1:
                (room,) = opts.rooms
                channel += room + "#"
            self.link.publish(channel, self._pack(message))
        self.deliver_local(frames, opts, packet.data)

    async def _on_broadcast(self, channel: str, raw: bytes) -> None:
        if raw.startswith(self._own_prefix):
            return  # this node's own broadcast, echoed by Redis: not worth unpacking
        room = channel[len(self.channel) : -1] if channel.endswith("#") else ""
        if room and room not in self.rooms:
            return  # a one-room broadcast for a room with no member here
        try:
            message = wire.unpack(raw)
            if not isinstance(message, list) or len(message) < 3:
                raise wire.MalformedMessage("a broadcast is not [uid, packet, opts]")
            uid, packet, raw_opts = message[0], message[1], message[2]
            if uid == self.uid:
                return
            data = wire.event_data(packet, self.nsp.name)
            if data is None:
                return
            opts = wire.decode_options(raw_opts)
            frames = await self.nsp.frames_for(Packet(PacketType.EVENT, self.nsp.name, data), opts)
        except (wire.MalformedMessage, TypeError, ValueError, RecursionError) as exc:
            self.malformed(channel, exc)
            return
        self.deliver_local(frames, opts, data)

    async def broadcast_with_ack(
        self, packet: Packet, opts: BroadcastOptions, on_count: Callable[[int], None], on_ack: AckCallback
    ) -> None:
        if not opts.local:
            rid = node_uid()
            self.expect_acks(rid, on_count, on_ack, opts.timeout or self.options.requests_timeout)
            message = {
                "uid": self.uid,
                "requestId": rid,
                "type": BROADCAST,
                "packet": wire.event_packet_dict(self.nsp.name, packet.data),
                "opts": wire.encode_options(opts),
            }
            self.link.publish(self.request_channel, self._pack(message))
        await super().broadcast_with_ack(packet, opts, on_count, on_ack)

    # -- requests from other nodes -----------------------------------------------------------
    async def _on_request_channel(self, channel: str, raw: bytes) -> None:
        try:
            message = wire.expect_dict(wire.decode_any(raw), "request")
            if channel.startswith(self.response_channel):
                self._on_response(message)
            else:
                await self._on_request(message)
        except (wire.MalformedMessage, TypeError, ValueError, KeyError, RecursionError) as exc:
            self.malformed(channel, exc)

    def _respond(self, request: dict[str, Any], payload: bytes) -> None:
        channel = self.response_channel
        if self.options.publish_on_specific_response_channel and isinstance(request.get("uid"), str):
            channel = f"{self.response_channel}{request['uid']}#"
        self.link.publish(channel, payload)

    async def _on_request(self, request: dict[str, Any]) -> None:
        kind = wire.expect_int(request.get("type"), "request type")
        own = request.get("uid") == self.uid
        if kind == BROADCAST:
            if not own:
                self._on_remote_broadcast_with_ack(request)
        elif kind in (REMOTE_JOIN, REMOTE_LEAVE, REMOTE_DISCONNECT):
            if not own:
                self._on_remote_membership(kind, request)
        elif kind == REMOTE_FETCH:
            if not own:
                rid = wire.expect_str(request.get("requestId"), "requestId")
                opts = wire.decode_options(request.get("opts"))
                sockets = self.local_sockets(opts)
                self._respond(request, self._json({"requestId": rid, "sockets": sockets}))
        elif kind == SERVER_SIDE_EMIT:
            if not own:
                self._on_server_side(request)
        elif kind == SOCKETS:
            if not own:
                rid = wire.expect_str(request.get("requestId"), "requestId")
                opts = BroadcastOptions(rooms=frozenset(wire.room_list(request.get("rooms"), "rooms")))
                self._respond(request, self._json({"requestId": rid, "sockets": list(self.matching(opts))}))
        elif kind == ALL_ROOMS:
            if not own:
                rid = wire.expect_str(request.get("requestId"), "requestId")
                self._respond(request, self._json({"requestId": rid, "rooms": list(self.rooms)}))
        # Other types are answers or come from newer peers: ignored, as Node does.

    def _on_remote_membership(self, kind: int, request: dict[str, Any]) -> None:
        if request.get("opts") is not None:
            opts = wire.decode_options(request["opts"])
            if kind == REMOTE_DISCONNECT:
                self.disconnect_matching(opts, bool(request.get("close", False)))
            else:
                self.apply_membership(opts, wire.room_list(request.get("rooms"), "rooms"), kind == REMOTE_JOIN)
            return
        # The older form: one socket by id, answered with the request id.
        sid = wire.expect_str(request.get("sid"), "sid")
        if sid not in self.sids:
            return
        only = BroadcastOptions(rooms=frozenset((sid,)))
        if kind == REMOTE_DISCONNECT:
            self.disconnect_matching(only, bool(request.get("close", False)))
        else:
            self.apply_membership(only, wire.room_list([request.get("room")], "room"), kind == REMOTE_JOIN)
        if isinstance(request.get("requestId"), str):
            self._respond(request, self._json({"requestId": request["requestId"]}))

    def _on_server_side(self, request: dict[str, Any]) -> None:
        packet = server_side_packet(request.get("data"))
        rid = request.get("requestId")

        def answer(value: Any) -> None:
            # Always to the common response channel, as Node does for this type.
            payload = {"type": SERVER_SIDE_EMIT, "requestId": rid, "data": value}
            self.link.publish(self.response_channel, self._json(payload))

        self.run_server_side(packet, None if rid is None else answer)

    def _on_remote_broadcast_with_ack(self, request: dict[str, Any]) -> None:
        rid = wire.expect_str(request.get("requestId"), "requestId")
        data = wire.event_data(request.get("packet"), self.nsp.name)
        if data is None:
            return

        def on_count(count: int) -> None:
            payload = {"type": BROADCAST_CLIENT_COUNT, "requestId": rid, "clientCount": count}
            self._respond(request, self._json(payload))

        def on_ack(arg: Any) -> None:
            self._respond(request, self._pack({"type": BROADCAST_ACK, "requestId": rid, "packet": arg}))

        self.broadcast_for_other(data, wire.decode_options(request.get("opts")), on_count, on_ack)

    def _on_response(self, response: dict[str, Any]) -> None:
        found = response.get("requestId")
        if not isinstance(found, str):
            return
        rid: str = found
        ack = self._acks.get(rid)
        if ack is not None:
            kind = response.get("type")
            if kind == BROADCAST_CLIENT_COUNT:
                ack[0](wire.expect_int(response.get("clientCount"), "clientCount"))
            elif kind == BROADCAST_ACK:
                ack[1]([response.get("packet")])
            return
        if rid not in self._requests:
            return
        if "sockets" in response:
            sockets = response["sockets"]
            if not isinstance(sockets, list):
                raise wire.MalformedMessage("sockets is not a list")
            self._requests.answer(rid, [socket_info(item, self.nsp.name) for item in sockets])
        elif response.get("type") == SERVER_SIDE_EMIT:
            self._requests.answer(rid, [response.get("data")])

    # -- cluster-wide operations ---------------------------------------------------------------
    async def fetch_sockets(self, opts: BroadcastOptions) -> list[SocketInfo]:
        local = await super().fetch_sockets(opts)
        if opts.local:
            return local
        others = await self.count_others("fetch_sockets", list(local))
        if others <= 0:
            return local
        rid = node_uid()
        self._requests.open(rid, others, local)
        request = {"uid": self.uid, "requestId": rid, "type": REMOTE_FETCH, "opts": _plain_opts(opts)}
        self.link.publish(self.request_channel, self._json(request))
        timeout = opts.timeout if opts.timeout is not None else self.options.requests_timeout
        return await self._requests.wait(rid, timeout, "fetch_sockets")

    async def add_sockets(self, opts: BroadcastOptions, rooms: Sequence[str]) -> None:
        await super().add_sockets(opts, rooms)
        if not opts.local:
            request = {"uid": self.uid, "type": REMOTE_JOIN, "opts": _plain_opts(opts), "rooms": list(rooms)}
            self.link.publish(self.request_channel, self._json(request))

    async def del_sockets(self, opts: BroadcastOptions, rooms: Sequence[str]) -> None:
        await super().del_sockets(opts, rooms)
        if not opts.local:
            request = {"uid": self.uid, "type": REMOTE_LEAVE, "opts": _plain_opts(opts), "rooms": list(rooms)}
            self.link.publish(self.request_channel, self._json(request))

    async def disconnect_sockets(self, opts: BroadcastOptions, close: bool) -> None:
        if not opts.local:
            request = {"uid": self.uid, "type": REMOTE_DISCONNECT, "opts": _plain_opts(opts), "close": close}
            self.link.publish(self.request_channel, self._json(request))
        await super().disconnect_sockets(opts, close)

    async def server_side_emit(self, packet: list[Any]) -> None:
        request = {"uid": self.uid, "type": SERVER_SIDE_EMIT, "data": packet}
        self.link.publish(self.request_channel, self._json(request))

    async def server_side_emit_with_ack(self, packet: list[Any], timeout: float) -> list[Any]:
        others = await self.count_others("server_side_emit_with_ack")
        if others <= 0:
            return []
        rid = node_uid()
        self._requests.open(rid, others)
        request = {"uid": self.uid, "requestId": rid, "type": SERVER_SIDE_EMIT, "data": packet}
        self.link.publish(self.request_channel, self._json(request))
        return await self._requests.wait(rid, timeout, "server_side_emit_with_ack")


def _plain_opts(opts: BroadcastOptions) -> dict[str, Any]:
    return {"rooms": sorted(opts.rooms), "except": sorted(opts.except_rooms)}
