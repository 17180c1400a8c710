"""The Redis pub/sub adapter, wire-compatible with Node's `@socket.io/redis-adapter` 8.x
(protocol.md §7), so Python and Node nodes can serve one cluster.

Broadcasts are msgpack `[uid, packet, opts]` on `<key>#<nsp>#` (or `<key>#<nsp>#<room>#` for
exactly one room); requests are JSON on `<key>-request#<nsp>#` (a broadcast with acks is
msgpack), answers go to `<key>-response#<nsp>#`. The node count is the number of subscribers
of the request channel.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .._logging import RateLimitedLog
from ..exceptions import AdapterUnavailableError
from ..socketio.packet import Packet, PacketType
from . import wire
from .base import NO_ANSWER, AckCallback, BroadcastOptions, NamespaceHooks, SocketInfo
from .memory import MemoryAdapter
from .pending import PendingRequests
from .redis_link import DEFAULT_MAX_OUTBOX, LinkOptions, RedisLink, RedisUnavailable, redis_asyncio

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
        timeout = self.requests_timeout
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ValueError("requests_timeout must be a positive number of seconds")
        if not isinstance(self.publish_on_specific_response_channel, bool):
            raise ValueError("publish_on_specific_response_channel must be a bool")


def _client_from_url(url: str, redis_options: dict[str, Any] | None) -> Callable[[], Any]:
    if not isinstance(url, str) or "://" not in url:
        raise ValueError(f"a Redis URL like redis://host:6379/0 is needed, got {url!r}")
    redis_asyncio()  # fail at construction, not at start-up, when redis-py is missing
    options = {"socket_connect_timeout": 2.0, "socket_timeout": 5.0, "health_check_interval": 10}
    options.update(redis_options or {})

    def connect() -> Any:
        return redis_asyncio().Redis.from_url(url, **options)

    return connect


class RedisAdapterFactory:
    """What `Realtime(adapter=...)` takes: makes one adapter per namespace over one shared link."""

    def __init__(self, link: RedisLink, options: RedisAdapterOptions) -> None:
        self.link = link
        self.options = options

    def __call__(self, nsp: NamespaceHooks) -> RedisAdapter:
        return RedisAdapter(nsp, self.link, self.options)


class RedisAdapter(MemoryAdapter):
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
        link = RedisLink(_client_from_url(url, redis_options), options=LinkOptions(max_outbox=max_outbox))
        return RedisAdapterFactory(link, options)

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
        return RedisAdapterFactory(link, options)

    def __init__(self, nsp: NamespaceHooks, link: RedisLink, options: RedisAdapterOptions) -> None:
        super().__init__(nsp)
        self.link = link
        self.options = options
        self.uid = node_uid()
        name = nsp.name
        self.channel = f"{options.key}#{name}#"
        self.request_channel = f"{options.key}-request#{name}#"
        self.response_channel = f"{options.key}-response#{name}#"
        self.specific_response_channel = f"{self.response_channel}{self.uid}#"
        self._requests = PendingRequests()
        self._acks: dict[str, tuple[Callable[[int], None], AckCallback]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = False
        self._warn = RateLimitedLog(logger, logging.WARNING, interval=10.0)

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
        for task in list(self._tasks):
            task.cancel()
        await self.link.release()

    async def server_count(self) -> int:
        try:
            return max(1, await self.link.numsub(self.request_channel))
        except RedisUnavailable as exc:
            raise AdapterUnavailableError(str(exc)) from exc

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _malformed(self, channel: str, exc: Exception) -> None:
        self.link.malformed += 1
        self._warn("dropped a malformed message on Redis channel %s: %s", channel, exc)

    def _json(self, obj: Any) -> bytes:
        return wire.to_json(obj, self.nsp.json_default)

    def _pack(self, obj: Any) -> bytes:
        return wire.pack(obj, self.nsp.json_default)

    # -- broadcasting ----------------------------------------------------------------------------
    async def broadcast(self, packet: Packet, opts: BroadcastOptions) -> None:
        if not opts.local:
            message = [self.uid, wire.event_packet_dict(self.nsp.name, packet.data), wire.encode_options(opts)]
            channel = self.channel
            if len(opts.rooms) == 1:
                (room,) = opts.rooms
                channel += room + "#"
            self.link.publish(channel, self._pack(message))
        await super().broadcast(packet, opts)

    async def _on_broadcast(self, channel: str, raw: bytes) -> None:
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
            self._malformed(channel, exc)
            return
        self.deliver_local(frames, opts)

    async def broadcast_with_ack(
        self, packet: Packet, opts: BroadcastOptions, on_count: Callable[[int], None], on_ack: AckCallback
    ) -> None:
        if not opts.local:
            rid = node_uid()
            self._acks[rid] = (on_count, on_ack)
            message = {
                "uid": self.uid,
                "requestId": rid,
                "type": BROADCAST,
                "packet": wire.event_packet_dict(self.nsp.name, packet.data),
                "opts": wire.encode_options(opts),
            }
            self.link.publish(self.request_channel, self._pack(message))
            # As in Node: nothing tells when every remote ack is in, so forget the request later.
            timeout = opts.timeout if opts.timeout is not None else self.options.requests_timeout
            asyncio.get_running_loop().call_later(timeout + 1.0, self._acks.pop, rid, None)
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
            self._malformed(channel, exc)

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
                sockets = [socket_payload(info) for info in await MemoryAdapter.fetch_sockets(self, opts)]
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
        if "opts" in request and request["opts"] is not None:
            opts = wire.decode_options(request["opts"])
            if kind == REMOTE_DISCONNECT:
                close = request.get("close", False)
                for sid in self.matching(opts):
                    self.nsp.disconnect_local(sid, bool(close))
                return
            rooms = wire.room_list(request.get("rooms"), "rooms")
            for sid in self.matching(opts):
                if kind == REMOTE_JOIN:
                    self.add_all(sid, rooms)
                else:
                    for room in rooms:
                        self.remove(sid, room)
            return
        # The older form: one socket by id, answered with the request id.
        sid = wire.expect_str(request.get("sid"), "sid")
        if sid not in self.sids:
            return
        if kind == REMOTE_DISCONNECT:
            self.nsp.disconnect_local(sid, bool(request.get("close", False)))
        else:
            rooms = wire.room_list([request.get("room")], "room")
            if kind == REMOTE_JOIN:
                self.add_all(sid, rooms)
            else:
                self.remove(sid, rooms[0])
        if isinstance(request.get("requestId"), str):
            self._respond(request, self._json({"requestId": request["requestId"]}))

    def _on_server_side(self, request: dict[str, Any]) -> None:
        data = request.get("data")
        if not isinstance(data, list) or not data or not isinstance(data[0], str):
            raise wire.MalformedMessage("server-side emit data is not [event, ...args]")
        rid = request.get("requestId")

        async def run() -> None:
            try:
                answer = await self.nsp.on_server_side(data)
            except Exception:
                logger.exception("server-side handler for %r failed on %s", data[0], self.nsp.name)
                return
            if rid is not None and answer is not NO_ANSWER:
                # Always to the common response channel, as Node does for this type.
                self.link.publish(
                    self.response_channel,
                    self._json({"type": SERVER_SIDE_EMIT, "requestId": rid, "data": answer}),
                )

        self._spawn(run())

    def _on_remote_broadcast_with_ack(self, request: dict[str, Any]) -> None:
        rid = wire.expect_str(request.get("requestId"), "requestId")
        data = wire.event_data(request.get("packet"), self.nsp.name)
        if data is None:
            return
        opts = wire.decode_options(request.get("opts"))

        def on_count(count: int) -> None:
            payload = {"type": BROADCAST_CLIENT_COUNT, "requestId": rid, "clientCount": count}
            self._respond(request, self._json(payload))

        def on_ack(args: list[Any] | None) -> None:
            if args is None:
                return  # the client left: nothing to send (Node's ack is never called)
            # Node passes on the first argument of each client's ack.
            payload = {"type": BROADCAST_ACK, "requestId": rid, "packet": args[0] if args else None}
            self._respond(request, self._pack(payload))

        self._spawn(MemoryAdapter.broadcast_with_ack(self, Packet(PacketType.EVENT, self.nsp.name, data), opts, on_count, on_ack))

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
    async def _count_others(self, what: str) -> int:
        try:
            return await self.server_count() - 1
        except AdapterUnavailableError as exc:
            raise AdapterUnavailableError(f"{what}: {exc}") from exc

    async def fetch_sockets(self, opts: BroadcastOptions) -> list[SocketInfo]:
        local = await super().fetch_sockets(opts)
        if opts.local:
            return local
        try:
            others = await self._count_others("fetch_sockets")
        except AdapterUnavailableError as exc:
            raise AdapterUnavailableError(str(exc), list(local)) from None
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
        others = await self._count_others("server_side_emit_with_ack")
        if others <= 0:
            return []
        rid = node_uid()
        self._requests.open(rid, others)
        request = {"uid": self.uid, "requestId": rid, "type": SERVER_SIDE_EMIT, "data": packet}
        self.link.publish(self.request_channel, self._json(request))
        return await self._requests.wait(rid, timeout, "server_side_emit_with_ack")


def _plain_opts(opts: BroadcastOptions) -> dict[str, Any]:
    return {"rooms": sorted(opts.rooms), "except": sorted(opts.except_rooms)}


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
