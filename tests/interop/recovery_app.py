"""FastAPI app with connection state recovery on, driven by test_recovery.py.

Built only with the public API of fastapi_realtime. Clients say who they are with
`auth = {"name": <str>, "room": <str>?}`; everything the server observes is recorded per name
and read back through GET /test/state/{name}.

* A connect middleware counts its calls per name and rejects names armed with
  POST /test/reject/{name}.
* The connect handler, on a fresh connection only, joins `auth.room` and a random room, and sets
  `socket.data` (with a random nonce): after a recovery these can only have come back from the
  recovery store. It always emits `recovered` with what the socket looks like.
* Tickers (POST /test/ticker) emit numbered events every `interval` seconds, independently of
  any connection, to one socket's own room (`own`), to a room (`room`) and to everyone (`all`),
  until stopped (POST /test/ticker/{tag}/stop) or `max_seconds` ran out.

Environment knobs (read once at import):
  RECOVERY_MAX_DISCONNECTION   seconds a disconnected session is kept (default 120)
  RECOVERY_SKIP_MIDDLEWARES    "1" (default) / "0"
  RECOVERY_PING_INTERVAL / RECOVERY_PING_TIMEOUT   seconds (defaults 25 / 20)
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from fastapi_realtime import AckTimeoutError, ConnectionRejected, Realtime, RealtimeRouter, RecoveryOptions, Socket

MAX_DISCONNECTION = float(os.environ.get("RECOVERY_MAX_DISCONNECTION", "120"))
SKIP_MIDDLEWARES = os.environ.get("RECOVERY_SKIP_MIDDLEWARES", "1") == "1"
PING_INTERVAL = float(os.environ.get("RECOVERY_PING_INTERVAL", "25"))
PING_TIMEOUT = float(os.environ.get("RECOVERY_PING_TIMEOUT", "20"))

rt = Realtime(
    ping_interval=PING_INTERVAL,
    ping_timeout=PING_TIMEOUT,
    cors_allowed_origins="*",
    recovery=RecoveryOptions(max_disconnection_duration=MAX_DISCONNECTION, skip_middlewares=SKIP_MIDDLEWARES),
)
router = RealtimeRouter(namespace="/")

# Everything below is keyed by the client's auth name.
MIDDLEWARE_CALLS: dict[str, list[bool]] = {}  # socket.recovered as each call saw it
REJECT: set[str] = set()
CONNECTS: dict[str, list[dict[str, Any]]] = {}
DISCONNECTS: dict[str, list[dict[str, Any]]] = {}
# tag -> ticks emitted so far (per stream), and the running ticker tasks
TICKS: dict[str, int] = {}
_TICKERS: dict[str, asyncio.Task[None]] = {}
_TASKS: set[asyncio.Task[Any]] = set()  # strong references to fire-and-forget tasks
_CONN_COUNTER = 0


def _name(socket: Socket) -> str:
    auth = socket.handshake.auth or {}
    name = auth.get("name")
    return name if isinstance(name, str) else "anon"


def _spawn(coro: Any) -> None:
    task = asyncio.get_running_loop().create_task(coro)
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)


def _describe(socket: Socket) -> dict[str, Any]:
    return {
        "id": socket.id,
        "recovered": socket.recovered,
        "rooms": sorted(socket.rooms),
        "data": socket.data,
        "transport": socket.transport,
    }


async def counting_middleware(socket: Socket) -> None:
    name = _name(socket)
    MIDDLEWARE_CALLS.setdefault(name, []).append(socket.recovered)
    if name in REJECT:
        raise ConnectionRejected("rejected by middleware", data={"name": name})


async def on_connect(socket: Socket, auth: dict[str, Any] | None) -> None:
    global _CONN_COUNTER
    _CONN_COUNTER += 1
    auth = auth or {}
    name = _name(socket)
    if not socket.recovered:
        nonce = secrets.token_hex(6)
        if isinstance(auth.get("room"), str):
            await socket.join(auth["room"])
        await socket.join(f"extra-{nonce}")
        socket.data = {"name": name, "nonce": nonce, "firstConn": _CONN_COUNTER}
    state = _describe(socket)
    CONNECTS.setdefault(name, []).append({**state, "conn": _CONN_COUNTER, "at": time.time()})
    # `conn` numbers this connection: the client checks they arrive increasing, each once
    await socket.emit("recovered", {**state, "conn": _CONN_COUNTER})


async def on_disconnect(socket: Socket, reason: str) -> None:
    DISCONNECTS.setdefault(_name(socket), []).append({"id": socket.id, "reason": reason, "at": time.time()})


async def echo(socket: Socket, data: Any) -> Any:
    return data


async def whoami(socket: Socket) -> dict[str, Any]:
    return _describe(socket)


async def server_disconnect_me(socket: Socket) -> None:
    await socket.disconnect()


async def _ask(coro: Any) -> None:
    try:
        await coro
    except AckTimeoutError:
        pass


async def emit_kinds(socket: Socket, tag: str) -> str:
    """One event of each kind to the caller; only `plain`, `bplain` and `bin` are stored
    (they get an offset), the acked and volatile ones are not."""
    await socket.emit("plain", tag)
    _spawn(_ask(socket.emit_with_ack("asked", tag, timeout=2.0)))
    await rt.to(socket.id).volatile.emit("vol", tag)
    _spawn(_ask(rt.to(socket.id).timeout(2.0).emit_with_ack("bcast-asked", tag)))
    await rt.to(socket.id).emit("bplain", tag)
    await socket.emit("bin", tag, b"\x01\x02")
    return "ok"


router.use(counting_middleware)
router.on("connect")(on_connect)
router.on("disconnect")(on_disconnect)
router.on("echo")(echo)
router.on("whoami")(whoami)
router.on("server-disconnect-me")(server_disconnect_me)
router.on("emit-kinds")(emit_kinds)
rt.include_router(router)


async def _tick(tag: str, sid: str | None, room: str | None, interval: float, max_seconds: float) -> None:
    deadline = time.monotonic() + max_seconds
    n = 0
    while time.monotonic() < deadline:
        if sid:
            await rt.to(sid).emit("own", tag, n)
        if room:
            await rt.to(room).emit("room", tag, n)
        await rt.emit("all", tag, n)
        n += 1
        TICKS[tag] = n
        await asyncio.sleep(interval)


app = FastAPI()
app.include_router(rt.router)


class TickerSpec(BaseModel):
    tag: str
    sid: str | None = None
    room: str | None = None
    interval: float = 0.005
    max_seconds: float = 20.0


class EmitSpec(BaseModel):
    event: str
    args: list[Any] = []
    to: list[str] = []
    volatile: bool = False
    ack_timeout: float | None = None  # set: a broadcast with ack (not awaited here)


@app.post("/test/ticker")
async def start_ticker(spec: TickerSpec) -> dict[str, str]:
    TICKS[spec.tag] = 0
    task = asyncio.get_running_loop().create_task(
        _tick(spec.tag, spec.sid, spec.room, spec.interval, min(spec.max_seconds, 30.0))
    )
    _TICKERS[spec.tag] = task
    return {"started": spec.tag}


@app.post("/test/ticker/{tag}/stop")
async def stop_ticker(tag: str) -> dict[str, int]:
    task = _TICKERS.pop(tag, None)
    if task is not None:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
    return {"ticks": TICKS.get(tag, 0)}


@app.post("/test/emit")
async def emit(spec: EmitSpec) -> dict[str, bool]:
    op: Any = rt.to(*spec.to) if spec.to else rt
    if spec.volatile:
        op = op.volatile
    if spec.ack_timeout is not None:
        _spawn(_ask(op.timeout(spec.ack_timeout).emit_with_ack(spec.event, *spec.args)))
    else:
        await op.emit(spec.event, *spec.args)
    return {"ok": True}


@app.post("/test/reject/{name}")
async def arm_reject(name: str, on: bool = True) -> dict[str, bool]:
    if on:
        REJECT.add(name)
    else:
        REJECT.discard(name)
    return {"on": on}


@app.get("/test/state/{name}")
async def state(name: str) -> dict[str, Any]:
    return {
        "middleware": MIDDLEWARE_CALLS.get(name, []),
        "connects": CONNECTS.get(name, []),
        "disconnects": DISCONNECTS.get(name, []),
    }
