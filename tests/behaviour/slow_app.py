"""A server with a small outgoing queue, for the slow-client and dropped-poll tests."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI

from fastapi_realtime import Realtime, Socket

realtime = Realtime(max_queue=64, ping_interval=5.0, ping_timeout=5.0)
reasons: dict[str, str] = {}


@realtime.on("connect")
async def connect(socket: Socket, auth: Any) -> None:
    await socket.join("all")


@realtime.on("disconnect")
async def disconnect(socket: Socket, reason: str) -> None:
    reasons[socket.id] = reason


@realtime.on("flood")
async def flood(socket: Socket, count: int, size: int) -> int:
    # Everyone in "all" gets `count` large events; the sender's ack says how many went out.
    blob = "x" * size
    for i in range(count):
        await realtime.to("all").emit("blob", i, blob)
        # Paced so a client that reads keeps up; one that never reads still overflows.
        await asyncio.sleep(0.002)
    return count


@realtime.on("poke")
async def poke(socket: Socket, sid: str) -> None:
    await realtime.to(sid).emit("poke")


@realtime.on("reason")
async def reason(socket: Socket, sid: str) -> str | None:
    return reasons.get(sid)


app = FastAPI()
app.include_router(realtime.router)
