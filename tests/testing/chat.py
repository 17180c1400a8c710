"""A small app for the test client's tests, built with the public API, and polling helpers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest
from fastapi import FastAPI

from fastapi_realtime import ConnectionRejected, Realtime, RealtimeRouter, Socket

Transport = Literal["websocket", "polling"]
TRANSPORTS = pytest.mark.parametrize("transport", ["websocket", "polling"])


@dataclass
class Chat:
    """A small app: rooms, echo, server-to-client acks, kicks; it records disconnect reasons."""

    rt: Realtime
    app: FastAPI
    reasons: list[str] = field(default_factory=list)


def make_chat(prefix: str = "", **options: Any) -> Chat:
    rt = Realtime(**options)
    router = RealtimeRouter()
    chat = Chat(rt, FastAPI())

    @router.on("connect")
    async def connect(socket: Socket, auth: dict[str, Any] | None) -> None:
        if auth and auth.get("token") == "bad":
            raise ConnectionRejected("not authorized", data={"reason": "bad token"})
        if not socket.recovered:
            await socket.join("lobby")
            await socket.emit("welcome", socket.id)

    @router.on("disconnect")
    async def disconnect(socket: Socket, reason: str) -> None:
        chat.reasons.append(reason)

    @router.on("echo")
    async def echo(socket: Socket, *args: Any) -> tuple[Any, ...]:
        return args

    @router.on("join")
    async def join(socket: Socket, room: str) -> None:
        await socket.join(room)

    @router.on("say")
    async def say(socket: Socket, room: str, text: str) -> None:
        await socket.to(room).emit("said", text)

    @router.on("ask")
    async def ask(socket: Socket, *args: Any) -> Any:
        return await socket.emit_with_ack("question", *args, timeout=2.0)

    @router.on("kick")
    async def kick(socket: Socket) -> None:
        await socket.disconnect()

    @router.on("slow")
    async def slow(socket: Socket, seconds: float) -> str:
        await asyncio.sleep(seconds)
        return "late"

    @router.on("binary")
    async def binary(socket: Socket) -> None:
        await socket.emit("blob", b"\x00\xff", {"nested": [b"abc"]})

    rt.include_router(router)
    chat.app.include_router(rt.router, prefix=prefix)
    return chat


async def eventually(predicate: Callable[[], bool], timeout: float = 2.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def eventually_sync(predicate: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)
