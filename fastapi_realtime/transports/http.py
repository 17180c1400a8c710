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
    return dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))


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


async def respond_error(send: Send, code: ErrorCode, headers: Headers, message: str | None = None) -> None:
    await respond(send, error_status(code), error_body(code, message), JSON, headers)
