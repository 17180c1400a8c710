"""FastAPI app driven by the interop tests (official Node and Python Socket.IO clients).

Built only with the public API of fastapi_realtime. The same handlers are registered on
"/", "/custom" and the dynamic namespaces: /dyn-<n> (a pattern), /fn-<anything> (a plain
callable) and /vip-<anything> (an async callable that admits only clients whose auth has
"vip": true). Every handler is a remote-control "trigger" so that the clients can make the
server do something observable; events with no handler of their own reach the catch-all.

Environment knobs (read once at import):
  INTEROP_PING_INTERVAL / INTEROP_PING_TIMEOUT  seconds (defaults 25 / 20)
  INTEROP_CONNECT_TIMEOUT  seconds (default 45)
  INTEROP_REASONS_FILE  also append every disconnect reason to this file (JSON lines), so that
                        reasons recorded by a process that has been stopped can still be read.
"""

import asyncio
import json
import os
import re
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI

from fastapi_realtime import (
    AckTimeoutError,
    ConnectionRejected,
    Realtime,
    RealtimeRouter,
    Socket,
)

PING_INTERVAL = float(os.environ.get("INTEROP_PING_INTERVAL", "25"))
PING_TIMEOUT = float(os.environ.get("INTEROP_PING_TIMEOUT", "20"))
CONNECT_TIMEOUT = float(os.environ.get("INTEROP_CONNECT_TIMEOUT", "45"))
REASONS_FILE = os.environ.get("INTEROP_REASONS_FILE")

rt = Realtime(
    ping_interval=PING_INTERVAL,
    ping_timeout=PING_TIMEOUT,
    connect_timeout=CONNECT_TIMEOUT,
    cors_allowed_origins="*",
)

# socket id -> disconnect reason, for every namespace; read through GET /test/reasons.
DISCONNECT_REASONS: dict[str, str] = {}
# socket id -> the numbers received through "numbered", in arrival order.
NUMBERED: dict[str, list[int]] = {}
# socket id -> what the catch-all received ([event, *args]), in arrival order.
CAUGHT: dict[str, list[list[Any]]] = {}
# strong references to the stream tasks (the event loop only keeps weak ones).
_TASKS: set["asyncio.Task[None]"] = set()


def _ns(socket: Socket) -> Any:
    """Broadcast operations of the socket's own namespace."""
    return rt.of(socket.namespace)


def _ack_value(value: Any) -> Any:
    """An emit_with_ack result as JSON-friendly data (several ack args arrive as a tuple)."""
    return list(value) if isinstance(value, tuple) else value


async def _stream(socket: Socket, start: int, count: int, interval: float) -> None:
    # The transport name rides along so the tests can see the stream cross an upgrade.
    for i in range(start, count):
        if not socket.connected:
            return
        await socket.emit("n", i, socket.transport)
        await asyncio.sleep(interval)
    await socket.emit("n-done", count)


def _start_stream(socket: Socket, spec: dict[str, Any], start: int = 0) -> None:
    task = asyncio.get_running_loop().create_task(
        _stream(socket, start, int(spec.get("count", 100)), float(spec.get("interval", 0.005)))
    )
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)


async def reject_bad_token(socket: Socket) -> None:
    auth = socket.handshake.auth or {}
    if auth.get("token") == "bad":
        raise ConnectionRejected("not authorized", data={"reason": "bad token"})


async def remember_in_data(socket: Socket) -> None:
    """A connect middleware that fills socket.data (the connect handler adds to it too)."""
    auth = socket.handshake.auth or {}
    socket.data["from_middleware"] = {"namespace": socket.namespace, "nick": auth.get("nick")}


async def on_connect(socket: Socket, auth: dict[str, Any] | None) -> None:
    auth = auth or {}
    socket.data["from_connect"] = True  # ... and from the connect handler
    if isinstance(auth.get("room"), str):
        await socket.join(auth["room"])
    await socket.emit("welcome", {"id": socket.id, "namespace": socket.namespace,
                                  "transport": socket.transport})
    if isinstance(auth.get("stream"), dict):
        # Number 0 goes from the connect handler itself, which runs before the client can have
        # completed an upgrade (it sends CONNECT before probing); the rest follow from a task.
        await socket.emit("n", 0, socket.transport)
        _start_stream(socket, auth["stream"], start=1)


async def on_disconnect(socket: Socket, reason: str) -> None:
    DISCONNECT_REASONS[socket.id] = reason
    if REASONS_FILE:
        with open(REASONS_FILE, "a", encoding="utf-8") as f:
            f.write(json.dumps({"id": socket.id, "namespace": socket.namespace, "reason": reason}) + "\n")


async def echo(socket: Socket, data: Any) -> Any:
    return data


async def echo_pair(socket: Socket, a: Any, b: Any) -> tuple[Any, Any]:
    return a, b


async def echo_nothing(socket: Socket, data: Any) -> None:
    return None


async def whoami(socket: Socket) -> dict[str, Any]:
    return {
        "id": socket.id,
        "namespace": socket.namespace,
        "rooms": sorted(socket.rooms),
        "transport": socket.transport,
        "auth": socket.handshake.auth,
        "query": socket.handshake.query,
    }


async def ask(socket: Socket, spec: dict[str, Any]) -> dict[str, Any]:
    """emit_with_ack back to the caller; answers with the client's reply or the timeout."""
    try:
        answer = await socket.emit_with_ack(spec["event"], *spec.get("args", []),
                                            timeout=float(spec.get("timeout", 3.0)))
    except AckTimeoutError:
        return {"timeout": True}
    return {"answer": _ack_value(answer)}


async def join(socket: Socket, room: str) -> list[str]:
    await socket.join(room)
    return sorted(socket.rooms)


async def leave(socket: Socket, room: str) -> list[str]:
    await socket.leave(room)
    return sorted(socket.rooms)


async def to_rooms(socket: Socket, spec: dict[str, Any]) -> str:
    """socket.to(...): the rooms' members minus the sender."""
    await socket.to(*spec["rooms"]).emit(spec["event"], *spec.get("args", []))
    return "ok"


async def except_rooms(socket: Socket, spec: dict[str, Any]) -> str:
    """socket.except_(...): everyone in the namespace minus the sender and the rooms' members."""
    await socket.except_(*spec["rooms"]).emit(spec["event"], *spec.get("args", []))
    return "ok"


def _operator(socket: Socket, spec: dict[str, Any]) -> Any:
    op = _ns(socket)
    if spec.get("to"):
        op = op.to(*spec["to"])
    if spec.get("except"):
        op = op.except_(*spec["except"])
    if spec.get("volatile"):
        op = op.volatile
    if spec.get("local"):
        op = op.local
    return op


async def broadcast(socket: Socket, spec: dict[str, Any]) -> str:
    """Server-level broadcast (the sender included when it matches)."""
    await _operator(socket, spec).emit(spec["event"], *spec.get("args", []))
    return "ok"


async def broadcast_ack(socket: Socket, spec: dict[str, Any]) -> dict[str, Any]:
    op = _operator(socket, spec).timeout(float(spec.get("timeout", 2.0)))
    try:
        responses = await op.emit_with_ack(spec["event"], *spec.get("args", []))
    except AckTimeoutError as exc:
        return {"timeout": True, "responses": [_ack_value(r) for r in exc.responses]}
    return {"responses": [_ack_value(r) for r in responses]}


async def fetch_sockets(socket: Socket, spec: dict[str, Any]) -> list[dict[str, Any]]:
    found = await _operator(socket, spec).fetch_sockets()
    if spec.get("details"):  # socket.data and the handshake travel with fetch_sockets
        return sorted(
            ({"id": s.id, "rooms": sorted(s.rooms), "data": s.data, "auth": s.handshake["auth"]} for s in found),
            key=lambda d: d["id"],
        )
    return sorted(({"id": s.id, "rooms": sorted(s.rooms)} for s in found), key=lambda d: d["id"])


async def server_local(socket: Socket, spec: dict[str, Any]) -> str:
    """realtime.local.emit / realtime.to(...).local.emit (server-wide: namespace "/")."""
    op = rt.to(*spec["to"]).local if spec.get("to") else rt.local
    await op.emit(spec["event"], *spec.get("args", []))
    return "ok"


async def emit_then_volatile(socket: Socket) -> str:
    """A plain emit, then at once (no await that suspends in between) a volatile one, then a plain one.

    On polling the plain emit answers the pending GET, so the transport is not writable when
    the volatile packet comes and it is dropped rather than queued (Node's rule). On websocket
    the first frame is normally written at once, so the volatile one may well go out.
    """
    await socket.emit("vt", "plain-1")
    await _ns(socket).to(socket.id).volatile.emit("vt", "volatile")
    await socket.emit("vt", "plain-2")
    return "ok"


async def set_data(socket: Socket, key: str, value: Any) -> dict[str, Any]:
    socket.data[key] = value
    return socket.data


async def get_data(socket: Socket) -> dict[str, Any]:
    return socket.data


async def handshake(socket: Socket) -> dict[str, Any]:
    return socket.handshake.to_dict()


async def catch_all(socket: Socket, event: Any, *args: Any) -> dict[str, Any]:
    """The catch-all: events that have no handler of their own."""
    CAUGHT.setdefault(socket.id, []).append([event, *args])
    return {"caught": event, "args": list(args)}


async def caught_get(socket: Socket) -> list[list[Any]]:
    return CAUGHT.get(socket.id, [])


async def sockets_join(socket: Socket, spec: dict[str, Any]) -> str:
    await _operator(socket, spec).sockets_join(spec["room"])
    return "ok"


async def sockets_leave(socket: Socket, spec: dict[str, Any]) -> str:
    await _operator(socket, spec).sockets_leave(spec["room"])
    return "ok"


async def disconnect_sockets(socket: Socket, spec: dict[str, Any]) -> str:
    await _operator(socket, spec).disconnect_sockets(close=bool(spec.get("close", False)))
    return "ok"


async def server_disconnect_me(socket: Socket) -> None:
    await socket.disconnect()


async def server_close_me(socket: Socket) -> None:
    await socket.disconnect(close=True)


async def numbered(socket: Socket, n: int) -> None:
    NUMBERED.setdefault(socket.id, []).append(n)


async def numbered_get(socket: Socket) -> list[int]:
    return NUMBERED.get(socket.id, [])


async def start_stream(socket: Socket, spec: dict[str, Any]) -> str:
    _start_stream(socket, spec)
    return "started"


HANDLERS: dict[str, Callable[..., Awaitable[Any]]] = {
    "echo": echo,
    "echo-pair": echo_pair,
    "echo-nothing": echo_nothing,
    "whoami": whoami,
    "ask": ask,
    "join": join,
    "leave": leave,
    "to-rooms": to_rooms,
    "except-rooms": except_rooms,
    "broadcast": broadcast,
    "broadcast-ack": broadcast_ack,
    "fetch-sockets": fetch_sockets,
    "sockets-join": sockets_join,
    "sockets-leave": sockets_leave,
    "disconnect-sockets": disconnect_sockets,
    "server-disconnect-me": server_disconnect_me,
    "server-close-me": server_close_me,
    "numbered": numbered,
    "numbered-get": numbered_get,
    "start-stream": start_stream,
    "server-local": server_local,
    "emit-then-volatile": emit_then_volatile,
    "set-data": set_data,
    "get-data": get_data,
    "handshake": handshake,
    "caught-get": caught_get,
}


def fn_namespace(name: str, auth: Any) -> bool:
    """A plain callable dynamic namespace: any /fn-<something>."""
    return name.startswith("/fn-") and len(name) > 4


async def vip_namespace(name: str, auth: Any) -> bool:
    """An async callable dynamic namespace that looks at the auth: /vip-<something> for VIPs only."""
    await asyncio.sleep(0)
    return name.startswith("/vip-") and isinstance(auth, dict) and auth.get("vip") is True


def build_router(namespace: str | re.Pattern[str] | Callable[[str, Any], Any]) -> RealtimeRouter:
    router = RealtimeRouter(namespace=namespace)
    router.use(reject_bad_token)
    router.use(remember_in_data)
    router.on("connect")(on_connect)
    router.on("disconnect")(on_disconnect)
    for event, handler in HANDLERS.items():
        router.on(event)(handler)
    router.on_any()(catch_all)
    return router


for _namespace in ("/", "/custom", re.compile(r"^/dyn-\d+$"), fn_namespace, vip_namespace):
    rt.include_router(build_router(_namespace))

app = FastAPI()
app.include_router(rt.router)


@app.get("/test/reasons/{sid}")
async def reason_of(sid: str) -> dict[str, str | None]:
    return {"reason": DISCONNECT_REASONS.get(sid)}
