"""Raw ASGI echo: the ceiling for any Python ASGI server.

WebSocket: accept, then echo every frame back unchanged.
HTTP: a minimal long-poll mailbox so the polling scenario has a comparable ceiling: a POST to
``/poll?sid=X`` stores its body, and the (single) pending GET for that sid returns it. That is the
same two-requests-per-round-trip shape as Engine.IO polling, without any protocol work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# A GET with nothing to deliver returns a noop after this long, like an Engine.IO long-poll.
POLL_TIMEOUT = 20.0


class _Mailbox:
    __slots__ = ("items", "event")

    def __init__(self) -> None:
        self.items: list[bytes] = []
        self.event = asyncio.Event()


_mailboxes: dict[str, _Mailbox] = {}


async def _websocket(receive: Receive, send: Send) -> None:
    msg = await receive()
    if msg["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    while True:
        msg = await receive()
        if msg["type"] != "websocket.receive":
            return
        text = msg.get("text")
        if text is not None:
            await send({"type": "websocket.send", "text": text})
        else:
            await send({"type": "websocket.send", "bytes": msg.get("bytes") or b""})


async def _respond(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=UTF-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _http(scope: Scope, receive: Receive, send: Send) -> None:
    query = parse_qs(scope.get("query_string", b"").decode())
    sid = query.get("sid", [""])[0]
    box = _mailboxes.get(sid)
    if box is None:
        box = _mailboxes[sid] = _Mailbox()
    if scope["method"] == "POST":
        chunks: list[bytes] = []
        while True:
            msg = await receive()
            chunks.append(msg.get("body", b""))
            if not msg.get("more_body"):
                break
        box.items.append(b"".join(chunks))
        box.event.set()
        await _respond(send, 200, b"ok")
        return
    if not box.items:
        try:
            await asyncio.wait_for(box.event.wait(), POLL_TIMEOUT)
        except TimeoutError:
            pass
    body = b"\x1e".join(box.items) if box.items else b"6"
    box.items = []
    box.event.clear()
    await _respond(send, 200, body)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    kind = scope["type"]
    if kind == "websocket":
        await _websocket(receive, send)
    elif kind == "http":
        await _http(scope, receive, send)
    elif kind == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
