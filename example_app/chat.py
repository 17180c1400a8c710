"""The chat's realtime side: its state, its dependencies and its Socket.IO handlers.

Socket.IO events (client -> server; each answers through the ack):
  join {"room"}             -> Joined {"room", "members", "history"}
  leave                     -> (empty ack)
  message {"room", "text"}  -> Receipt {"id", "ts"}  (the page marks its message delivered on it)
  typing {"typing"}            (no ack; relayed to the rest of the room)
  set-nickname {"nickname"} -> NicknameChanged {"nickname"}
Failed acks are `{"error": "validation_error", "detail": [...]}` for a payload that does not
fit the model, or `{"error": <code>, "message": <text>}` for a ChatError.
Server -> client: welcome, rooms, message, system, typing (and `error` for an invalid
payload sent without an ack).

With connection state recovery on, a client whose connection drops keeps its place: the
server holds its membership for the recovery window, and if it comes back in time it gets the
events it missed and the room never notices. Otherwise it is removed once the window closes.

One process or several
----------------------
The chat's state (rooms, members, each room's history, the members held for recovery) sits
behind a small store with two implementations and one set of handlers above them:

* `MemoryStore`, the default: dictionaries in this process (`make run`, one process).
* `RedisStore`, when the app is given a Redis URL (`REDIS_URL`): the state lives in Redis
  itself, and the realtime server uses `RedisStreamsAdapter`, so room broadcasts (messages,
  typing, system lines) reach the room's sockets on every process and a dropped client
  recovers on any process, with its id, rooms, `socket.data` and missed events.

Why the state lives in Redis rather than in a copy per process kept in step with server-side
events: with copies, a new process needs a snapshot from the others that races with the
updates sent meanwhile, concurrent updates reach each process in a different order (so the
histories and member lists drift apart), and deciding which process announces that a dropped
member left needs an agreement anyway. With one copy in Redis every process reads the same
thing in the same order, each change is one atomic command or script, and "who announces"
is simply whoever removed the record (HDEL and ZREM answer 1 to exactly one caller).

How the pieces fit together in a cluster:

* Room list: after a change a process reads the list from the store and emits it to its own
  sockets (`realtime.local`), then `server_side_emit`s ROOMS_CHANGED, on which every other
  process does the same (server-side events never run on the sender, hence the local step).
  Each process refreshes one at a time and reads after the change, so the last list a page
  gets is the current one; a list read on one process and broadcast to all could overtake a
  newer list from another process.
* Joining: the socket joins the Socket.IO room before the history is read, so a line said
  meanwhile on another process is in the history, arrives live, or both (the page skips a
  history line it already shows); it is never lost between the two.
* Dropped members are held by a record in the store with a deadline, not by a timer in the
  process that saw the drop. A recovery on any process removes the record; otherwise the
  sweeper of any process expires it once the deadline passes (so holds outlive the process
  that made them, e.g. across a restart). Before announcing "left", the sweeper asks the
  cluster whether the socket is connected anywhere (`fetch_sockets` on the socket's own
  room): a client that recovered on another process before the old one had written its hold
  keeps its place, and the old process never announces it.
* A process killed outright (no shutdown) holds nobody; its members are simply no longer
  connected. Every RECONCILE_SECONDS each process compares the members in Redis with the
  sockets the cluster holds (`fetch_sockets`) and removes those missing twice in a row.
* `/api/health`'s `online` counts the connections of the process that answers.
"""

# No `from __future__ import annotations`: handler annotations stay real objects, so the
# library and FastAPI read them without evaluating strings.

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Annotated, Any, Protocol, cast
from urllib.parse import unquote

from fastapi import Cookie, Depends, Request
from pydantic import ValidationError

from fastapi_realtime import Auth, ConnectionRejected, CurrentSocket, Realtime, RealtimeRouter, Socket
from fastapi_realtime.exceptions import ClusterError
from fastapi_realtime.recovery import RECOVERABLE_REASONS

from .models import (
    MAX_NICKNAME,
    ChatMessage,
    Credentials,
    Joined,
    JoinRoom,
    Line,
    NicknameChange,
    NicknameChanged,
    Receipt,
    RoomInfo,
    TypingState,
    TypingUpdate,
    User,
    Welcome,
)

DEFAULT_ROOMS = ("general", "random", "help")
HISTORY_SIZE = 50
NICKNAME_COOKIE = "chat_nickname"
# Flood guard: at most this many messages per socket in any window of this many seconds.
BURST_MESSAGES = 10
BURST_SECONDS = 10.0
# How often held members are checked for an expired grace period.
SWEEP_SECONDS = 0.25
# With several processes: how often the members in Redis are checked against the sockets the
# cluster holds (members of a process that was killed are removed after two checks).
RECONCILE_SECONDS = 10.0
# The server-side event that tells the other processes the room list changed.
ROOMS_CHANGED = "chat:rooms-changed"

CallNext = Callable[[Any, list[Any]], Awaitable[Any]]

logger = logging.getLogger("example_app")


def now_ms() -> int:
    return int(time.time() * 1000)


class ChatError(Exception):
    """A request the chat refuses; the exception handler turns it into the ack."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(slots=True)
class Away:
    """A member whose connection dropped and who may still recover its session."""

    sid: str
    nickname: str
    room: str | None


def room_order(names: set[str]) -> list[str]:
    """The default rooms first, in their order, then the others by name."""
    return [*DEFAULT_ROOMS, *sorted(names - set(DEFAULT_ROOMS))]


# ---- stores ---------------------------------------------------------------------------------


class Store(Protocol):
    """Rooms, members, history and held members. Every write is atomic; `exit` and `claim`
    say whether this caller was the one that removed the entry."""

    shared: bool  # True when several processes use the same store
    errors: tuple[type[Exception], ...]  # what the store raises when its backend is away

    async def close(self) -> None: ...
    async def rooms(self) -> list[RoomInfo]: ...
    async def nicknames(self, room: str) -> list[str]: ...
    async def members(self) -> dict[tuple[str, str], str]: ...  # (room, socket id) -> nickname
    async def history(self, room: str) -> list[Line]: ...
    async def remember(self, line: Line) -> None: ...
    async def enter(self, room: str, sid: str, nickname: str) -> None: ...
    async def exit(self, room: str, sid: str) -> tuple[bool, bool]: ...  # (was a member, room still there)
    async def rename(self, room: str, sid: str, nickname: str) -> None: ...
    async def hold(self, pid: str, away: Away, deadline_ms: int) -> None: ...
    async def held(self, pid: str) -> Away | None: ...
    async def held_sids(self) -> set[str]: ...
    async def claim(self, pid: str) -> Away | None: ...
    async def due(self, now: int) -> list[str]: ...  # private ids whose deadline has passed


class MemoryStore:
    """The state in this process's memory: for a single process."""

    shared = False
    errors: tuple[type[Exception], ...] = ()

    def __init__(self) -> None:
        # room -> {socket id: nickname}; the default rooms stay listed even when empty.
        self._members: dict[str, dict[str, str]] = {room: {} for room in DEFAULT_ROOMS}
        self._history: dict[str, deque[Line]] = {}
        self._away: dict[str, tuple[Away, int]] = {}  # private id -> (member, deadline)

    async def close(self) -> None:
        pass

    async def rooms(self) -> list[RoomInfo]:
        return [
            RoomInfo(name=n, members=len(self._members[n]), nicknames=sorted(self._members[n].values()))
            for n in room_order(set(self._members))
        ]

    async def nicknames(self, room: str) -> list[str]:
        return sorted(self._members.get(room, {}).values())

    async def members(self) -> dict[tuple[str, str], str]:
        return {(room, sid): nick for room, members in self._members.items() for sid, nick in members.items()}

    async def history(self, room: str) -> list[Line]:
        return list(self._history.get(room, ()))

    async def remember(self, line: Line) -> None:
        self._history.setdefault(line.room, deque(maxlen=HISTORY_SIZE)).append(line)

    async def enter(self, room: str, sid: str, nickname: str) -> None:
        self._members.setdefault(room, {})[sid] = nickname

    async def exit(self, room: str, sid: str) -> tuple[bool, bool]:
        room_members = self._members.get(room)
        if room_members is None or sid not in room_members:
            return False, room_members is not None
        del room_members[sid]
        if not room_members and room not in DEFAULT_ROOMS:
            del self._members[room]
            self._history.pop(room, None)
        return True, room in self._members

    async def rename(self, room: str, sid: str, nickname: str) -> None:
        room_members = self._members.get(room)
        if room_members is not None and sid in room_members:
            room_members[sid] = nickname

    async def hold(self, pid: str, away: Away, deadline_ms: int) -> None:
        self._away[pid] = (away, deadline_ms)

    async def held(self, pid: str) -> Away | None:
        entry = self._away.get(pid)
        return entry[0] if entry else None

    async def held_sids(self) -> set[str]:
        return {away.sid for away, _ in self._away.values()}

    async def claim(self, pid: str) -> Away | None:
        entry = self._away.pop(pid, None)
        return entry[0] if entry else None

    async def due(self, now: int) -> list[str]:
        return [pid for pid, (_, deadline) in self._away.items() if deadline <= now]


# Scripts run atomically in Redis, so two processes never interleave inside one of them.
_EXIT = """
local removed = redis.call('HDEL', KEYS[1], ARGV[1])
if ARGV[3] == '0' and redis.call('HLEN', KEYS[1]) == 0 then
  redis.call('SREM', KEYS[2], ARGV[2])
  redis.call('DEL', KEYS[3])
  return {removed, 0}
end
return {removed, 1}
"""
_REMEMBER = """
if ARGV[2] == '1' or redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then
  redis.call('RPUSH', KEYS[1], ARGV[3])
  redis.call('LTRIM', KEYS[1], -tonumber(ARGV[4]), -1)
end
"""
_RENAME = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
"""
_CLAIM = """
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return false end
local away = redis.call('HGET', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return away
"""


class RedisStore:
    """The state in Redis, shared by every process of the chat.

    Keys (under `prefix`): `rooms` (set of the rooms beyond the default ones), `members:<room>`
    (hash socket id -> nickname), `history:<room>` (list of Line JSON, the last HISTORY_SIZE),
    `away` (sorted set private id -> deadline in ms) and `away-info` (hash private id -> JSON).
    """

    shared = True

    def __init__(self, url: str, prefix: str = "chat") -> None:
        # The `redis` extra, needed only with a Redis URL.
        from redis.asyncio import Redis
        from redis.exceptions import RedisError

        self.errors: tuple[type[Exception], ...] = (RedisError,)
        self.redis = Redis.from_url(url, decode_responses=True, socket_connect_timeout=2.0, socket_timeout=5.0)
        self.prefix = prefix
        self._rooms = f"{prefix}:rooms"
        self._away = f"{prefix}:away"
        self._away_info = f"{prefix}:away-info"
        self._exit = self.redis.register_script(_EXIT)
        self._remember = self.redis.register_script(_REMEMBER)
        self._rename = self.redis.register_script(_RENAME)
        self._claim = self.redis.register_script(_CLAIM)

    def _members_key(self, room: str) -> str:
        return f"{self.prefix}:members:{room}"

    def _history_key(self, room: str) -> str:
        return f"{self.prefix}:history:{room}"

    async def close(self) -> None:
        await self.redis.aclose()

    async def _all_members(self) -> dict[str, dict[str, str]]:
        names = room_order({str(name) for name in await self.redis.smembers(self._rooms)})
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(self._members_key(name))
        found: list[dict[str, str]] = await pipe.execute()
        # A room emptied between the two reads is on its way out: the next refresh drops it.
        return {n: m for n, m in zip(names, found) if m or n in DEFAULT_ROOMS}

    async def rooms(self) -> list[RoomInfo]:
        return [
            RoomInfo(name=n, members=len(m), nicknames=sorted(m.values())) for n, m in (await self._all_members()).items()
        ]

    async def nicknames(self, room: str) -> list[str]:
        return sorted(str(nickname) for nickname in await self.redis.hvals(self._members_key(room)))

    async def members(self) -> dict[tuple[str, str], str]:
        return {(room, sid): nick for room, members in (await self._all_members()).items() for sid, nick in members.items()}

    async def history(self, room: str) -> list[Line]:
        return [Line.model_validate_json(raw) for raw in await self.redis.lrange(self._history_key(room), 0, -1)]

    async def remember(self, line: Line) -> None:
        # Only while the room exists: a line must not bring back the history of an emptied room.
        default = "1" if line.room in DEFAULT_ROOMS else "0"
        await self._remember(
            keys=[self._history_key(line.room), self._rooms], args=[line.room, default, line.model_dump_json(), HISTORY_SIZE]
        )

    async def enter(self, room: str, sid: str, nickname: str) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self._members_key(room), sid, nickname)
        if room not in DEFAULT_ROOMS:
            pipe.sadd(self._rooms, room)
        await pipe.execute()

    async def exit(self, room: str, sid: str) -> tuple[bool, bool]:
        default = "1" if room in DEFAULT_ROOMS else "0"
        removed, alive = await self._exit(
            keys=[self._members_key(room), self._rooms, self._history_key(room)], args=[sid, room, default]
        )
        return bool(removed), bool(alive)

    async def rename(self, room: str, sid: str, nickname: str) -> None:
        await self._rename(keys=[self._members_key(room)], args=[sid, nickname])

    async def hold(self, pid: str, away: Away, deadline_ms: int) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.zadd(self._away, {pid: deadline_ms})
        pipe.hset(self._away_info, pid, json.dumps(asdict(away)))
        await pipe.execute()

    async def held(self, pid: str) -> Away | None:
        raw = await self.redis.hget(self._away_info, pid)
        return Away(**json.loads(raw)) if raw else None

    async def held_sids(self) -> set[str]:
        return {json.loads(raw)["sid"] for raw in await self.redis.hvals(self._away_info)}

    async def claim(self, pid: str) -> Away | None:
        raw = await self._claim(keys=[self._away, self._away_info], args=[pid])
        return Away(**json.loads(raw)) if raw else None

    async def due(self, now: int) -> list[str]:
        return [str(pid) for pid in await self.redis.zrangebyscore(self._away, "-inf", now, start=0, num=100)]


# ---- the chat's state -----------------------------------------------------------------------


class ChatState:
    """The store, plus what the handlers do with it: announcements, the room list, holds."""

    def __init__(
        self, realtime: Realtime, grace: float, store: Store | None = None, reconcile_every: float = RECONCILE_SECONDS
    ) -> None:
        self.realtime = realtime
        # How long a dropped member keeps its place: a little longer than the recovery
        # window, so a session recovered at the last moment still finds it.
        self.grace = grace
        self.store: Store = store if store is not None else MemoryStore()
        self.reconcile_every = reconcile_every
        self.online: dict[str, str] = {}  # this process's connected sockets: id -> nickname
        self.closing = False
        self._rooms_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._suspects: set[tuple[str, str]] = set()  # members found disconnected by the last check

        # Another process changed the room list: show the new one to this process's sockets.
        node = RealtimeRouter()
        node.on_server_side(ROOMS_CHANGED)(self.refresh_rooms)
        realtime.include_router(node)

    async def start(self) -> None:
        self._tasks.append(asyncio.get_running_loop().create_task(self._sweep(), name="chat sweeper"))

    async def close(self) -> None:
        self.closing = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        # Held members stay in a shared store: another process expires them (or they recover there).
        await self.store.close()

    async def rooms(self) -> list[RoomInfo]:
        return await self.store.rooms()

    async def system_line(self, room: str, text: str) -> Line:
        line = Line(id=uuid.uuid4().hex, room=room, kind="system", text=text, ts=now_ms())
        await self.store.remember(line)
        return line

    async def refresh_rooms(self) -> None:
        """Send the current room list to this process's sockets. One refresh at a time, each
        reading the store afresh, so the last list sent is the latest."""
        async with self._rooms_lock:
            await self.realtime.local.emit("rooms", await self.store.rooms())

    async def publish_rooms(self) -> None:
        # Every connected page keeps its room list (with counts) current from this event.
        await self.refresh_rooms()
        if self.store.shared:
            await self.realtime.server_side_emit(ROOMS_CHANGED)

    async def depart(self, sid: str, nickname: str, room: str | None) -> None:
        """`sid` is no longer in `room`: tell the room and update the lists (once, whichever
        process gets here first)."""
        if room is None:
            return
        removed, alive = await self.store.exit(room, sid)
        if not removed:
            return
        # The leaver may have been mid-typing: clear its indicator for the others.
        await self.realtime.to(room).emit("typing", TypingState(room=room, id=sid, nickname=nickname, typing=False))
        if alive:
            await self.realtime.to(room).emit("system", await self.system_line(room, f"{nickname} left"))
        await self.publish_rooms()

    async def hold(self, pid: str, sid: str, nickname: str, room: str | None) -> None:
        """Keep a dropped member in its room for the grace period; the sweeper lets it go."""
        await self.store.hold(pid, Away(sid, nickname, room), now_ms() + int(self.grace * 1000))

    async def resume(self, pid: str) -> bool:
        """The session came back: keep its place. False when it was not (or no longer) held."""
        return await self.store.claim(pid) is not None

    async def forget(self, pid: str) -> None:
        """The client came back but its session was not recovered: its old place goes now."""
        away = await self.store.claim(pid)
        if away is not None:
            await self.depart(away.sid, away.nickname, away.room)

    async def connected(self, sid: str) -> bool:
        """Whether socket `sid` is connected to any process (each socket is in its own room)."""
        return bool(await self.realtime.in_(sid).fetch_sockets())

    async def expire(self, pid: str) -> None:
        """The grace period of a held member is over: it leaves, unless it is connected again
        (it recovered on another process before this hold was even written)."""
        away = await self.store.held(pid)
        if away is not None and await self.connected(away.sid):
            await self.store.claim(pid)
            return
        away = await self.store.claim(pid)
        if away is not None:
            await self.depart(away.sid, away.nickname, away.room)

    async def reconcile(self) -> None:
        """Remove members that no process holds (their process was killed): those found
        neither connected nor held by two checks in a row."""
        members = await self.store.members()
        if not members:
            self._suspects = set()
            return
        live = {s.id for s in await self.realtime.fetch_sockets()}
        held = await self.store.held_sids()
        missing = {key for key in members if key[1] not in live and key[1] not in held}
        gone, self._suspects = missing & self._suspects, missing - self._suspects
        for room, sid in gone:
            await self.depart(sid, members[(room, sid)], room)

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        next_check = loop.time() + self.reconcile_every
        # Redis or another process not answering: the next round tries again.
        unavailable: tuple[type[Exception], ...] = (ClusterError, *self.store.errors)
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                for pid in await self.store.due(now_ms()):
                    await self.expire(pid)
                if self.store.shared and loop.time() >= next_check:
                    next_check = loop.time() + self.reconcile_every
                    await self.reconcile()
            except unavailable as exc:
                logger.warning("chat: cannot check held members now (%s)", exc)
            except Exception:
                logger.exception("chat: checking held members failed")


# ---- dependencies ---------------------------------------------------------------------------
# Plain FastAPI dependencies: the HTTP routes use `chat_state` too.


def chat_state(request: Request) -> ChatState:
    return cast(ChatState, request.app.state.chat)


State = Annotated[ChatState, Depends(chat_state)]


async def handshake_user(
    socket: CurrentSocket,
    auth: Auth,
    cookie_nickname: Annotated[str | None, Cookie(alias=NICKNAME_COOKIE)] = None,
) -> User:
    """The user a connection introduces: the auth's nickname, else the page's nickname
    cookie, else a guest name. An invalid nickname refuses the connection."""
    try:
        credentials = Credentials.model_validate(auth)
        nickname = credentials.nickname
        if nickname is None and cookie_nickname:
            nickname = Credentials(nickname=unquote(cookie_nickname)).nickname
        return User(id=socket.id, nickname=nickname or f"guest-{socket.id[:4]}")
    except ValidationError:
        raise ConnectionRejected("invalid nickname", data={"max_length": MAX_NICKNAME}) from None


async def current_user(socket: CurrentSocket) -> User:
    """The user behind the socket, by the nickname it goes by now (set-nickname changes it)."""
    return User(id=socket.id, nickname=socket.data["nickname"])


CurrentUser = Annotated[User, Depends(current_user)]


def current_room(socket: Socket) -> str | None:
    room = socket.data.get("room")
    return room if isinstance(room, str) else None


# ---- handlers -------------------------------------------------------------------------------

chat = RealtimeRouter()


@chat.exception_handler(ChatError)
async def chat_error(socket: Socket, exc: ChatError) -> dict[str, str]:
    return {"error": exc.code, "message": exc.message}


@chat.event_middleware
async def flood_guard(socket: Socket, event: Any, args: list[Any], call_next: CallNext) -> Any:
    """Refuse messages beyond BURST_MESSAGES per BURST_SECONDS from one socket."""
    if event == "message":
        # Wall-clock times kept in socket.data (plain numbers), so a recovered session keeps
        # its budget, on this process or another one.
        now = time.time()
        recent = [t for t in socket.data.get("sent", []) if 0 <= now - t < BURST_SECONDS]
        if len(recent) >= BURST_MESSAGES:
            socket.data["sent"] = recent
            raise ChatError("slow_down", f"at most {BURST_MESSAGES} messages per {BURST_SECONDS:g} seconds")
        socket.data["sent"] = [*recent, now]
    return await call_next(event, args)


@chat.on("connect")
async def on_connect(socket: Socket, state: State, user: Annotated[User, Depends(handshake_user)]) -> None:
    if socket.recovered:
        # Same id, rooms and socket.data as before the drop (on this process or another one);
        # the missed events are already sent.
        room = current_room(socket)
        resumed = socket.pid is not None and await state.resume(socket.pid)
        if not resumed and room is not None:
            # Not held (any more): take the place back. Adding a member that is there is harmless.
            await state.store.enter(room, socket.id, socket.data["nickname"])
            await state.publish_rooms()
    else:
        stale = socket.handshake.auth.get("pid")
        if isinstance(stale, str):
            await state.forget(stale)
        socket.data["nickname"] = user.nickname
        socket.data["room"] = None
    state.online[socket.id] = socket.data["nickname"]
    await socket.emit("welcome", Welcome(id=socket.id, nickname=socket.data["nickname"], rooms=await state.rooms()))


@chat.on("disconnect")
async def on_disconnect(socket: Socket, reason: str, state: State) -> None:
    state.online.pop(socket.id, None)
    nickname: str = socket.data["nickname"]
    room = current_room(socket)
    if socket.pid is not None and reason in RECOVERABLE_REASONS and not state.closing:
        # The session may be recovered: keep the place, only stop showing it as typing. Leave
        # socket.data alone: it is what a recovered socket gets back.
        if room is not None:
            await state.realtime.to(room).emit(
                "typing", TypingState(room=room, id=socket.id, nickname=nickname, typing=False)
            )
        await state.hold(socket.pid, socket.id, nickname, room)
        return
    socket.data["room"] = None
    await state.depart(socket.id, nickname, room)


async def leave_current(socket: Socket, state: State, user: User) -> None:
    room = current_room(socket)
    if room is None:
        return
    socket.data["room"] = None
    await socket.leave(room)
    await state.depart(socket.id, user.nickname, room)


@chat.on("join")
async def on_join(socket: Socket, body: JoinRoom, user: CurrentUser, state: State) -> Joined:
    room = body.room
    if current_room(socket) == room:
        return Joined(room=room, members=await state.store.nicknames(room), history=await state.store.history(room))
    await leave_current(socket, state, user)
    await socket.join(room)
    socket.data["room"] = room
    # History is read after joining (a line said meanwhile, maybe on another process, comes in
    # it, live, or both: the page skips repeats) and before the announcement: the joiner shows
    # its own "You joined" line.
    past = await state.store.history(room)
    await state.store.enter(room, socket.id, user.nickname)
    await socket.to(room).emit("system", await state.system_line(room, f"{user.nickname} joined"))
    await state.publish_rooms()
    return Joined(room=room, members=await state.store.nicknames(room), history=past)


@chat.on("leave")
async def on_leave(socket: Socket, user: CurrentUser, state: State) -> None:
    await leave_current(socket, state, user)


@chat.on("message")
async def on_message(socket: Socket, msg: ChatMessage, user: CurrentUser, state: State) -> Receipt:
    if current_room(socket) != msg.room:
        raise ChatError("not_in_room", f"join #{msg.room} before writing to it")
    line = Line(
        id=uuid.uuid4().hex, room=msg.room, kind="chat", text=msg.text, ts=now_ms(),
        author=user.nickname, sid=socket.id,
    )
    # Kept before it is sent: whoever reads the history after receiving it finds it there.
    await state.store.remember(line)
    # The sender already shows its copy; the ack below is what marks it delivered.
    await socket.to(msg.room).emit("message", line)
    return Receipt(id=line.id, ts=line.ts)


@chat.on("typing")
async def on_typing(socket: Socket, update: TypingUpdate, user: CurrentUser) -> None:
    room = current_room(socket)
    if room is None:
        return
    # Not volatile: over long-polling a volatile event is dropped whenever no poll is waiting.
    await socket.to(room).emit("typing", TypingState(room=room, id=socket.id, nickname=user.nickname,
                                                     typing=update.typing))


@chat.on("set-nickname")
async def on_set_nickname(socket: Socket, change: NicknameChange, user: CurrentUser, state: State) -> NicknameChanged:
    nickname = change.nickname
    if nickname == user.nickname:
        return NicknameChanged(nickname=nickname)
    socket.data["nickname"] = nickname
    state.online[socket.id] = nickname
    room = current_room(socket)
    if room is not None:
        await state.store.rename(room, socket.id, nickname)
        line = await state.system_line(room, f"{user.nickname} is now known as {nickname}")
        await socket.to(room).emit("system", line)
        await state.publish_rooms()
    return NicknameChanged(nickname=nickname)
