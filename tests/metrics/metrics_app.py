"""A server with metrics for the tests, served by uvicorn (one worker or several).

METRICS_EVENT_NAMES="1": event names as labels (METRICS_MAX_EVENT_NAMES bounds them).
Namespace "/": connect refuses auth {"no": true}; "join" joins a room; "echo" acks its
argument; "shout" broadcasts "shouted" to room "r"; "ask" emits "q" with an ack and returns the
answer; "bye" closes the client's connection; "pid" returns the worker's process id. Namespace "/chat": "echo".
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI

from fastapi_realtime import ConnectionRejected, Realtime, RealtimeRouter, Socket

rt = Realtime()
chat = RealtimeRouter(namespace="/chat")


@rt.on("connect")
async def connect(socket: Socket, auth: Any = None) -> None:
    if auth == {"no": True}:
        raise ConnectionRejected("go away")


@rt.on("join")
async def join(socket: Socket, room: str) -> bool:
    await socket.join(room)
    return True


@rt.on("echo")
async def echo(socket: Socket, value: Any) -> Any:
    return value


@rt.on("shout")
async def shout(socket: Socket, text: str) -> bool:
    await rt.to("r").emit("shouted", text)
    return True


@rt.on("ask")
async def ask(socket: Socket) -> Any:
    return await socket.emit_with_ack("q", 1, timeout=5)


@rt.on("bye")
async def bye(socket: Socket) -> None:
    await socket.disconnect(close=True)


@rt.on("pid")
async def pid(socket: Socket) -> int:
    return os.getpid()


@chat.on("echo")
async def chat_echo(socket: Socket, value: Any) -> Any:
    return value


rt.include_router(chat)

app = FastAPI()
app.include_router(rt.router)
app.include_router(
    rt.metrics_router(
        event_names=os.environ.get("METRICS_EVENT_NAMES") == "1",
        max_event_names=int(os.environ.get("METRICS_MAX_EVENT_NAMES", "100")),
    )
)
