"""An instrumented server for the admin tests, configured by environment variables.

ADMIN_AUTH: a bcrypt hash for user "admin" ("" for auth=False); ADMIN_MODE; ADMIN_READ_ONLY ("1");
SERVER_ID; REDIS_URL (a Redis adapter when set); CORS_ORIGIN (the static UI's origin); UI_DIR.
Clients of "/" join the rooms in auth.rooms; event "echo" acks its arguments; event "shout"
makes the server emit "heard" to the socket and broadcast "news" to everyone.
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI

from fastapi_realtime import Realtime, RealtimeRouter, Socket
from fastapi_realtime.admin import BasicAuth, instrument

adapter: Any = None
if os.environ.get("REDIS_URL"):
    from fastapi_realtime.adapters import RedisAdapter

    adapter = RedisAdapter.from_url(os.environ["REDIS_URL"])

origin = os.environ.get("CORS_ORIGIN")
rt = Realtime(adapter=adapter, cors_allowed_origins=[origin] if origin else None, cors_credentials=bool(origin))
chat = RealtimeRouter(namespace="/")


@chat.on("connect")
async def connect(socket: Socket, auth: Any = None) -> None:
    rooms = auth.get("rooms") if isinstance(auth, dict) else None
    if isinstance(rooms, list):
        await socket.join(*[r for r in rooms if isinstance(r, str)])
    socket.data["name"] = auth.get("name") if isinstance(auth, dict) else None


@chat.on("echo")
async def echo(socket: Socket, *args: Any) -> Any:
    return tuple(args)


@chat.on("shout")
async def shout(socket: Socket, text: Any = None) -> None:
    await socket.emit("heard", text)
    await rt.emit("news", text)


rt.include_router(chat)
rt.include_router(RealtimeRouter(namespace="/other"))

password_hash = os.environ.get("ADMIN_AUTH", "")
instrumentation = instrument(
    rt,
    auth=BasicAuth("admin", password_hash) if password_hash else False,
    mode="production" if os.environ.get("ADMIN_MODE") == "production" else "development",
    read_only=os.environ.get("ADMIN_READ_ONLY") == "1",
    server_id=os.environ.get("SERVER_ID") or None,
    stats_interval=float(os.environ.get("STATS_INTERVAL", "2")),
    ui_dir=os.environ.get("UI_DIR") or None,
)

app = FastAPI()
app.include_router(rt.router)
