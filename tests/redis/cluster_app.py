"""One Python node of a Redis cluster, served by uvicorn in the cluster tests.

It behaves like tests/interop/cluster_node.mjs (the Node node), with the same control API, so a
test drives either kind of node alike:

* clients join the rooms in `auth.rooms`; `socket.data` is `auth.data` or {"node": NODE_NAME};
* client event `echo` acks its arguments; `broadcast` {rooms, except, event, args} broadcasts;
* server-side event `ping-node` answers {"from": NODE_NAME, "args": [...]}; every server-side
  event is recorded;
* POST /control/<op> with a JSON body: emit, emitWithAck, fetchSockets, socketsJoin,
  socketsLeave, disconnectSockets, serverSideEmit, serverCount, received, localSockets, events.
  Binary values travel as {"$bin": hex}.

Environment: REDIS_URL, ADAPTER ("redis", "sharded" or "streams"), NODE_NAME, ADAPTER_OPTIONS
(JSON keyword options of the adapter), NAMESPACES (JSON list of extra namespaces).
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from fastapi import FastAPI, Request

from fastapi_realtime import AckTimeoutError, Realtime, RealtimeRouter, RecoveryOptions, Socket
from fastapi_realtime.adapters import RedisAdapter
from fastapi_realtime.exceptions import ClusterError
from tests.interop.node import unbin
from tests.redis.node_cluster import tobin

REDIS_URL = os.environ["REDIS_URL"]
ADAPTER = os.environ.get("ADAPTER", "redis")
NODE_NAME = os.environ.get("NODE_NAME", "python")
OPTIONS: dict[str, Any] = json.loads(os.environ.get("ADAPTER_OPTIONS", "{}"))
NAMESPACES: list[str] = ["/", *json.loads(os.environ.get("NAMESPACES", "[]"))]


def make_adapter() -> Any:
    if ADAPTER == "redis":
        return RedisAdapter.from_url(REDIS_URL, **OPTIONS)
    if ADAPTER == "sharded":
        from fastapi_realtime.adapters import ShardedRedisAdapter

        # A Redis Cluster comes as {"cluster": [url, ...]} among the options.
        cluster = OPTIONS.pop("cluster", None)
        if cluster:
            return ShardedRedisAdapter.from_cluster(cluster, **OPTIONS)
        return ShardedRedisAdapter.from_url(REDIS_URL, **OPTIONS)
    if ADAPTER == "streams":
        from fastapi_realtime.adapters import RedisStreamsAdapter

        return RedisStreamsAdapter.from_url(REDIS_URL, **OPTIONS)
    raise SystemExit(f"unknown ADAPTER {ADAPTER!r}")


rt = Realtime(
    adapter=make_adapter(),
    cors_allowed_origins="*",
    recovery=RecoveryOptions(max_disconnection_duration=120) if ADAPTER == "streams" else None,
)

RECEIVED: list[dict[str, Any]] = []  # server-side events
TICKS: dict[str, int] = {}  # ticker tag -> ticks emitted
_TICKERS: dict[str, asyncio.Task[None]] = {}
_STOPPING: set[str] = set()
EVENTS: list[dict[str, Any]] = []  # client events seen by this node


for name in NAMESPACES:
    router = RealtimeRouter(namespace=name)

    @router.on("connect")
    async def connect(socket: Socket, auth: Any = None) -> None:
        auth = auth if isinstance(auth, dict) else {}
        rooms = auth.get("rooms") or []
        if rooms:
            await socket.join(*rooms)
        socket.data = auth.get("data") or {"node": NODE_NAME}

    @router.on("echo")
    async def echo(socket: Socket, *args: Any) -> Any:
        EVENTS.append({"nsp": socket.namespace, "id": socket.id, "event": "echo", "args": tobin(list(args))})
        return tuple(args)

    @router.on("broadcast")
    async def broadcast(socket: Socket, spec: dict[str, Any]) -> bool:
        EVENTS.append({"nsp": socket.namespace, "id": socket.id, "event": "broadcast", "args": [spec]})
        op = rt.of(socket.namespace).to(*(spec.get("rooms") or [])).except_(*(spec.get("except") or []))
        await op.emit(spec["event"], *unbin(spec.get("args") or []))
        return True

    @router.on_server_side("ping-node")
    async def ping_node(*args: Any) -> Any:
        RECEIVED.append({"event": "ping-node", "args": tobin(list(args))})
        return {"from": NODE_NAME, "args": tobin(list(args))}

    @router.on_server_side("note")
    async def note(*args: Any) -> None:
        RECEIVED.append({"event": "note", "args": tobin(list(args))})

    rt.include_router(router)

app = FastAPI()
app.include_router(rt.router)


def _operator(body: dict[str, Any]) -> Any:
    op = rt.of(body.get("nsp", "/")).to(*(body.get("rooms") or [])).except_(*(body.get("except") or []))
    if body.get("volatile"):
        op = op.volatile
    if body.get("local"):
        op = op.local
    return op


@app.post("/control/{op}")
async def control(op: str, request: Request) -> Any:
    body: dict[str, Any] = await request.json() if await request.body() else {}
    nsp = rt.of(body.get("nsp", "/"))
    if op == "emit":
        await _operator(body).emit(body["event"], *unbin(body.get("args") or []))
        return {"ok": True}
    if op == "emitWithAck":
        try:
            responses = await _operator(body).emit_with_ack(
                body["event"], *unbin(body.get("args") or []), timeout=body.get("timeout", 2000) / 1000
            )
            return {"responses": tobin(responses)}
        except AckTimeoutError as exc:
            return {"error": str(exc), "responses": tobin(exc.responses)}
    if op == "fetchSockets":
        try:
            sockets = await _operator(body).fetch_sockets()
        except ClusterError as exc:
            return {"error": str(exc)}
        return [
            {"id": s.id, "rooms": sorted(s.rooms), "data": tobin(s.data), "handshake": s.handshake} for s in sockets
        ]
    if op == "remote":
        # fetch_sockets, then act on each socket found through the RemoteSocket it returned.
        for remote in await _operator(body).fetch_sockets():
            action = body["action"]
            if action == "emit":
                await remote.emit(body["event"], *unbin(body.get("args") or []))
            elif action == "join":
                await remote.join(*body["target"])
            elif action == "leave":
                await remote.leave(*body["target"])
            elif action == "disconnect":
                await remote.disconnect(bool(body.get("close")))
        return {"ok": True}
    if op in ("socketsJoin", "socketsLeave"):
        target = body.get("target") or []
        if op == "socketsJoin":
            await _operator(body).sockets_join(*target)
        else:
            await _operator(body).sockets_leave(*target)
        return {"ok": True}
    if op == "disconnectSockets":
        await _operator(body).disconnect_sockets(bool(body.get("close")))
        return {"ok": True}
    if op == "serverSideEmit":
        args = unbin(body.get("args") or [])
        if not body.get("ack"):
            await nsp.server_side_emit(body["event"], *args)
            return {"ok": True}
        try:
            return {"responses": tobin(await nsp.server_side_emit_with_ack(
                body["event"], *args, timeout=body.get("timeout", 2000) / 1000))}
        except AckTimeoutError as exc:
            return {"error": str(exc), "responses": tobin(exc.responses)}
    if op == "ticker":
        # Emits `tick` (NODE_NAME, tag, n) to a room every `interval` s, independently of clients.
        tag = body["tag"]
        TICKS[tag] = 0

        async def tick() -> None:
            deadline = asyncio.get_running_loop().time() + body.get("max_seconds", 30)
            while asyncio.get_running_loop().time() < deadline and tag not in _STOPPING:
                await nsp.to(body["room"]).emit("tick", NODE_NAME, tag, TICKS[tag])
                TICKS[tag] += 1
                await asyncio.sleep(body.get("interval", 0.01))

        _TICKERS[tag] = asyncio.get_running_loop().create_task(tick())
        return {"ok": True}
    if op == "stopTicker":
        # Stopped between two emits (not cancelled inside one), so the count is exact.
        _STOPPING.add(body["tag"])
        task = _TICKERS.pop(body["tag"], None)
        if task is not None:
            await asyncio.wait_for(task, 10)
        return {"ticks": TICKS.get(body["tag"], 0)}
    if op == "serverCount":
        return {"count": await nsp.server_count()}
    if op == "received":
        return RECEIVED
    if op == "localSockets":
        return [{"id": sid, "rooms": sorted(nsp.adapter.socket_rooms(sid))} for sid in nsp.sockets]
    if op == "events":
        return EVENTS
    return {"error": f"unknown op {op}"}
