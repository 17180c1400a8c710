"""Small raw-ASGI HTTP helpers shared by the transports and the app."""

from __future__ import annotations

from urllib.parse import parse_qsl

from .._types import Scope, Send
from ..engineio.handshake import ErrorCode, error_body, error_status

Headers = list[tuple[bytes, bytes]]

TEXT_PLAIN = b"text/plain; charset=UTF-8"
TEXT_HTML = b"text/html"
JSON = b"application/json"


def query_params(scope: Scope) -> dict[str, str]:
    """The query as parse_qsl(keep_blank_values=True) reads it; the usual Engine.IO query has no
    escapes, so it is split directly (parse_qsl costs several microseconds a request)."""
    query = scope.get("query_string", b"").decode("latin-1")
    if "%" in query or "+" in query:
        return dict(parse_qsl(query, keep_blank_values=True))
    params: dict[str, str] = {}
    for part in query.split("&"):
        if part:
            name, _, value = part.partition("=")
            params[name] = value
    return params


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def respond(send: Send, status: int, body: bytes, content_type: bytes | None, headers: Headers) -> None:
    out = list(headers)
    if content_type is not None:
        out.append((b"content-type", content_type))
    out.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": out})
    await send({"type": "http.response.body", "body": body})


async def respond_error(
    send: Send, code: ErrorCode, headers: Headers, message: str | None = None, *, status: int | None = None
) -> None:
    await respond(send, status or error_status(code), error_body(code, message), JSON, headers)


async def deny_websocket(
    scope: Scope, send: Send, code: ErrorCode, message: str | None = None, *, status: int | None = None
) -> None:
    """Refuse a WebSocket handshake: with the same HTTP error as polling where the server
    supports the ASGI denial-response extension, else by closing before accept (a 403)."""
    if "websocket.http.response" in (scope.get("extensions") or {}):
        body = error_body(code, message)
        headers = [(b"content-type", JSON), (b"content-length", str(len(body)).encode())]
        await send({"type": "websocket.http.response.start", "status": status or error_status(code), "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1008})
