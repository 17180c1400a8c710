"""One node's link to Redis, shared by the adapters of all its namespaces.

It owns the I/O the adapters need and nothing of Socket.IO: an ordered outbox drained by one
writer task (each batch pipelined; a broadcast never waits for Redis), one subscriber task that
reads pub/sub messages and hands them to the adapter that subscribed, and the reconnection
policy: with Redis gone, local delivery goes on, publishes are dropped with a rate-limited
warning, and the subscriber comes back with backoff and subscribes to every channel again.
redis-py is imported lazily (the `redis` extra).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .._logging import RateLimitedLog
from ..observe import Observation

logger = logging.getLogger("fastapi_realtime.redis")

Handler = Callable[[str, bytes], Awaitable[None] | None]
AdapterT = TypeVar("AdapterT")
OptionsT = TypeVar("OptionsT")

# How long init() waits for Redis to confirm a subscription before serving anyway (the
# subscriber keeps trying in the background).
SUBSCRIBE_WAIT = 5.0
DEFAULT_MAX_OUTBOX = 100_000
# How long one read of a Redis Cluster's shard channels may wait. redis-py's ClusterPubSub holds
# a node's connection while it reads it, and an SSUBSCRIBE to that node waits until the read
# ends, so a short slice keeps subscribing to a room's channel quick.
CLUSTER_SHARD_POLL = 0.1


def redis_asyncio() -> Any:
    try:
        import redis.asyncio
    except ImportError as exc:
        raise ImportError("the Redis adapters need redis-py: pip install 'fastapi-realtime[redis]'") from exc
    return redis.asyncio


def positive_seconds(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"{name} must be a positive number of seconds")


class LinkedFactory(Generic[AdapterT, OptionsT]):
    """What `Realtime(adapter=...)` takes: makes one adapter per namespace, all over one link."""

    def __init__(self, adapter: Callable[[Any, RedisLink, OptionsT], AdapterT], link: RedisLink, options: OptionsT) -> None:
        self.adapter = adapter
        self.link = link
        self.options = options

    def __call__(self, nsp: Any) -> AdapterT:
        return self.adapter(nsp, self.link, self.options)


def check_url(url: Any) -> str:
    if not isinstance(url, str) or "://" not in url:
        raise ValueError(f"a Redis URL like redis://host:6379/0 is needed, got {url!r}")
    return url


def client_options(redis_options: Mapping[str, Any] | None, socket_timeout: float = 5.0) -> dict[str, Any]:
    """Bounded waits by default (an error, not a hang, when Redis is away), then the user's."""
    if redis_options is not None and not isinstance(redis_options, Mapping):
        raise TypeError("redis_options must be a mapping of redis-py client options")
    options: dict[str, Any] = {
        "socket_connect_timeout": 2.0, "socket_timeout": socket_timeout, "health_check_interval": 10
    }
    options.update(redis_options or {})
    return options


def check_client_options(client: Any) -> Any:
    """redis-py keeps unknown options until it first connects; one connection object (no I/O)
    makes a misspelt option fail at construction instead of in the serving loop."""
    pool = getattr(client, "connection_pool", None)
    if pool is not None:
        try:
            pool.connection_class(**pool.connection_kwargs)
        except TypeError as exc:
            raise TypeError(f"a redis_options entry is not a redis-py connection option: {exc}") from None
    return client


def url_connector(
    url: str, redis_options: Mapping[str, Any] | None, socket_timeout: float = 5.0
) -> Callable[[], Any]:
    """Checks the URL and options now; makes a `redis.asyncio.Redis` each time it is called."""
    url = check_url(url)
    options = client_options(redis_options, socket_timeout)
    check_client_options(redis_asyncio().Redis.from_url(url, **options))

    def connect() -> Any:
        return redis_asyncio().Redis.from_url(url, **options)

    return connect


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkOptions:
    """Connection behaviour shared by the Redis adapters. Durations are in seconds."""

    # Messages waiting to be published while Redis is slow or away; past this the oldest go.
    max_outbox: int = DEFAULT_MAX_OUTBOX
    reconnect_min: float = 0.1
    reconnect_max: float = 5.0

    def __post_init__(self) -> None:
        if isinstance(self.max_outbox, bool) or not isinstance(self.max_outbox, int) or self.max_outbox <= 0:
            raise ValueError("max_outbox must be a positive integer")
        for name in ("reconnect_min", "reconnect_max"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"{name} must be a positive number of seconds")
        if self.reconnect_min > self.reconnect_max:
            raise ValueError("reconnect_min must not exceed reconnect_max")


@dataclass(slots=True)
class _Subscription:
    handler: Handler
    kind: str  # "channel", "pattern" or "shard"
    confirmed: asyncio.Event = field(default_factory=asyncio.Event)


class RedisUnavailable(ConnectionError):
    """Redis could not be reached for a command whose answer the caller needs."""


class RedisLink:
    """Publisher and subscriber over one redis-py client (standalone or cluster)."""

    def __init__(
        self, connect: Callable[[], Any], *, options: LinkOptions | None = None, owns_client: bool = True
    ) -> None:
        # The client is made when the first adapter starts, inside the serving event loop, and
        # closed (when it is ours) when the last one stops, so a restarted app gets a fresh one.
        self._connect = connect
        self.client: Any = None
        self.options = options or LinkOptions()
        # Set by the adapters on this link: the server's observers (told of lost publishes).
        self.observation: Observation | None = None
        self._owns_client = owns_client
        self._users = 0
        self._subs: dict[tuple[str, str], _Subscription] = {}
        self._outbox: list[tuple[str, str, bytes]] = []
        self._outbox_ready = asyncio.Event()
        self._changed = asyncio.Event()  # the set of subscriptions changed
        self._down = asyncio.Event()  # the last attempt to reach Redis failed
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._connected = False
        self._warn = RateLimitedLog(logger, logging.WARNING, interval=10.0)
        self._dropped = 0
        # Counters an operator (or a metrics exporter) can read.
        self.publish_errors = 0
        self.malformed = 0

    @property
    def is_cluster(self) -> bool:
        return type(self.client).__name__ == "RedisCluster"

    # -- lifecycle -----------------------------------------------------------------------------
    async def acquire(self) -> None:
        """One more adapter uses the link; the first one starts its tasks."""
        self._users += 1
        if self.client is None:
            self.client = self._connect()
        if self._reader is None:
            loop = asyncio.get_running_loop()
            self._outbox_ready = asyncio.Event()
            self._changed = asyncio.Event()
            self._down = asyncio.Event()
            for sub in self._subs.values():
                sub.confirmed = asyncio.Event()
            self._reader = loop.create_task(self._read_loop(), name="fastapi-realtime redis subscriber")
            self._writer = loop.create_task(self._write_loop(), name="fastapi-realtime redis publisher")

    async def release(self) -> None:
        """The last adapter to let go flushes what it can and closes the connections."""
        self._users -= 1
        if self._users > 0:
            return
        self._users = 0
        if self._outbox and self._writer is not None:
            # A short grace: events emitted just before shutdown still reach the other nodes.
            for _ in range(20):
                if not self._outbox:
                    break
                await asyncio.sleep(0.01)
        await stop_tasks([t for t in (self._reader, self._writer) if t is not None])
        self._reader = self._writer = None
        await self._close_pubsub()
        client, self.client = self.client, None
        if self._owns_client and client is not None:
            try:
                await client.aclose()
            except Exception:  # already gone
                pass

    # -- subscriptions -------------------------------------------------------------------------
    async def subscribe(self, name: str, handler: Handler, *, kind: str = "channel", wait: bool = True) -> None:
        """Deliver messages of channel (or pattern, or shard channel) `name` to `handler`;
        with `wait`, return once Redis confirmed it (or after SUBSCRIBE_WAIT seconds)."""
        key = (kind, name)
        sub = self._subs.get(key)
        if sub is None:
            sub = self._subs[key] = _Subscription(handler, kind)
            pubsub = self._pubsub
            if pubsub is not None:
                try:
                    await self._send_subscribe(pubsub, [sub], [name])
                except Exception:
                    pass  # the reader resubscribes everything when it reconnects
            self._changed.set()
        if wait and self._reader is not None and not self._down.is_set():
            # Until Redis confirms, or says it is down (then serve locally; the reader retries).
            confirmed = asyncio.ensure_future(sub.confirmed.wait())
            down = asyncio.ensure_future(self._down.wait())
            try:
                await asyncio.wait((confirmed, down), timeout=SUBSCRIBE_WAIT, return_when=asyncio.FIRST_COMPLETED)
            finally:
                confirmed.cancel()
                down.cancel()
            if not sub.confirmed.is_set():
                self._warn("Redis has not confirmed the subscription to %s yet; retrying in the background", name)

    async def unsubscribe(self, name: str, *, kind: str = "channel") -> None:
        if self._subs.pop((kind, name), None) is None:
            return
        pubsub = self._pubsub
        if pubsub is None:
            return
        try:
            if kind == "pattern":
                await pubsub.punsubscribe(name)
            elif kind == "shard":
                await pubsub.sunsubscribe(name)
            else:
                await pubsub.unsubscribe(name)
        except Exception:
            pass  # a reconnection subscribes to what is left only

    async def _send_subscribe(self, pubsub: Any, subs: list[_Subscription], names: list[str]) -> None:
        by_kind: dict[str, list[str]] = {}
        for sub, name in zip(subs, names):
            by_kind.setdefault(sub.kind, []).append(name)
        for kind, group in by_kind.items():
            if kind == "pattern":
                await pubsub.psubscribe(*group)
            elif kind == "shard":
                await pubsub.ssubscribe(*group)
            else:
                await pubsub.subscribe(*group)

    async def _close_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            try:
                await pubsub.aclose()
            except Exception:
                pass

    async def _read_loop(self) -> None:
        delay = self.options.reconnect_min
        current = asyncio.current_task()
        while current is None or not current.cancelling():
            if not self._subs:
                self._changed.clear()
                await self._changed.wait()
                continue
            try:
                pubsub = self.client.pubsub()
                items = list(self._subs.items())
                self._pubsub = pubsub
                await self._send_subscribe(pubsub, [sub for _, sub in items], [name for (_, name), _ in items])
                sharded = any(sub.kind == "shard" for _, sub in items)
                while current is None or not current.cancelling():
                    if sharded and self.is_cluster:
                        message = await pubsub.get_sharded_message(timeout=CLUSTER_SHARD_POLL)
                    else:
                        message = await pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    if not self._connected:
                        self._connected = True
                        self._down.clear()
                        delay = self.options.reconnect_min
                        logger.info("connected to Redis")
                    await self._dispatch(message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await self._close_pubsub()
                self._down.set()
                for sub in self._subs.values():
                    sub.confirmed.clear()
                if self._connected:
                    self._connected = False
                    logger.warning("lost the Redis subscription (%s); local delivery goes on, reconnecting", exc)
                else:
                    self._warn("cannot subscribe to Redis (%s); retrying", exc)
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, self.options.reconnect_max)

    async def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        channel = _text(message.get("channel"))
        if kind in ("subscribe", "psubscribe", "ssubscribe"):
            sub_kind = {"subscribe": "channel", "psubscribe": "pattern", "ssubscribe": "shard"}[kind]
            sub = self._subs.get((sub_kind, channel))
            if sub is not None:
                sub.confirmed.set()
            return
        if kind == "message":
            sub = self._subs.get(("channel", channel))
        elif kind == "pmessage":
            sub = self._subs.get(("pattern", _text(message.get("pattern"))))
        elif kind == "smessage":
            sub = self._subs.get(("shard", channel))
        else:
            return
        data = message.get("data")
        if sub is None or not isinstance(data, bytes):
            return
        try:
            result = sub.handler(channel, data)
            if result is not None:
                await result
        except Exception:
            logger.exception("error while handling a Redis message on %s", channel)

    # -- publishing ----------------------------------------------------------------------------
    def publish(self, channel: str, payload: bytes, *, sharded: bool = False) -> None:
        """Queue a message; the writer sends queued messages in order, pipelined."""
        outbox = self._outbox
        if len(outbox) >= self.options.max_outbox:
            del outbox[0]
            self._dropped += 1
            self._warn("Redis is not keeping up: %d messages to other nodes dropped so far", self._dropped)
        outbox.append(("SPUBLISH" if sharded else "PUBLISH", channel, payload))
        self._outbox_ready.set()

    async def _write_loop(self) -> None:
        delay = self.options.reconnect_min
        current = asyncio.current_task()
        while current is None or not current.cancelling():
            await self._outbox_ready.wait()
            self._outbox_ready.clear()
            batch, self._outbox = self._outbox, []
            if not batch:
                continue
            try:
                await self._send(batch)
                delay = self.options.reconnect_min
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.publish_errors += len(batch)
                observer = None if self.observation is None else self.observation.observer
                if observer is not None:
                    observer.adapter_error("publish")
                self._warn("cannot publish to Redis (%s): %d messages to other nodes lost", exc, len(batch))
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.options.reconnect_max)

    async def _send(self, batch: list[tuple[str, str, bytes]]) -> None:
        if len(batch) == 1 or (self.is_cluster and any(command != "SPUBLISH" for command, _, _ in batch)):
            for command, channel, payload in batch:
                await self.client.execute_command(command, channel, payload)
            return
        # On a cluster, redis-py's pipeline sends each SPUBLISH to the node owning its channel's
        # slot, in order per node.
        pipe = self.client.pipeline(transaction=False)
        for command, channel, payload in batch:
            pipe.execute_command(command, channel, payload)
        await pipe.execute()

    # -- commands whose answer matters -----------------------------------------------------------
    async def numsub(self, channel: str, *, sharded: bool = False) -> int:
        """Subscribers of `channel` across the deployment (summed over every node of a cluster)."""
        command = "SHARDNUMSUB" if sharded else "NUMSUB"
        try:
            if self.is_cluster:
                return await self._cluster_numsub(command, channel)
            reply = await self.client.execute_command("PUBSUB", command, channel)
        except RedisUnavailable:
            raise
        except Exception as exc:
            raise RedisUnavailable(f"cannot count the nodes on Redis: {exc}") from exc
        return _count(reply)

    async def _cluster_numsub(self, command: str, channel: str) -> int:
        # PUBSUB answers for the node asked only. A channel's subscribers sit on the nodes they
        # subscribed through (for a shard channel: the primary owning its slot, or one of its
        # replicas), so every node is asked, one by one: redis-py's own fan-out of
        # PUBSUB NUMSUB / SHARDNUMSUB fails to merge the replies (redis-py 8.2). A node that does
        # not answer has no live subscriber to count.
        client = self.client
        await client.initialize()
        nodes = list(client.get_nodes())
        replies = await asyncio.gather(
            *(node.execute_command("PUBSUB", command, channel) for node in nodes), return_exceptions=True
        )
        counts = [_count(reply) for reply in replies if not isinstance(reply, BaseException)]
        if not counts:
            failed = next((reply for reply in replies if isinstance(reply, BaseException)), None)
            raise RedisUnavailable(f"cannot count the nodes on Redis: no cluster node answered ({failed})")
        return sum(counts)

    async def command(self, *args: Any) -> Any:
        try:
            return await self.client.execute_command(*args)
        except Exception as exc:
            raise RedisUnavailable(f"Redis command {args[0]} failed: {exc}") from exc


async def stop_tasks(tasks: list[asyncio.Task[Any]], timeout: float = 2.0) -> None:
    """Cancel and wait, a bounded time: some redis-py versions swallow a cancellation that lands
    inside a command, so a task may need its loop's own check (the task's `cancelling()`)."""
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=timeout)
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: nothing to report at shutdown


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


def _count(reply: Any) -> int:
    # NUMSUB replies [channel, count] (redis-py may already have paired it up).
    if isinstance(reply, dict):
        return sum(int(v) for v in reply.values())
    if isinstance(reply, (list, tuple)):
        if len(reply) >= 2 and not isinstance(reply[0], (list, tuple)):
            return int(reply[1])
        return sum(int(item[1]) for item in reply if isinstance(item, (list, tuple)) and len(item) >= 2)
    return int(reply)
