"""python-socketio reference server: AsyncServer(async_mode="asgi") wrapped in ASGIApp.

Configuration comes from environment variables (set by ``python -m bench``):
  BENCH_JOIN_ROOM  room every client joins on connect (empty: join nothing)
  BENCH_YIELD_EVERY  the "blast" loop yields to the event loop every this many emits
  BENCH_ADAPTER    "memory" (default) or "redis": client_manager=AsyncRedisManager(BENCH_REDIS_URL)
  BENCH_REDIS_URL  the Redis of the "redis" client manager (e.g. redis://127.0.0.1:6379/0)
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import socketio  # type: ignore[import-untyped]


def create_app() -> Any:
    join_room = os.environ.get("BENCH_JOIN_ROOM", "")
    yield_every = max(1, int(os.environ.get("BENCH_YIELD_EVERY", "8")))
    adapter = os.environ.get("BENCH_ADAPTER") or "memory"
    kwargs: dict[str, Any] = {}
    if adapter == "redis":
        kwargs["client_manager"] = socketio.AsyncRedisManager(os.environ["BENCH_REDIS_URL"])
    elif adapter != "memory":
        raise ValueError(f"BENCH_ADAPTER={adapter!r}: memory or redis")
    sio = socketio.AsyncServer(async_mode="asgi", **kwargs)

    @sio.on("connect")  # type: ignore[untyped-decorator]
    async def on_connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        if join_room:
            await sio.enter_room(sid, join_room)

    @sio.on("echo")  # type: ignore[untyped-decorator]
    async def echo(sid: str, data: Any) -> Any:
        return data

    @sio.on("blast")  # type: ignore[untyped-decorator]
    async def blast(sid: str, count: int) -> int:
        # Broadcast `count` messages to the room as fast as the server can take them.
        for i in range(int(count)):
            await sio.emit("msg", {"n": i, "s": "hello world"}, to=join_room or None)
            if i % yield_every == yield_every - 1:
                await asyncio.sleep(0)
        return int(count)

    return socketio.ASGIApp(sio)
