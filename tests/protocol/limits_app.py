"""A small app with tight limits, built with the public API only, for the limit and refusal tests.

Served by `run_uvicorn("tests.protocol.limits_app:app")`. Socket.IO lives at /socket.io/.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.requests import HTTPConnection

from fastapi_realtime import Realtime, RealtimeRouter, Socket

MAX_BUFFER = 1000
MAX_ATTACHMENTS = 2
GOOD_ORIGIN = "http://good.example"
REFUSE_HEADER = "x-refuse-me"


async def allow_request(conn: HTTPConnection) -> bool:
    # Refuse any request carrying the marker header, so a test can trigger the 403 path at will.
    return REFUSE_HEADER not in conn.headers


rt = Realtime(
    max_http_buffer_size=MAX_BUFFER,
    max_attachments=MAX_ATTACHMENTS,
    cors_allowed_origins=[GOOD_ORIGIN],
    allow_request=allow_request,
    cookie="io",
    # Long heartbeat: these tests are about limits, not timers.
    ping_interval=5.0,
    ping_timeout=5.0,
)

router = RealtimeRouter(namespace="/")


@router.on("echo")
async def echo(socket: Socket, data: Any) -> Any:
    return data


@router.on_any()
async def any_event(socket: Socket, event: str, *args: Any) -> None:
    # Same shape as the conformance server: "message" comes back as "message-back".
    if event == "message":
        await socket.emit("message-back", *args)


rt.include_router(router)

app = FastAPI()
app.include_router(rt.router)
