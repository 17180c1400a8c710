"""An app for the hardening tests (issue 7, items 2-4), built with the public API only.

Served by uvicorn from tests/protocol/test_hardening.py. Socket.IO lives at /socket.io/; recovery
is on with `skip_middlewares=False`, so a reconnection runs the connect middleware.

* The middleware waits `auth.slow` seconds when asked, and refuses `auth.token == "bad"`.
* The connect handler records each call (GET /state), waits `auth.slow_connect` seconds when
  asked, joins room "all" and emits `welcome`; the disconnect handler records the reason.
* `message` comes back as `message-back`; `echo` acks its arguments.

Environment knobs: HARDENING_MAX_PENDING (max_pending_sessions, default 1000).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from fastapi import FastAPI

from fastapi_realtime import ConnectionRejected, Realtime, RealtimeRouter, RecoveryOptions, Socket

MAX_BUFFER = 1000

rt = Realtime(
    max_http_buffer_size=MAX_BUFFER,
    max_pending_sessions=int(os.environ.get("HARDENING_MAX_PENDING", "1000")),
    recovery=RecoveryOptions(skip_middlewares=False),
    ping_interval=5.0,
    ping_timeout=5.0,
)
router = RealtimeRouter(namespace="/")
CONNECT_CALLS: list[str] = []
DISCONNECTS: dict[str, str] = {}


@router.use
async def gate(socket: Socket) -> None:
    auth = socket.handshake.auth
    slow = auth.get("slow")
    if isinstance(slow, (int, float)):
        await asyncio.sleep(float(slow))
    if auth.get("token") == "bad":
        raise ConnectionRejected("bad token")
    if auth.get("join_early"):
        await socket.join("early")  # before the connect handler: must not outlive a refusal


@router.on("connect")
async def connect(socket: Socket, auth: Any) -> None:
    CONNECT_CALLS.append(socket.id)
    slow = auth.get("slow_connect") if isinstance(auth, dict) else None
    if isinstance(slow, (int, float)):
        await asyncio.sleep(float(slow))
    if not socket.recovered:
        await socket.join("all")
    await socket.emit("welcome", socket.id)


@router.on("disconnect")
async def disconnect(socket: Socket, reason: str) -> None:
    DISCONNECTS[socket.id] = reason


@router.on("message")
async def message(socket: Socket, *args: Any) -> None:
    await socket.emit("message-back", *args)


@router.on("echo")
async def echo(socket: Socket, *args: Any) -> tuple[Any, ...]:
    return args


rt.include_router(router)

app = FastAPI()
app.include_router(rt.router)


@app.get("/state")
async def state() -> dict[str, Any]:
    sockets = await rt.fetch_sockets()
    return {
        "connect_calls": CONNECT_CALLS,
        "sockets": sorted(s.id for s in sockets),
        "rooms": {s.id: sorted(s.rooms) for s in sockets},
        "adapter_sids": sorted(rt.of("/").adapter.sids),
        "disconnects": DISCONNECTS,
    }


@app.post("/broadcast/{event}")
async def broadcast(event: str) -> None:
    await rt.to("all").emit(event)
