"""A small chat: ordinary FastAPI routes beside a Socket.IO server from fastapi-realtime.

Run with `make run` (uvicorn example_app.main:app on 127.0.0.1:8000) and open two browser tabs.

Socket.IO events (client -> server; each answers through the ack):
  join {"room"}          -> {"ok", "room", "members": [nicknames], "history": [messages]}
  leave {}               -> {"ok"}
  message {"room","text"}-> {"ok", "id", "ts"}   (the client marks its message delivered on this ack)
  typing {"typing": bool}   (no ack; relayed to the rest of the room)
  set-nickname {"nickname"} -> {"ok", "nickname"}
Server -> client: welcome, rooms, message, system, typing.

State lives in this process's memory, so run a single worker.
"""

# No `from __future__ import annotations`: handler annotations stay real objects, so the
# library can find the Socket parameter by annotation whatever way it inspects signatures.

import re
import time
import uuid
from collections import deque
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import FileResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles

from fastapi_realtime import ConnectionRejected, Realtime, RealtimeRouter, Socket

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
# The browser bundle comes from the npm package the interop tests already install (`make node`).
CLIENT_DIST = HERE.parent / "tests" / "interop" / "node_modules" / "socket.io-client" / "dist"
CLIENT_FILES = {"socket.io.min.js": "application/javascript", "socket.io.min.js.map": "application/json"}

DEFAULT_ROOMS = ("general", "random", "help")
ROOM_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,23}$")
MAX_NICKNAME = 24
MAX_TEXT = 1000
HISTORY_SIZE = 50

realtime = Realtime(path="/socket.io")
chat = RealtimeRouter()

# room -> {socket id: nickname}; default rooms stay listed even when empty.
members: dict[str, dict[str, str]] = {room: {} for room in DEFAULT_ROOMS}
history: dict[str, deque[dict[str, Any]]] = {}
online: dict[str, str] = {}


def now_ms() -> int:
    return int(time.time() * 1000)


def clean_nickname(value: object) -> str | None:
    """Collapse whitespace; None when empty, too long or not a string."""
    if not isinstance(value, str):
        return None
    name = " ".join(value.split())
    return name if 1 <= len(name) <= MAX_NICKNAME else None


def clean_room(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    room = value.strip().lower().lstrip("#")
    return room if ROOM_RE.match(room) else None


def payload(data: object) -> dict[str, Any]:
    """Event payloads are JSON objects; anything else is treated as empty."""
    return data if isinstance(data, dict) else {}


def rooms_snapshot() -> list[dict[str, Any]]:
    order = {name: i for i, name in enumerate(DEFAULT_ROOMS)}
    names = sorted(members, key=lambda n: (order.get(n, len(order)), n))
    return [{"name": n, "members": len(members[n]), "nicknames": sorted(members[n].values())} for n in names]


def remember(message: dict[str, Any]) -> None:
    history.setdefault(message["room"], deque(maxlen=HISTORY_SIZE)).append(message)


async def announce(socket: Socket, room: str, text: str) -> None:
    """A system line for everyone else in the room (the actor renders its own wording)."""
    message = {"id": uuid.uuid4().hex, "room": room, "kind": "system", "text": text, "ts": now_ms()}
    remember(message)
    await socket.to(room).emit("system", message)


async def publish_rooms() -> None:
    # Every connected client keeps its room list (with counts) current from this broadcast.
    await realtime.emit("rooms", rooms_snapshot())


async def leave_current(socket: Socket, *, connected: bool) -> None:
    room = socket.data.get("room")
    if room is None:
        return
    socket.data["room"] = None
    nickname = socket.data["nickname"]
    if connected:
        await socket.leave(room)
    room_members = members.get(room)
    if room_members is not None:
        room_members.pop(socket.id, None)
        if not room_members and room not in DEFAULT_ROOMS:
            del members[room]
            history.pop(room, None)
    # The leaver may have been mid-typing: clear its indicator for the others.
    await realtime.to(room).emit("typing", {"room": room, "id": socket.id, "nickname": nickname, "typing": False})
    if room in members:
        message = {"id": uuid.uuid4().hex, "room": room, "kind": "system", "text": f"{nickname} left", "ts": now_ms()}
        remember(message)
        await realtime.to(room).emit("system", message)
    await publish_rooms()


@chat.on("connect")
async def on_connect(socket: Socket, auth: dict[str, Any] | None) -> None:
    raw = auth.get("nickname") if isinstance(auth, dict) else None
    nickname = clean_nickname(raw)
    if raw is not None and nickname is None:
        raise ConnectionRejected("invalid nickname", data={"max_length": MAX_NICKNAME})
    socket.data["nickname"] = nickname or f"guest-{socket.id[:4]}"
    socket.data["room"] = None
    online[socket.id] = socket.data["nickname"]
    await socket.emit("welcome", {"id": socket.id, "nickname": socket.data["nickname"], "rooms": rooms_snapshot()})


@chat.on("disconnect")
async def on_disconnect(socket: Socket, reason: str) -> None:
    online.pop(socket.id, None)
    await leave_current(socket, connected=False)


@chat.on("join")
async def on_join(socket: Socket, data: Any) -> dict[str, Any]:
    room = clean_room(payload(data).get("room"))
    if room is None:
        return {"ok": False, "error": "room names are 1-24 characters: a-z, 0-9, - and _"}
    if socket.data.get("room") == room:
        return {"ok": True, "room": room, "members": sorted(members[room].values()),
                "history": list(history.get(room, ()))}
    await leave_current(socket, connected=True)
    # History is taken before the announcement: the joiner shows its own "You joined" line.
    past = list(history.get(room, ()))
    await socket.join(room)
    socket.data["room"] = room
    members.setdefault(room, {})[socket.id] = socket.data["nickname"]
    await announce(socket, room, f"{socket.data['nickname']} joined")
    await publish_rooms()
    return {"ok": True, "room": room, "members": sorted(members[room].values()), "history": past}


@chat.on("leave")
async def on_leave(socket: Socket, data: Any = None) -> dict[str, Any]:
    await leave_current(socket, connected=True)
    return {"ok": True}


@chat.on("message")
async def on_message(socket: Socket, data: Any) -> dict[str, Any]:
    body = payload(data)
    room = socket.data.get("room")
    if room is None or body.get("room") != room:
        return {"ok": False, "error": "join the room before writing to it"}
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        return {"ok": False, "error": "empty message"}
    if len(text) > MAX_TEXT:
        return {"ok": False, "error": f"messages are at most {MAX_TEXT} characters"}
    message = {"id": uuid.uuid4().hex, "room": room, "kind": "chat", "from": socket.data["nickname"],
               "sid": socket.id, "text": text.strip(), "ts": now_ms()}
    remember(message)
    # The sender already shows its copy; the ack below is what marks it delivered.
    await socket.to(room).emit("message", message)
    return {"ok": True, "id": message["id"], "ts": message["ts"]}


@chat.on("typing")
async def on_typing(socket: Socket, data: Any) -> None:
    room = socket.data.get("room")
    if room is None:
        return
    state = {"room": room, "id": socket.id, "nickname": socket.data["nickname"],
             "typing": bool(payload(data).get("typing"))}
    await socket.to(room).emit("typing", state)


@chat.on("set-nickname")
async def on_set_nickname(socket: Socket, data: Any) -> dict[str, Any]:
    nickname = clean_nickname(payload(data).get("nickname"))
    if nickname is None:
        return {"ok": False, "error": f"nicknames are 1-{MAX_NICKNAME} characters"}
    old = socket.data["nickname"]
    if nickname == old:
        return {"ok": True, "nickname": nickname}
    socket.data["nickname"] = nickname
    online[socket.id] = nickname
    room = socket.data.get("room")
    if room is not None:
        members[room][socket.id] = nickname
        await announce(socket, room, f"{old} is now known as {nickname}")
        await publish_rooms()
    return {"ok": True, "nickname": nickname}


realtime.include_router(chat)

app = FastAPI(title="fastapi-realtime chat example")
app.include_router(realtime.router)


@app.get("/api/health")
async def health() -> dict[str, Any]:
    return {"status": "ok", "online": len(online)}


@app.get("/api/rooms")
async def list_rooms() -> list[dict[str, Any]]:
    return rooms_snapshot()


@app.get("/", include_in_schema=False)
async def index() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html")


def _client_file(name: str) -> Response:
    path = CLIENT_DIST / name
    if not path.is_file():
        return PlainTextResponse(
            f"socket.io-client is not installed ({path} is missing): run `make node`", status_code=503
        )
    return FileResponse(path, media_type=CLIENT_FILES[name])


# Registered before the /static mount, so these two names are served from node_modules.
@app.get("/static/socket.io.min.js", include_in_schema=False)
async def socketio_client() -> Response:
    return _client_file("socket.io.min.js")


@app.get("/static/socket.io.min.js.map", include_in_schema=False)
async def socketio_client_map() -> Response:
    return _client_file("socket.io.min.js.map")


app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
