"""The Redis Streams adapter, wire-compatible with Node's `@socket.io/redis-streams-adapter` 0.3.x
(protocol.md §8), with connection state recovery across nodes.

Durable messages (broadcasts, joins, leaves, disconnects) are XADDed to a stream; each node reads
the stream with one blocking XREAD loop and the entry id is the recovery offset, the same on
every node. Requests that wait for answers and all answers use pub/sub (msgpack).

Two rules close the windows in which Node's adapter loses or repeats events:
- every node delivers stream entries to its sockets in stream order, its own broadcasts
  included: they reach local sockets through the same read loop (the emit waits for that);
- a restore reads the missed entries up to exactly the entry the read loop has delivered, and
  the socket joins its rooms in the same step, so replay and live delivery meet at one id.
  Entries the client already had (it may have seen them from another node first) are skipped.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Callable
from typing import Any

from .._logging import RateLimitedLog
from ..recovery import Encode, RecoveryOptions, RecoveryStore, Restored, SessionSnapshot
from ..socketio.packet import Packet, PacketType
from . import wire
from .base import BroadcastOptions, NamespaceHooks
from .cluster import MAY_HOLD_BINARY, ClusterAdapter, MessageType
from .redis_link import (
    DEFAULT_MAX_OUTBOX,
    LinkOptions,
    RedisLink,
    RedisUnavailable,
    stop_tasks,
    url_connector,
)
from .streams_wire import (
    OFFSET,
    EntryId,
    RedisStreamsOptions,
    decode_entry,
    ephemeral,
    format_id,
    pairs,
    parse_id,
    reaches,
    snapshot_of,
    stream_for,
    text,
)

logger = logging.getLogger("fastapi_realtime.redis")

# Entries read per XRANGE while computing what a recovering client missed, and how many reads
# at most (a replay longer than that fails the recovery: the client starts afresh).
REPLAY_CHUNK = 1000
MAX_REPLAY_READS = 100

# A session not found for a client whose offset is this recent (ms behind the newest entry
# read) is looked for again after each of these pauses (1.5 s in all: a busy old node may take
# that long to notice the drop and store the session).
RECENT_OFFSET_MS = 2000
SESSION_WAITS = (0.025, 0.05, 0.1, 0.2, 0.25, 0.25, 0.3, 0.3)


class StreamReader:
    """One XREAD loop over one stream, dispatching entries in order to the namespaces' adapters."""

    def __init__(self, hub: StreamsHub, stream: str) -> None:
        self.hub = hub
        self.stream = stream
        self.delivered: EntryId = (0, 0)  # the last entry handed to the adapters
        self._waiters: list[tuple[EntryId, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    def start(self) -> None:
        self._ready = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"fastapi-realtime XREAD {self.stream}")

    async def stop(self) -> None:
        if self._task is not None:
            await stop_tasks([self._task])
            self._task = None
        for _, future in self._waiters:
            if not future.done():
                future.set_result(None)
        self._waiters.clear()

    async def ready(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except asyncio.TimeoutError:
            pass

    async def wait_delivered(self, entry: EntryId, timeout: float) -> None:
        """Until the loop has handed `entry` to the adapters (or `timeout` passed)."""
        if entry <= self.delivered:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((entry, future))
        try:
            await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            pass

    def _release(self) -> None:
        delivered = self.delivered
        keep = []
        for entry, future in self._waiters:
            if entry <= delivered:
                if not future.done():
                    future.set_result(None)
            else:
                keep.append((entry, future))
        self._waiters = keep

    async def _run(self) -> None:
        hub = self.hub
        options = hub.options
        link = hub.link
        delay = link.options.reconnect_min
        position: str | None = None
        current = asyncio.current_task()
        while current is None or not current.cancelling():
            try:
                client = link.client
                if position is None:
                    # Start after the last entry: its id is where replays and live delivery meet.
                    last = await client.execute_command("XREVRANGE", self.stream, "+", "-", "COUNT", 1)
                    position = text(last[0][0]) if last else "0-0"
                    self.delivered = parse_id(position)
                    self._ready.set()
                reply = await client.xread(
                    {self.stream: position}, count=options.read_count, block=int(options.block_time * 1000)
                )
                delay = link.options.reconnect_min
                for _, entries in reply or ():
                    for raw_id, fields in entries:
                        entry_id = text(raw_id)
                        position = entry_id
                        await hub.dispatch(entry_id, fields)
                        self.delivered = parse_id(entry_id)
                        if self._waiters:
                            self._release()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                hub.warn("cannot read the Redis stream %s (%s); retrying", self.stream, exc)
                self._ready.set()  # serve anyway: local delivery goes on
                await asyncio.sleep(delay)
                delay = min(delay * 2, link.options.reconnect_max)


class StreamsHub:
    """What the adapters of one node share: the Redis link and one reader per stream."""

    def __init__(self, link: RedisLink, options: RedisStreamsOptions) -> None:
        self.link = link
        self.options = options
        self.adapters: dict[str, RedisStreamsAdapter] = {}
        self.readers: dict[str, StreamReader] = {}
        self.warn = RateLimitedLog(logger, logging.WARNING, interval=10.0)

    def __call__(self, nsp: NamespaceHooks) -> RedisStreamsAdapter:
        return RedisStreamsAdapter(nsp, self)

    def reader(self, stream: str) -> StreamReader:
        reader = self.readers.get(stream)
        if reader is None:
            reader = self.readers[stream] = StreamReader(self, stream)
        return reader

    async def attach(self, adapter: RedisStreamsAdapter) -> None:
        await self.link.acquire()
        self.adapters[adapter.nsp.name] = adapter
        reader = self.reader(adapter.stream)
        if reader._task is None:
            reader.start()
        await reader.ready(self.options.block_time)

    async def detach(self, adapter: RedisStreamsAdapter) -> None:
        if self.adapters.get(adapter.nsp.name) is adapter:
            del self.adapters[adapter.nsp.name]
        stream = adapter.stream
        if not any(a.stream == stream for a in self.adapters.values()):
            reader = self.readers.pop(stream, None)
            if reader is not None:
                await reader.stop()
        await self.link.release()

    async def dispatch(self, entry_id: str, fields: Any) -> None:
        if not isinstance(fields, dict):
            return
        nsp = fields.get(b"nsp")
        adapter = self.adapters.get(text(nsp)) if nsp is not None else None
        if adapter is not None:
            await adapter.on_entry(entry_id, fields)


class RedisStreamsAdapter(ClusterAdapter):
    """Rooms, broadcasts and recovery across nodes through a Redis stream."""

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        stream_name: str = "socket.io",
        stream_count: int = 1,
        channel_prefix: str = "socket.io",
        use_sharded_pubsub: bool = False,
        max_len: int = 10_000,
        read_count: int = 100,
        block_time: float = 5.0,
        session_key_prefix: str = "sio:session:",
        only_plaintext: bool = False,
        requests_timeout: float = 5.0,
        max_outbox: int = DEFAULT_MAX_OUTBOX,
        redis_options: dict[str, Any] | None = None,
    ) -> StreamsHub:
        """An adapter factory for `Realtime(adapter=...)` on the Redis at `url`; with
        `recovery=True` on the server, sessions and missed events live in Redis."""
        options = RedisStreamsOptions(
            stream_name=stream_name, stream_count=stream_count, channel_prefix=channel_prefix,
            use_sharded_pubsub=use_sharded_pubsub, max_len=max_len, read_count=read_count,
            block_time=block_time, session_key_prefix=session_key_prefix, only_plaintext=only_plaintext,
            requests_timeout=requests_timeout,
        )
        # The blocking XREAD holds a connection for block_time: reads may take that long.
        connect = url_connector(url, redis_options, socket_timeout=block_time + 5.0)
        return StreamsHub(RedisLink(connect, options=LinkOptions(max_outbox=max_outbox)), options)

    @classmethod
    def from_client(cls, client: Any, **options: Any) -> StreamsHub:
        """As `from_url`, over a `redis.asyncio.Redis` client of yours (its socket_timeout must
        exceed `block_time`; it is not closed)."""
        max_outbox = options.pop("max_outbox", DEFAULT_MAX_OUTBOX)
        return StreamsHub(
            RedisLink(lambda: client, options=LinkOptions(max_outbox=max_outbox), owns_client=False),
            RedisStreamsOptions(**options),
        )

    def __init__(self, nsp: NamespaceHooks, hub: StreamsHub) -> None:
        super().__init__(nsp, hub.link)
        self.hub = hub
        options = hub.options
        self.options = options
        self.requests_timeout = options.requests_timeout
        self.stream = stream_for(nsp.name, options.stream_name, options.stream_count)
        self.public_channel = f"{options.channel_prefix}#{nsp.name}#"
        self.private_channel = f"{options.channel_prefix}#{nsp.name}#{self.uid}#"
        self._kind = "shard" if options.use_sharded_pubsub else "channel"
        # Recovering sockets: entries up to this id were already seen by the client.
        self._skip: dict[str, EntryId] = {}
        self._started = False

    # -- lifecycle -----------------------------------------------------------------------------
    async def init(self) -> None:
        if self._started:
            return
        self._started = True
        await self.hub.attach(self)
        for channel in (self.public_channel, self.private_channel):
            await self.link.subscribe(channel, self._on_pubsub, kind=self._kind)

    async def close(self) -> None:
        if not self._started:
            return
        self._started = False
        for channel in (self.public_channel, self.private_channel):
            await self.link.unsubscribe(channel, kind=self._kind)
        self.cancel_tasks()
        await self.hub.detach(self)

    async def server_count(self) -> int:
        return await self.numsub(self.public_channel, sharded=self.options.use_sharded_pubsub)

    def recovery_store(self, options: RecoveryOptions) -> RecoveryStore:
        return StreamsRecoveryStore(self, options)

    # -- the wire ------------------------------------------------------------------------------
    async def do_publish(self, message: dict[str, Any]) -> str | None:
        if ephemeral(message):
            self.link.publish(self.public_channel, self._pack(message), sharded=self.options.use_sharded_pubsub)
            return None
        fields: dict[str, Any] = {"uid": message["uid"], "nsp": message["nsp"], "type": str(message["type"])}
        data = message.get("data")
        if data is not None:
            binary = (
                not self.options.only_plaintext and message["type"] in MAY_HOLD_BINARY and wire.has_binary(data)
            )
            fields["data"] = base64.b64encode(self._pack(data)).decode() if binary else self._json(data).decode()
        args: list[Any] = ["XADD", self.stream, "MAXLEN", "~", self.options.max_len, "*"]
        for key, value in fields.items():
            args += [key, value]
        entry = await self.link.command(*args)
        return text(entry)

    def do_publish_response(self, requester: str, response: dict[str, Any]) -> None:
        channel = f"{self.options.channel_prefix}#{self.nsp.name}#{requester}#"
        self.link.publish(channel, self._pack(response), sharded=self.options.use_sharded_pubsub)

    def _pack(self, obj: Any) -> bytes:
        return wire.pack(obj, self.nsp.json_default)

    def _json(self, obj: Any) -> bytes:
        return wire.to_json(obj, self.nsp.json_default)

    async def _on_pubsub(self, channel: str, raw: bytes) -> None:
        try:
            await self.on_message(wire.unpack(raw))
        except (wire.MalformedMessage, TypeError, ValueError, KeyError, RecursionError) as exc:
            self.malformed(channel, exc)

    async def on_entry(self, entry_id: str, fields: dict[bytes, bytes]) -> None:
        """One stream entry, in stream order (this node's own broadcasts come this way too)."""
        try:
            message = decode_entry(fields)
            if message["uid"] == self.uid:
                if message["type"] != MessageType.BROADCAST:
                    return  # joins, leaves and disconnects were applied when they were sent
                data = wire.expect_dict(message.get("data"), "data")
                event = wire.event_data(data.get("packet"), self.nsp.name)
                if event is not None:
                    opts = wire.decode_options(data.get("opts"))
                    await self.deliver_broadcast(Packet(PacketType.EVENT, self.nsp.name, event), opts, entry_id)
                return
            await self.on_message(message, entry_id)
        except (wire.MalformedMessage, TypeError, ValueError, KeyError, RecursionError) as exc:
            self.malformed(f"stream {self.stream} entry {entry_id}", exc)

    def deliver_frames(self, frames: list[Any], opts: BroadcastOptions, entry: str | None, data: Any = None) -> int:
        skip = self._skip
        if not skip or entry is None:
            return self.deliver_local(frames, opts, data)
        current = parse_id(entry)
        deliver = self.nsp.deliver
        sids: list[str] = []
        for sid in self.matching(opts):
            seen = skip.get(sid)
            if seen is not None:
                if current <= seen:
                    continue  # the client had it already
                del skip[sid]
            if deliver(sid, frames, opts.volatile):
                sids.append(sid)
        if data is not None:
            self.sent(data, sids)
        return len(sids)

    def remove_all(self, sid: str) -> None:
        self._skip.pop(sid, None)
        super().remove_all(sid)

    # -- broadcasting through the stream ---------------------------------------------------------
    async def broadcast(self, packet: Packet, opts: BroadcastOptions) -> None:
        if opts.local:
            await self.deliver_broadcast(packet, opts, None)
            return
        message = self.message(
            MessageType.BROADCAST,
            {"packet": wire.event_packet_dict(self.nsp.name, packet.data), "opts": wire.encode_options(opts)},
        )
        try:
            entry = await self.do_publish(message)
        except RedisUnavailable as exc:
            # Redis is away: this node's sockets still get it (without an offset: not replayable).
            self._warn("cannot add to the Redis stream (%s); only this node's sockets are reached", exc)
            await self.deliver_broadcast(packet, opts, None)
            return
        assert entry is not None
        # Local sockets get it from the read loop, in stream order; wait for that, so the
        # caller's next step comes after it.
        await self.hub.reader(self.stream).wait_delivered(parse_id(entry), self.options.block_time + 1.0)


class StreamsRecoveryStore(RecoveryStore):
    """Recovery through the stream: the entry id is the offset, sessions live in Redis with expiry."""

    def __init__(self, adapter: RedisStreamsAdapter, options: RecoveryOptions, clock: Callable[[], float] = time.monotonic) -> None:
        self.adapter = adapter
        self.options = options
        self.clock = clock

    def _key(self, pid: str) -> str:
        return self.adapter.options.session_key_prefix + pid

    async def store(
        self, packet: Packet, opts: BroadcastOptions, encode: Encode, offset: str | None = None
    ) -> list[Any]:
        if offset is None:
            return encode(packet)  # not in the stream (local, or Redis away): nothing to replay
        return encode(Packet(packet.type, packet.namespace, [*packet.data, offset], packet.id))

    async def persist(self, snapshot: SessionSnapshot) -> None:
        await self._set(snapshot, int(self.options.max_disconnection_duration * 1000))

    async def _set(self, snapshot: SessionSnapshot, millis: int) -> None:
        session = {"sid": snapshot.sid, "pid": snapshot.pid, "rooms": list(snapshot.rooms), "data": snapshot.data}
        value = base64.b64encode(self.adapter._pack(session)).decode()
        try:
            await self.adapter.link.command("SET", self._key(snapshot.pid), value, "PX", max(1, millis))
        except RedisUnavailable as exc:
            self.adapter._warn("cannot keep a session for recovery in Redis: %s", exc)

    async def put_back(self, restored: Restored) -> None:
        now = self.clock()
        expires = restored.expires if restored.expires is not None else now + self.options.max_disconnection_duration
        if expires > now:
            await self._set(restored.snapshot, int((expires - now) * 1000))

    async def restore(self, pid: str, offset: str) -> Restored | None:
        adapter = self.adapter
        if not OFFSET.match(offset):
            return None
        link = adapter.link
        stream = adapter.stream
        try:
            # The offset first: a restore refused for a trimmed offset leaves the session alone.
            if not await link.command("XRANGE", stream, offset, offset):
                return None
            raw, ttl = await self._take(pid)
            # The node the client left may not have stored its session yet (it learns of the
            # drop about when the client is already here): wait a little when the client was
            # receiving moments ago (its offset is among the latest entries; one clock: Redis's).
            for pause in SESSION_WAITS:
                if raw or not self._recent(offset):
                    break
                await asyncio.sleep(pause)
                raw, ttl = await self._take(pid)
        except (RedisUnavailable, Exception) as exc:
            adapter._warn("cannot restore a session from Redis: %s", exc)
            return None
        if not raw:
            return None
        try:
            snapshot = snapshot_of(wire.unpack(base64.b64decode(raw, validate=True)))
        except (wire.MalformedMessage, ValueError) as exc:
            adapter.malformed("a stored session", exc)
            return None
        expires = self.clock() + (ttl / 1000 if isinstance(ttl, int) and ttl > 0 else 0)
        restored = Restored(snapshot, [], expires)
        try:
            missed = await self._missed(snapshot, parse_id(offset))
        except (RedisUnavailable, wire.MalformedMessage, ValueError, OverflowError) as exc:
            adapter._warn("cannot read what a recovering client missed: %s", exc)
            await self.put_back(restored)
            return None
        if missed is None:
            await self.put_back(restored)
            return None
        restored.missed = missed
        return restored

    def _replayed(self, entry_id: str, raw_fields: dict[bytes, bytes], rooms: list[str]) -> list[Any]:
        """The frames of one stream entry for a recovering client, if it missed a stored event there."""
        nsp = self.adapter.nsp
        message = decode_entry(raw_fields)
        if message["nsp"] != nsp.name or message["type"] != MessageType.BROADCAST:
            return []
        data = wire.expect_dict(message.get("data"), "data")
        opts = wire.expect_dict(data.get("opts"), "opts")
        flags = opts.get("flags") or {}
        # Broadcasts with acks are never stored; volatile ones are not replayed (Node replays them).
        if "requestId" in data or (isinstance(flags, dict) and flags.get("volatile")):
            return []
        event = wire.event_data(data.get("packet"), nsp.name)
        if event is None or not reaches(rooms, opts):
            return []
        return nsp.encode(Packet(PacketType.EVENT, nsp.name, [*event, entry_id]))

    async def _take(self, pid: str) -> tuple[Any, Any]:
        """GET and DEL the session in one transaction (a pid restores at most once), with its TTL."""
        pipe = self.adapter.link.client.pipeline(transaction=True)
        key = self._key(pid)
        pipe.get(key)
        pipe.pttl(key)
        pipe.delete(key)
        raw, ttl, _ = await pipe.execute()
        return raw, ttl

    def _recent(self, offset: str) -> bool:
        latest = self.adapter.hub.reader(self.adapter.stream).delivered
        return parse_id(offset)[0] >= latest[0] - RECENT_OFFSET_MS

    async def _missed(self, snapshot: SessionSnapshot, offset: EntryId) -> list[Any] | None:
        """Frames of the entries after `offset` up to the one the read loop delivered last; from
        here on (no await until the socket joins its rooms) live delivery takes over."""
        adapter = self.adapter
        reader = adapter.hub.reader(adapter.stream)
        rooms = list(snapshot.rooms)
        frames: list[Any] = []
        cursor = offset
        for _ in range(MAX_REPLAY_READS):
            target = reader.delivered
            if cursor >= target:
                break
            start = format_id((cursor[0], cursor[1] + 1))
            entries = pairs(
                await adapter.link.command("XRANGE", adapter.stream, start, format_id(target), "COUNT", REPLAY_CHUNK)
            )
            for raw_id, raw_fields in entries:
                entry_id = text(raw_id)
                cursor = parse_id(entry_id)
                frames.extend(self._replayed(entry_id, raw_fields, rooms))
            if len(entries) < REPLAY_CHUNK:
                cursor = max(cursor, target)  # everything up to the target has been read
        else:
            return None  # too far behind to catch up
        if offset > reader.delivered:
            # The client saw entries (from another node) that this node's loop has not read yet.
            adapter._skip[snapshot.sid] = offset
        return frames
