"""Emit into a Socket.IO cluster from a process that serves no clients (a worker, a script).

`RedisEmitter` (redis-py's blocking client) and `AsyncRedisEmitter` (`redis.asyncio`) publish
exactly what Node's `@socket.io/redis-emitter` 5.x publishes (protocol.md §7), so Python and Node
nodes on the pub/sub `RedisAdapter` (or Node's `createAdapter`) both act on them:

* broadcasts: msgpack `["emitter", {type: 2, data: [event, ...args], nsp}, {rooms, flags, except}]`
  on `<key>#<nsp>#`, or `<key>#<nsp>#<room>#` when exactly one room is targeted;
* `sockets_join` / `sockets_leave` / `disconnect_sockets` / `server_side_emit`: JSON on
  `<key>-request#<nsp>#` (classic adapter request types 2, 3, 4 and 6).

The emitter subscribes to nothing, so nothing can answer it: no acks, as in Node.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, NoReturn, Self, TypeVar

from fastapi.encoders import jsonable_encoder

from ..socketio.packet import RESERVED_EVENTS, PacketType
from . import wire
from .redis_link import check_client_options, check_url, client_options

__all__ = ["AsyncEmitterOperator", "AsyncRedisEmitter", "EmitterOperator", "RedisEmitter"]

UID = "emitter"  # what Node's emitter puts where a node puts its uid; nodes never use it
DEFAULT_KEY = "socket.io"

# The classic adapter's request types (redis.py; not the ClusterAdapter ones of §6.1).
REMOTE_JOIN, REMOTE_LEAVE, REMOTE_DISCONNECT = 2, 3, 4
SERVER_SIDE_EMIT = 6

RoomArg = str | Iterable[str]

_NO_ACKS = (
    "the Redis emitter cannot take acknowledgements: it subscribes to nothing, so no answer can reach it "
    "(as with Node's @socket.io/redis-emitter); use emit_with_ack / server_side_emit_with_ack on a server"
)


# -- messages (sans I/O) -------------------------------------------------------------------------
def _default(obj: Any) -> Any:
    # A callable is someone's ack callback: jsonable_encoder would quietly turn it into {}.
    if callable(obj):
        raise TypeError(_NO_ACKS)
    # Models, dataclasses, datetimes, UUIDs, enums... as the server encodes them for clients.
    return jsonable_encoder(obj)


def _key_text(key: Any) -> str:
    # Map keys as json.dumps (and JSON.stringify) write them: Python nodes refuse msgpack maps
    # with non-string keys, and Node nodes would stringify them anyway.
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, (bool, int, float)):
        return json.dumps(key)
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")


def _plain(value: Any, depth: int = 0) -> Any:
    """`value` as msgpack data a Socket.IO server can pass on to its clients: str-keyed maps,
    lists, scalars and bytes; other objects through the server's JSON conversion."""
    if depth > 500:  # msgpack's own nesting limit is 512
        raise ValueError("the arguments are nested too deeply")
    if value is None or isinstance(value, (str, bool, int, bytes)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            # The server refuses these for its own clients; a Python node would drop the message.
            raise ValueError(f"{value!r} cannot be sent: JSON has no such number")
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, dict):
        return {_key_text(k): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, depth + 1) for v in value]
    if isinstance(value, (set, frozenset)):
        return [_plain(v, depth + 1) for v in value]
    return _plain(_default(value), depth + 1)


# Names a Node namespace emits itself: a server-side event so named would reach its own
# listeners ("connection" handlers called with the emitter's arguments).
_RESERVED_SERVER_SIDE = RESERVED_EVENTS | {"connection", "new_namespace"}


def _check_event(event: Any, reserved: frozenset[str] = RESERVED_EVENTS) -> str:
    if not isinstance(event, str):
        raise TypeError(f"an event name is a string, not {type(event).__name__}")
    if event in reserved:
        raise ValueError(f"{event!r} is a reserved event name")
    return event


def _rooms(args: tuple[RoomArg, ...], current: tuple[str, ...] = ()) -> tuple[str, ...]:
    """`current` plus the rooms of `args`, each once, in the order first given (a JS Set)."""
    rooms = dict.fromkeys(current)
    for arg in args:
        if isinstance(arg, str):
            names: Iterable[Any] = (arg,)
        elif isinstance(arg, Iterable) and not isinstance(arg, (bytes, bytearray, Mapping)):
            names = arg
        else:
            raise TypeError(f"a room is a string (or an iterable of them), not {type(arg).__name__}")
        for room in names:
            if not isinstance(room, str):
                raise TypeError(f"a room name is a string, not {type(room).__name__}")
            rooms[room] = None
    return tuple(rooms)


def _namespace(name: str) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError("a namespace is a non-empty string such as '/chat'")
    return name if name.startswith("/") else "/" + name  # as Node's emitter.of()


@dataclass(frozen=True, slots=True)
class _Target:
    """Where and how a message goes: namespace, rooms, except rooms and broadcast flags."""

    key: str
    nsp: str
    rooms: tuple[str, ...] = ()
    except_rooms: tuple[str, ...] = ()
    # Node's flags object, in the order the flags were first set (it decides the bytes).
    flags: tuple[tuple[str, bool], ...] = ()

    def with_flag(self, name: str, value: bool) -> _Target:
        flags = dict(self.flags)
        flags[name] = value
        return dataclasses.replace(self, flags=tuple(flags.items()))

    @property
    def request_channel(self) -> str:
        return f"{self.key}-request#{self.nsp}#"

    def broadcast(self, event: str, args: tuple[Any, ...]) -> tuple[str, bytes]:
        if args and callable(args[-1]):
            raise TypeError(_NO_ACKS)
        packet = {"type": int(PacketType.EVENT), "data": [_check_event(event), *_plain(args)], "nsp": self.nsp}
        # Node's emitter writes rooms, flags, except in this order.
        opts = {"rooms": list(self.rooms), "flags": dict(self.flags), "except": list(self.except_rooms)}
        channel = f"{self.key}#{self.nsp}#"
        if len(self.rooms) == 1:
            channel += self.rooms[0] + "#"
        return channel, wire.pack([UID, packet, opts])

    def _opts(self) -> dict[str, list[str]]:
        return {"rooms": list(self.rooms), "except": list(self.except_rooms)}

    def membership(self, kind: int, rooms: tuple[RoomArg, ...]) -> tuple[str, bytes]:
        request = {"type": kind, "opts": self._opts(), "rooms": list(_rooms(rooms))}
        return self.request_channel, wire.to_json(request, _default)

    def disconnect(self, close: bool) -> tuple[str, bytes]:
        if not isinstance(close, bool):
            raise TypeError("close must be a bool")
        request = {"type": REMOTE_DISCONNECT, "opts": self._opts(), "close": close}
        return self.request_channel, wire.to_json(request, _default)

    def server_side(self, event: str, args: tuple[Any, ...]) -> tuple[str, bytes]:
        if args and callable(args[-1]):
            raise TypeError(_NO_ACKS)
        name = _check_event(event, _RESERVED_SERVER_SIDE)
        if not name:
            raise ValueError("a server-side event name must not be empty")  # as the server's
        request = {"uid": UID, "type": SERVER_SIDE_EMIT, "data": [name, *args]}
        return self.request_channel, wire.to_json(request, _default)


# -- the Redis link ----------------------------------------------------------------------------
class _Link:
    """The client the emitters of one `from_url` / `from_client` share, and whether it is ours."""

    __slots__ = ("client", "closed", "owned")

    def __init__(self, client: Any, owned: bool) -> None:
        self.client = client
        self.owned = owned
        self.closed = False

    def check(self) -> Any:
        if self.closed:
            raise RuntimeError("this Redis emitter is closed")
        return self.client


def _redis() -> Any:
    try:
        import redis
        import redis.asyncio
    except ImportError as exc:
        raise ImportError("the Redis emitter needs redis-py: pip install 'fastapi-realtime[redis]'") from exc
    return redis


def _check_key(key: Any) -> str:
    if not isinstance(key, str) or not key:
        raise ValueError("key must be a non-empty string")
    return key


def _client_from_url(url: Any, redis_options: Mapping[str, Any] | None, asyncio: bool) -> Any:
    url = check_url(url)
    wire._msgpack()  # fail here, not at the first emit, when msgpack is missing
    redis = _redis()
    cls = redis.asyncio.Redis if asyncio else redis.Redis
    client = check_client_options(cls.from_url(url, **client_options(redis_options)))
    return client


def _check_client(client: Any, asyncio: bool) -> Any:
    if not callable(getattr(client, "publish", None)):
        raise TypeError("a redis-py client (with a publish method) is needed")
    wire._msgpack()
    try:
        redis = _redis()
    except ImportError:
        return client  # some other client with the same API
    async_types = (redis.asyncio.Redis, redis.asyncio.RedisCluster)
    sync_types = (redis.Redis, redis.RedisCluster)
    if not asyncio and isinstance(client, async_types):
        raise TypeError("an asyncio client goes to AsyncRedisEmitter.from_client; RedisEmitter needs redis.Redis")
    if asyncio and isinstance(client, sync_types):
        raise TypeError("a blocking client goes to RedisEmitter.from_client; AsyncRedisEmitter needs redis.asyncio.Redis")
    return client


# -- the builder -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Selection:
    _link: _Link
    _target: _Target

    @property
    def namespace(self) -> str:
        return self._target.nsp

    @property
    def rooms(self) -> tuple[str, ...]:
        return self._target.rooms

    @property
    def except_rooms(self) -> tuple[str, ...]:
        return self._target.except_rooms

    def to(self, *rooms: RoomArg) -> Self:
        """Target the sockets of these rooms too (each argument a room or an iterable of rooms)."""
        return dataclasses.replace(self, _target=dataclasses.replace(self._target, rooms=_rooms(rooms, self.rooms)))

    in_ = to

    def except_(self, *rooms: RoomArg) -> Self:
        """Leave out the sockets of these rooms."""
        target = dataclasses.replace(self._target, except_rooms=_rooms(rooms, self.except_rooms))
        return dataclasses.replace(self, _target=target)

    @property
    def volatile(self) -> Self:
        """Let servers drop the event for clients that cannot take it right now."""
        return dataclasses.replace(self, _target=self._target.with_flag("volatile", True))

    def compress(self, compress: bool) -> Self:
        """Set the `compress` flag of the broadcast."""
        if not isinstance(compress, bool):
            raise TypeError("compress takes a bool")
        return dataclasses.replace(self, _target=self._target.with_flag("compress", compress))


@dataclass(frozen=True, slots=True)
class EmitterOperator(_Selection):
    """Sockets of one namespace selected by rooms, with flags; each method returns a new operator
    or publishes. Publishing methods return what PUBLISH answered: how many Redis subscribers
    got the message (each node subscribes once per namespace; 0: no server heard it)."""

    def _publish(self, message: tuple[str, bytes]) -> int:
        client = self._link.check()
        return int(client.publish(*message))

    def emit(self, event: str, *args: Any) -> int:
        """Send `event` with `args` to the selected clients."""
        return self._publish(self._target.broadcast(event, args))

    def emit_with_ack(self, event: str, *args: Any) -> NoReturn:
        """Not supported: the emitter cannot receive acknowledgements."""
        raise NotImplementedError(_NO_ACKS)

    def sockets_join(self, *rooms: RoomArg) -> int:
        """Make the selected sockets join `rooms`."""
        return self._publish(self._target.membership(REMOTE_JOIN, rooms))

    def sockets_leave(self, *rooms: RoomArg) -> int:
        """Make the selected sockets leave `rooms`."""
        return self._publish(self._target.membership(REMOTE_LEAVE, rooms))

    def disconnect_sockets(self, close: bool = False) -> int:
        """Disconnect the selected sockets; `close` also closes their underlying connections."""
        return self._publish(self._target.disconnect(close))


@dataclass(frozen=True, slots=True)
class AsyncEmitterOperator(_Selection):
    """As `EmitterOperator`, publishing with `redis.asyncio`."""

    async def _publish(self, message: tuple[str, bytes]) -> int:
        client = self._link.check()
        return int(await client.publish(*message))

    async def emit(self, event: str, *args: Any) -> int:
        """Send `event` with `args` to the selected clients."""
        return await self._publish(self._target.broadcast(event, args))

    async def emit_with_ack(self, event: str, *args: Any) -> NoReturn:
        """Not supported: the emitter cannot receive acknowledgements."""
        raise NotImplementedError(_NO_ACKS)

    async def sockets_join(self, *rooms: RoomArg) -> int:
        """Make the selected sockets join `rooms`."""
        return await self._publish(self._target.membership(REMOTE_JOIN, rooms))

    async def sockets_leave(self, *rooms: RoomArg) -> int:
        """Make the selected sockets leave `rooms`."""
        return await self._publish(self._target.membership(REMOTE_LEAVE, rooms))

    async def disconnect_sockets(self, close: bool = False) -> int:
        """Disconnect the selected sockets; `close` also closes their underlying connections."""
        return await self._publish(self._target.disconnect(close))


OpT = TypeVar("OpT", EmitterOperator, AsyncEmitterOperator)


class _Emitter(Generic[OpT]):
    """A namespace of the cluster: `of()` names another, `to()`... select sockets."""

    __slots__ = ("_link", "_target")
    _operator: type[OpT]

    def __init__(self, link: _Link, key: str, namespace: str = "/") -> None:
        # Made by from_url / from_client / of().
        self._link = link
        self._target = _Target(key=_check_key(key), nsp=_namespace(namespace))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(key={self.key!r}, namespace={self.namespace!r})"

    @property
    def key(self) -> str:
        return self._target.key

    @property
    def namespace(self) -> str:
        return self._target.nsp

    @property
    def closed(self) -> bool:
        return self._link.closed

    def of(self, namespace: str) -> Self:
        """The emitter of another namespace ("chat" means "/chat"), on the same Redis client."""
        return type(self)(self._link, self.key, namespace)

    def _all(self) -> OpT:
        return self._operator(self._link, self._target)

    def to(self, *rooms: RoomArg) -> OpT:
        """Target the sockets of these rooms (each argument a room or an iterable of rooms)."""
        return self._all().to(*rooms)

    in_ = to

    def except_(self, *rooms: RoomArg) -> OpT:
        """Every socket of the namespace but those of these rooms."""
        return self._all().except_(*rooms)

    @property
    def volatile(self) -> OpT:
        """Let servers drop the event for clients that cannot take it right now."""
        return self._all().volatile

    def compress(self, compress: bool) -> OpT:
        """Set the `compress` flag of the broadcast."""
        return self._all().compress(compress)


class RedisEmitter(_Emitter[EmitterOperator]):
    """Publishes to a Socket.IO cluster through redis-py's blocking client; thread-safe as
    that client is. Use `from_url` or `from_client`; close it (or use `with`) when done.

    Publishing methods return what PUBLISH answered: how many Redis subscribers got the message
    (one per node serving the namespace; 0: no server heard it). Redis errors propagate.
    """

    __slots__ = ()
    _operator = EmitterOperator

    @classmethod
    def from_url(
        cls, url: str, *, key: str = DEFAULT_KEY, redis_options: Mapping[str, Any] | None = None
    ) -> RedisEmitter:
        """An emitter on the Redis at `url` for namespace "/", owning its client.

        `key` is the adapters' channel prefix; `redis_options` go to `redis.Redis.from_url`
        (timeouts, TLS, credentials).
        """
        key = _check_key(key)
        return cls(_Link(_client_from_url(url, redis_options, asyncio=False), owned=True), key)

    @classmethod
    def from_client(cls, client: Any, *, key: str = DEFAULT_KEY) -> RedisEmitter:
        """An emitter over your `redis.Redis` (or `redis.RedisCluster`); `close()` leaves it open."""
        key = _check_key(key)
        return cls(_Link(_check_client(client, asyncio=False), owned=False), key)

    def emit(self, event: str, *args: Any) -> int:
        """Send `event` with `args` to every client of the namespace."""
        return self._all().emit(event, *args)

    def emit_with_ack(self, event: str, *args: Any) -> NoReturn:
        """Not supported: the emitter cannot receive acknowledgements."""
        raise NotImplementedError(_NO_ACKS)

    def sockets_join(self, *rooms: RoomArg) -> int:
        """Make every socket of the namespace join `rooms`."""
        return self._all().sockets_join(*rooms)

    def sockets_leave(self, *rooms: RoomArg) -> int:
        """Make every socket of the namespace leave `rooms`."""
        return self._all().sockets_leave(*rooms)

    def disconnect_sockets(self, close: bool = False) -> int:
        """Disconnect every socket of the namespace."""
        return self._all().disconnect_sockets(close)

    def server_side_emit(self, event: str, *args: Any) -> int:
        """Send `event` to the server-side handlers of every node (no answer can come back)."""
        return self._all()._publish(self._target.server_side(event, args))

    def server_side_emit_with_ack(self, event: str, *args: Any) -> NoReturn:
        """Not supported: the emitter cannot receive answers."""
        raise NotImplementedError(_NO_ACKS)

    def close(self) -> None:
        """Close the client if `from_url` made it; every emitter sharing it is closed too."""
        if self._link.closed:
            return
        self._link.closed = True
        if self._link.owned:
            self._link.client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncRedisEmitter(_Emitter[AsyncEmitterOperator]):
    """As `RedisEmitter`, over `redis.asyncio`: every publishing method is a coroutine. Make it
    in the event loop that uses it (redis-py's connections belong to one loop)."""

    __slots__ = ()
    _operator = AsyncEmitterOperator

    @classmethod
    def from_url(
        cls, url: str, *, key: str = DEFAULT_KEY, redis_options: Mapping[str, Any] | None = None
    ) -> AsyncRedisEmitter:
        """An emitter on the Redis at `url` for namespace "/", owning its client.

        `key` is the adapters' channel prefix; `redis_options` go to
        `redis.asyncio.Redis.from_url` (timeouts, TLS, credentials).
        """
        key = _check_key(key)
        return cls(_Link(_client_from_url(url, redis_options, asyncio=True), owned=True), key)

    @classmethod
    def from_client(cls, client: Any, *, key: str = DEFAULT_KEY) -> AsyncRedisEmitter:
        """An emitter over your `redis.asyncio.Redis` (or its RedisCluster); `aclose()` leaves it open."""
        key = _check_key(key)
        return cls(_Link(_check_client(client, asyncio=True), owned=False), key)

    async def emit(self, event: str, *args: Any) -> int:
        """Send `event` with `args` to every client of the namespace."""
        return await self._all().emit(event, *args)

    async def emit_with_ack(self, event: str, *args: Any) -> NoReturn:
        """Not supported: the emitter cannot receive acknowledgements."""
        raise NotImplementedError(_NO_ACKS)

    async def sockets_join(self, *rooms: RoomArg) -> int:
        """Make every socket of the namespace join `rooms`."""
        return await self._all().sockets_join(*rooms)

    async def sockets_leave(self, *rooms: RoomArg) -> int:
        """Make every socket of the namespace leave `rooms`."""
        return await self._all().sockets_leave(*rooms)

    async def disconnect_sockets(self, close: bool = False) -> int:
        """Disconnect every socket of the namespace."""
        return await self._all().disconnect_sockets(close)

    async def server_side_emit(self, event: str, *args: Any) -> int:
        """Send `event` to the server-side handlers of every node (no answer can come back)."""
        return await self._all()._publish(self._target.server_side(event, args))

    async def server_side_emit_with_ack(self, event: str, *args: Any) -> NoReturn:
        """Not supported: the emitter cannot receive answers."""
        raise NotImplementedError(_NO_ACKS)

    async def aclose(self) -> None:
        """Close the client if `from_url` made it; every emitter sharing it is closed too."""
        if self._link.closed:
            return
        self._link.closed = True
        if self._link.owned:
            await self._link.client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
