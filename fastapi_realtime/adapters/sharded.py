"""The sharded Redis adapter, wire-compatible with `createShardedAdapter` of Node's
`@socket.io/redis-adapter` 8.3 (protocol.md §6.1, §7 "Sharded variant"), so Python and Node
nodes can serve one cluster over Redis 7 sharded pub/sub (SSUBSCRIBE / SPUBLISH).

Channels, for namespace `nsp` and prefix `p` (default "socket.io"):

* `p#nsp#`: every §6.1 message, subscribed by every node (its subscriber count is the node count);
* `p#nsp#<uid>#`: the answers for node `uid`;
* `p#nsp#<room>#`: in the "dynamic" subscription modes, a broadcast to exactly one room without
  acks; a node subscribes while the room has a local member. "dynamic" does so for public rooms
  only (not a socket's own room), "dynamic-private" for every room, "static" never.

A message is JSON text, unless its type may carry binary and it does: then msgpack of the whole
message (as notepack.io writes it). Readers tell them apart by the first byte (`{`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from . import wire
from .base import NamespaceHooks
from .cluster import MAY_HOLD_BINARY, ClusterAdapter, MessageType
from .redis_link import (
    DEFAULT_MAX_OUTBOX,
    LinkedFactory,
    LinkOptions,
    RedisLink,
    check_url,
    client_options,
    positive_seconds,
    redis_asyncio,
    stop_tasks,
    url_connector,
)

logger = logging.getLogger("fastapi_realtime.redis")

SubscriptionMode = Literal["static", "dynamic", "dynamic-private"]
SUBSCRIPTION_MODES: tuple[str, ...] = get_args(SubscriptionMode)
DEFAULT_REQUESTS_TIMEOUT = 5.0
# The redis-py release whose asyncio client has SSUBSCRIBE (PubSub.ssubscribe) and, for a
# Redis Cluster, RedisCluster.pubsub() with per-node shard subscriptions.
REDIS_PY_NEEDED = "8.0"


def _require_sharded_pubsub(cluster: bool) -> None:
    """Fail at construction when the installed redis-py cannot do sharded pub/sub in asyncio."""
    aio = redis_asyncio()
    missing = not hasattr(aio.client.PubSub, "ssubscribe")
    if cluster:
        missing = missing or not hasattr(aio.cluster.RedisCluster, "pubsub")
    if missing:
        import redis

        version = getattr(redis, "__version__", "unknown")
        what = "SSUBSCRIBE on a Redis Cluster" if cluster else "SSUBSCRIBE"
        raise ImportError(
            f"the sharded Redis adapter needs redis-py >= {REDIS_PY_NEEDED} for asyncio {what};"
            f" redis-py {version} is installed: pip install 'redis>={REDIS_PY_NEEDED}'"
        )


def looks_like_socket_id(room: str) -> bool:
    """Node's test for a socket's own room when publishing: 20 characters, counted as JavaScript
    counts them (UTF-16 code units)."""
    return len(room) <= 20 and len(room.encode("utf-16-le")) == 40


@dataclass(frozen=True, slots=True, kw_only=True)
class ShardedRedisAdapterOptions:
    """Options of the sharded adapter (Node's names in comments). Durations are in seconds."""

    channel_prefix: str = "socket.io"  # channelPrefix
    subscription_mode: SubscriptionMode = "dynamic"  # subscriptionMode
    requests_timeout: float = DEFAULT_REQUESTS_TIMEOUT  # requestsTimeout of the ClusterAdapter

    def __post_init__(self) -> None:
        if not isinstance(self.channel_prefix, str) or not self.channel_prefix:
            raise ValueError("channel_prefix must be a non-empty string")
        if self.subscription_mode not in SUBSCRIPTION_MODES:
            raise ValueError(
                f"subscription_mode must be one of {', '.join(map(repr, SUBSCRIPTION_MODES))},"
                f" not {self.subscription_mode!r}"
            )
        positive_seconds("requests_timeout", self.requests_timeout)


ShardedRedisAdapterFactory = LinkedFactory["ShardedRedisAdapter", ShardedRedisAdapterOptions]


class ShardedRedisAdapter(ClusterAdapter):
    """Rooms and broadcasts across every node through Redis 7 sharded pub/sub (nothing is kept)."""

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        channel_prefix: str = "socket.io",
        subscription_mode: SubscriptionMode = "dynamic",
        requests_timeout: float = DEFAULT_REQUESTS_TIMEOUT,
        max_outbox: int = DEFAULT_MAX_OUTBOX,
        redis_options: dict[str, Any] | None = None,
    ) -> ShardedRedisAdapterFactory:
        """An adapter factory for `Realtime(adapter=...)` on the (standalone) Redis >= 7 at `url`.

        `redis_options` go to `redis.asyncio.Redis.from_url` (timeouts, TLS, credentials).
        """
        options = ShardedRedisAdapterOptions(
            channel_prefix=channel_prefix, subscription_mode=subscription_mode, requests_timeout=requests_timeout
        )
        _require_sharded_pubsub(cluster=False)
        connect = url_connector(url, redis_options)
        return LinkedFactory(ShardedRedisAdapter, RedisLink(connect, options=LinkOptions(max_outbox=max_outbox)), options)

    @classmethod
    def from_cluster(
        cls,
        urls: str | Sequence[str],
        *,
        channel_prefix: str = "socket.io",
        subscription_mode: SubscriptionMode = "dynamic",
        requests_timeout: float = DEFAULT_REQUESTS_TIMEOUT,
        max_outbox: int = DEFAULT_MAX_OUTBOX,
        redis_options: dict[str, Any] | None = None,
    ) -> ShardedRedisAdapterFactory:
        """An adapter factory on a Redis Cluster (Redis >= 7), through
        `redis.asyncio.cluster.RedisCluster`.

        `urls` name one or more of its nodes (`redis://host:port`; credentials and TLS are taken
        from the first): the client finds the others itself, further ones are fallbacks for the
        first connection. `redis_options` go to `RedisCluster` (timeouts, `read_from_replicas`...).
        """
        options = ShardedRedisAdapterOptions(
            channel_prefix=channel_prefix, subscription_mode=subscription_mode, requests_timeout=requests_timeout
        )
        seeds = [urls] if isinstance(urls, str) else list(urls) if isinstance(urls, Sequence) else []
        if not seeds:
            raise ValueError("from_cluster needs the URL of at least one node of the Redis Cluster")
        nodes: list[tuple[str, int]] = []
        for seed in seeds:
            parts = urlsplit(check_url(seed))
            if parts.hostname is None:
                raise ValueError(f"a Redis URL like redis://host:6379 is needed, got {seed!r}")
            try:
                port = parts.port or 6379
            except ValueError as exc:
                raise ValueError(f"{seed!r}: {exc}") from None
            nodes.append((parts.hostname, port))
        _require_sharded_pubsub(cluster=True)
        options_ = client_options(redis_options)
        first = seeds[0]

        def connect() -> Any:
            cluster = redis_asyncio().cluster
            others = [cluster.ClusterNode(host, port) for host, port in nodes[1:]]
            if others:
                return cluster.RedisCluster.from_url(first, startup_nodes=others, **options_)
            return cluster.RedisCluster.from_url(first, **options_)

        return LinkedFactory(ShardedRedisAdapter, RedisLink(connect, options=LinkOptions(max_outbox=max_outbox)), options)

    @classmethod
    def from_client(
        cls,
        client: Any,
        *,
        channel_prefix: str = "socket.io",
        subscription_mode: SubscriptionMode = "dynamic",
        requests_timeout: float = DEFAULT_REQUESTS_TIMEOUT,
        max_outbox: int = DEFAULT_MAX_OUTBOX,
    ) -> ShardedRedisAdapterFactory:
        """As `from_url` / `from_cluster`, over a `redis.asyncio.Redis` or
        `redis.asyncio.cluster.RedisCluster` client of yours (it is not closed)."""
        options = ShardedRedisAdapterOptions(
            channel_prefix=channel_prefix, subscription_mode=subscription_mode, requests_timeout=requests_timeout
        )
        _require_sharded_pubsub(cluster=type(client).__name__ == "RedisCluster")
        link = RedisLink(lambda: client, options=LinkOptions(max_outbox=max_outbox), owns_client=False)
        return LinkedFactory(ShardedRedisAdapter, link, options)

    def __init__(self, nsp: NamespaceHooks, link: RedisLink, options: ShardedRedisAdapterOptions) -> None:
        super().__init__(nsp, link)
        self.options = options
        self.requests_timeout = options.requests_timeout
        self.channel = f"{options.channel_prefix}#{nsp.name}#"
        self.response_channel = f"{self.channel}{self.uid}#"
        self._dynamic = options.subscription_mode != "static"
        self._private_rooms = options.subscription_mode == "dynamic-private"
        # Rooms whose channel this node should listen to, and those it asked the link for; one
        # task brings the second in line with the first, in order (a room made, left and made
        # again in a moment costs nothing).
        self._wanted: set[str] = set()
        self._subscribed: set[str] = set()
        self._rooms_changed = asyncio.Event()
        self._room_task: asyncio.Task[None] | None = None
        self._started = False

    # -- lifecycle -----------------------------------------------------------------------------
    async def init(self) -> None:
        if self._started:
            return
        self._started = True
        await self.link.acquire()
        for channel in (self.channel, self.response_channel):
            await self.link.subscribe(channel, self._on_raw, kind="shard")
        if self._dynamic:
            # A fresh event: an app served again runs in another event loop.
            self._rooms_changed = asyncio.Event()
            if self._wanted:
                self._rooms_changed.set()
            self._room_task = asyncio.get_running_loop().create_task(
                self._sync_rooms(), name=f"fastapi-realtime sharded rooms {self.nsp.name}"
            )

    async def close(self) -> None:
        if not self._started:
            return
        self._started = False
        if self._room_task is not None:
            await stop_tasks([self._room_task])
            self._room_task = None
        channels = [self.channel, self.response_channel]
        channels += [self.room_channel(room) for room in self._subscribed]
        self._subscribed.clear()
        for channel in channels:
            await self.link.unsubscribe(channel, kind="shard")
        self.cancel_tasks()
        await self.link.release()

    async def server_count(self) -> int:
        return await self.numsub(self.channel, sharded=True)

    # -- per-room channels ---------------------------------------------------------------------
    def room_channel(self, room: str) -> str:
        return f"{self.channel}{room}#"

    def room_created(self, room: str) -> None:
        # As Node decides on "create-room": a room that is not a local socket's own id is public.
        # (A room named like this node's id would share its answer channel: it gets none.)
        if self._dynamic and (self._private_rooms or room not in self.sids) and room != self.uid:
            self._wanted.add(room)
            self._rooms_changed.set()

    def room_deleted(self, room: str) -> None:
        if room in self._wanted:
            self._wanted.discard(room)
            self._rooms_changed.set()

    async def _sync_rooms(self) -> None:
        current = asyncio.current_task()
        while current is None or not current.cancelling():
            await self._rooms_changed.wait()
            self._rooms_changed.clear()
            try:
                for room in [room for room in self._wanted if room not in self._subscribed]:
                    self._subscribed.add(room)
                    await self.link.subscribe(self.room_channel(room), self._on_raw, kind="shard", wait=False)
                for room in [room for room in self._subscribed if room not in self._wanted]:
                    self._subscribed.discard(room)
                    await self.link.unsubscribe(self.room_channel(room), kind="shard")
            except asyncio.CancelledError:
                raise
            except Exception:  # the link retries subscriptions itself; keep this task alive
                logger.exception("cannot update the room subscriptions of %s", self.nsp.name)

    # -- the wire ------------------------------------------------------------------------------
    def _target_channel(self, message: dict[str, Any]) -> str:
        """Node's computeChannel: a broadcast without acks to exactly one room goes to that
        room's channel in the dynamic modes (in "dynamic", unless the room looks like a socket
        id); everything else to the common channel."""
        if self._dynamic and message["type"] == MessageType.BROADCAST:
            data = message["data"]
            rooms = data["opts"]["rooms"]
            if "requestId" not in data and len(rooms) == 1:
                room = rooms[0]
                if self._private_rooms or not looks_like_socket_id(room):
                    return self.room_channel(room)
        return self.channel

    def _encode(self, message: dict[str, Any]) -> bytes:
        if message["type"] in MAY_HOLD_BINARY and wire.has_binary(message.get("data")):
            return wire.pack(message, self.nsp.json_default)
        return wire.to_json(message, self.nsp.json_default)

    async def do_publish(self, message: dict[str, Any]) -> str | None:
        self.link.publish(self._target_channel(message), self._encode(message), sharded=True)
        return None  # pub/sub keeps nothing: no offset

    def do_publish_response(self, requester: str, response: dict[str, Any]) -> None:
        self.link.publish(f"{self.channel}{requester}#", self._encode(response), sharded=True)

    async def _on_raw(self, channel: str, raw: bytes) -> None:
        try:
            await self.on_message(wire.decode_any(raw))
        except (wire.MalformedMessage, TypeError, ValueError, KeyError, RecursionError) as exc:
            self.malformed(channel, exc)
