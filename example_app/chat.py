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
"""

# No `from __future__ import annotations`: handler annotations stay real objects, so the
# library and FastAPI read them without evaluating strings.

import asyncio
import contextlib
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, cast
from urllib.parse import unquote

from fastapi import Cookie, Depends, Request
from pydantic import ValidationError

from fastapi_realtime import Auth, ConnectionRejected, CurrentSocket, Realtime, RealtimeRouter, Socket
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

CallNext = Callable[[Any, list[Any]], Awaitable[Any]]


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
    timer: "asyncio.Task[None]"


class ChatState:
    """Rooms, members and history, in this process's memory (so: one worker)."""

    def __init__(self, realtime: Realtime, grace: float) -> None:
        self.realtime = realtime
        # How long a dropped member keeps its place: a little longer than the recovery
        # window, so a session recovered at the last moment still finds it.
        self.grace = grace
        # room -> {socket id: nickname}; the default rooms stay listed even when empty.
        self.members: dict[str, dict[str, str]] = {room: {} for room in DEFAULT_ROOMS}
        self.history: dict[str, deque[Line]] = {}
        self.online: dict[str, str] = {}  # connected sockets: id -> nickname
        self.away: dict[str, Away] = {}  # recoverable sessions by private id (socket.pid)
        self.closing = False

    def rooms(self) -> list[RoomInfo]:
        order = {name: i for i, name in enumerate(DEFAULT_ROOMS)}
        names = sorted(self.members, key=lambda n: (order.get(n, len(order)), n))
        return [
            RoomInfo(name=n, members=len(self.members[n]), nicknames=sorted(self.members[n].values())) for n in names
        ]

    def nicknames(self, room: str) -> list[str]:
        return sorted(self.members.get(room, {}).values())

    def remember(self, line: Line) -> None:
        self.history.setdefault(line.room, deque(maxlen=HISTORY_SIZE)).append(line)

    def system_line(self, room: str, text: str) -> Line:
        line = Line(id=uuid.uuid4().hex, room=room, kind="system", text=text, ts=now_ms())
        self.remember(line)
        return line

    async def publish_rooms(self) -> None:
        # Every connected page keeps its room list (with counts) current from this broadcast.
        await self.realtime.emit("rooms", self.rooms())

    async def depart(self, sid: str, nickname: str, room: str | None) -> None:
        """`sid` is no longer in `room`: tell the room and update the lists."""
        if room is None:
            return
        room_members = self.members.get(room)
        if room_members is not None:
            room_members.pop(sid, None)
            if not room_members and room not in DEFAULT_ROOMS:
                del self.members[room]
                self.history.pop(room, None)
        # The leaver may have been mid-typing: clear its indicator for the others.
        await self.realtime.to(room).emit("typing", TypingState(room=room, id=sid, nickname=nickname, typing=False))
        if room in self.members:
            await self.realtime.to(room).emit("system", self.system_line(room, f"{nickname} left"))
        await self.publish_rooms()

    def hold(self, pid: str, sid: str, nickname: str, room: str | None) -> None:
        """Keep a dropped member in its room for the grace period, then let it go."""

        async def expire() -> None:
            await asyncio.sleep(self.grace)
            if self.away.get(pid) is away:
                del self.away[pid]
                await self.depart(sid, nickname, room)

        away = Away(sid, nickname, room, asyncio.get_running_loop().create_task(expire()))
        self.away[pid] = away

    def resume(self, pid: str) -> bool:
        """The session came back: keep its place. False when the grace period had run out."""
        away = self.away.pop(pid, None)
        if away is None:
            return False
        away.timer.cancel()
        return True

    async def forget(self, pid: str) -> None:
        """The client came back but its session was not recovered: its old place goes now."""
        away = self.away.pop(pid, None)
        if away is not None:
            away.timer.cancel()
            await self.depart(away.sid, away.nickname, away.room)

    async def close(self) -> None:
        self.closing = True
        timers = [away.timer for away in self.away.values()]
        self.away.clear()
        for timer in timers:
            timer.cancel()
        for timer in timers:
            with contextlib.suppress(asyncio.CancelledError):
                await timer


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
        now = time.monotonic()
        # Kept in socket.data (plain numbers), so a recovered session keeps its budget.
        recent = [t for t in socket.data.get("sent", []) if now - t < BURST_SECONDS]
        if len(recent) >= BURST_MESSAGES:
            socket.data["sent"] = recent
            raise ChatError("slow_down", f"at most {BURST_MESSAGES} messages per {BURST_SECONDS:g} seconds")
        socket.data["sent"] = [*recent, now]
    return await call_next(event, args)


@chat.on("connect")
async def on_connect(socket: Socket, state: State, user: Annotated[User, Depends(handshake_user)]) -> None:
    if socket.recovered:
        # Same id, rooms and socket.data as before the drop; the missed events are already sent.
        room = current_room(socket)
        resumed = socket.pid is not None and state.resume(socket.pid)
        if not resumed and room is not None:
            # The grace period ran out just before: take the place back.
            state.members.setdefault(room, {})[socket.id] = socket.data["nickname"]
            await state.publish_rooms()
    else:
        stale = socket.handshake.auth.get("pid")
        if isinstance(stale, str):
            await state.forget(stale)
        socket.data["nickname"] = user.nickname
        socket.data["room"] = None
    state.online[socket.id] = socket.data["nickname"]
    await socket.emit("welcome", Welcome(id=socket.id, nickname=socket.data["nickname"], rooms=state.rooms()))


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
        state.hold(socket.pid, socket.id, nickname, room)
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
        return Joined(room=room, members=state.nicknames(room), history=list(state.history.get(room, ())))
    await leave_current(socket, state, user)
    # History is taken before the announcement: the joiner shows its own "You joined" line.
    past = list(state.history.get(room, ()))
    await socket.join(room)
    socket.data["room"] = room
    state.members.setdefault(room, {})[socket.id] = user.nickname
    await socket.to(room).emit("system", state.system_line(room, f"{user.nickname} joined"))
    await state.publish_rooms()
    return Joined(room=room, members=state.nicknames(room), history=past)


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
    state.remember(line)
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
        state.members[room][socket.id] = nickname
        await socket.to(room).emit("system", state.system_line(room, f"{user.nickname} is now known as {nickname}"))
        await state.publish_rooms()
    return NicknameChanged(nickname=nickname)
