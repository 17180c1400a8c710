"""fastapi-realtime server under test: Realtime() served as the ASGI app (or in FastAPI).

Configuration comes from environment variables (set by ``python -m bench``), so extra server
configurations (e.g. a connection-state-recovery variant) need no new app module:
  BENCH_JOIN_ROOM       room every client joins on connect (empty: join nothing)
  BENCH_YIELD_EVERY     the "blast" loop yields to the event loop every this many emits
  BENCH_REALTIME_KWARGS JSON object of extra keyword arguments for Realtime(...)
  BENCH_OURS_APP        "plain" (default): the Realtime itself; "fastapi": included into FastAPI
  BENCH_ADAPTER         "memory" (default) or "redis": RedisAdapter.from_url(BENCH_REDIS_URL)
  BENCH_REDIS_URL       the Redis of the "redis" adapter (e.g. redis://127.0.0.1:6379/0)
  BENCH_METRICS         "1": Prometheus metrics on (rt.enable_metrics(), a private registry)
"""

# No `from __future__ import annotations` here: the handlers' `Socket` annotation must be a real
# object (it is imported inside create_app), since the core finds the socket parameter by it.
import asyncio
import json
import os
from typing import Any

from fastapi import FastAPI


def create_app() -> Any:
    # Imported here: the other servers' runs import this module's siblings, not the package.
    from fastapi_realtime import Realtime, Socket

    join_room = os.environ.get("BENCH_JOIN_ROOM", "")
    yield_every = max(1, int(os.environ.get("BENCH_YIELD_EVERY", "8")))
    kwargs: dict[str, Any] = json.loads(os.environ.get("BENCH_REALTIME_KWARGS") or "{}")
    adapter = os.environ.get("BENCH_ADAPTER") or "memory"
    if adapter == "redis":
        from fastapi_realtime.adapters import RedisAdapter

        kwargs["adapter"] = RedisAdapter.from_url(os.environ["BENCH_REDIS_URL"])
    elif adapter != "memory":
        raise ValueError(f"BENCH_ADAPTER={adapter!r}: memory or redis")
    rt = Realtime(**kwargs)
    if os.environ.get("BENCH_METRICS") == "1":
        from prometheus_client import CollectorRegistry

        rt.enable_metrics(registry=CollectorRegistry())

    @rt.on("connect")
    async def on_connect(socket: Socket, auth: Any) -> None:
        if join_room:
            await socket.join(join_room)

    @rt.on("echo")
    async def echo(socket: Socket, data: Any) -> Any:
        return data

    @rt.on("blast")
    async def blast(socket: Socket, count: int) -> int:
        # Broadcast `count` messages to the room as fast as the server can take them.
        op = rt.to(join_room) if join_room else rt
        for i in range(int(count)):
            await op.emit("msg", {"n": i, "s": "hello world"})
            if i % yield_every == yield_every - 1:
                await asyncio.sleep(0)
        return int(count)

    if os.environ.get("BENCH_OURS_APP", "plain") == "fastapi":
        # Included into a FastAPI app: adds FastAPI's own per-request cost (its middleware
        # stack and exit stack), which the plain ASGI servers compared here do not pay.
        app = FastAPI()
        app.include_router(rt.router)
        return app
    return rt  # a Realtime is an ASGI app, as python-socketio's ASGIApp is
