"""The in-memory ASGI driver: the app's lifespan, HTTP requests and WebSockets as ASGI calls.

Each call runs as a task on the current loop with in-memory queues for its messages; what an
app call raised is kept in `AsgiDriver.errors` (the client re-raises it on exit). Nothing here
knows Engine.IO or Socket.IO.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, NamedTuple
from urllib.parse import urlencode

from .._types import EioFrame as Frame
from .._types import Message, Receive, Scope, Send
from .errors import ConnectionRefused

__all__ = ["DEFAULT_TIMEOUT", "ASGIApp", "AsgiDriver", "HttpExchange", "Response", "WebSocketExchange"]

ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_TIMEOUT = 5.0


class Response(NamedTuple):
    """An HTTP response as the app sent it, the body joined."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


class AsgiDriver:
    """Runs one app's ASGI calls as tasks on the current loop and keeps what they raised."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.tasks: set[asyncio.Task[None]] = set()
        self.errors: list[BaseException] = []
        self.state: dict[str, Any] = {}
        self._lifespan: asyncio.Task[None] | None = None
        self._to_app: asyncio.Queue[Message] = asyncio.Queue()
        self._from_app: asyncio.Queue[Message] = asyncio.Queue()

    def spawn(self, scope: Scope, receive: Receive, send: Send) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(self._call(scope, receive, send))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def _call(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except Exception as exc:  # re-raised when the client exits; the client sees a lost connection
            self.errors.append(exc)

    def scope(self, kind: str, path: str, query: Mapping[str, str], headers: Iterable[tuple[str, str]]) -> Scope:
        raw = [(b"host", b"testserver")] + [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        return {
            "type": kind,
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "scheme": "http" if kind == "http" else "ws",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": urlencode(query).encode(),
            "headers": raw,
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
            "state": dict(self.state),  # per request, as ASGI servers copy the lifespan state
        }

    # -- lifespan --------------------------------------------------------------------------
    async def startup(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": self.state}

        async def lifespan() -> None:
            await self.app(scope, self._to_app.get, self._from_app.put)

        self._lifespan = asyncio.get_running_loop().create_task(lifespan())
        await self._lifespan_step("startup")

    async def shutdown(self) -> None:
        if self._lifespan is not None and not self._lifespan.done():
            await self._lifespan_step("shutdown")
            await self._lifespan

    async def _lifespan_step(self, stage: str) -> None:
        assert self._lifespan is not None
        self._to_app.put_nowait({"type": f"lifespan.{stage}"})
        reply = asyncio.ensure_future(self._from_app.get())
        await asyncio.wait((reply, self._lifespan), return_when=asyncio.FIRST_COMPLETED)
        if not reply.done():
            reply.cancel()
            self._lifespan.result()  # raises what the app raised
            return  # the app returned at once: it does not do lifespan
        message = reply.result()
        if message["type"] == f"lifespan.{stage}.failed":
            raise RuntimeError(f"lifespan {stage} failed: {message.get('message', '')}")

    async def wait_idle(self, timeout: float) -> None:
        """Let running ASGI calls finish, then cancel what is left."""
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=timeout)
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


class HttpExchange:
    """One HTTP request; `abort()` is the client going away before the answer (a lost connection)."""

    def __init__(self, asgi: AsgiDriver, scope: Scope, body: bytes) -> None:
        self._body: bytes | None = body
        self._gone = asyncio.Event()
        self._start: Message | None = None
        self._chunks: list[bytes] = []
        self.response: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self.task = asgi.spawn(scope, self._receive, self._send)
        self.task.add_done_callback(self._done)

    async def _receive(self) -> Message:
        if self._body is not None:
            body, self._body = self._body, None
            return {"type": "http.request", "body": body, "more_body": False}
        await self._gone.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self._start = message
        elif message["type"] == "http.response.body" and not self._gone.is_set():
            self._chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                assert self._start is not None
                headers = [(bytes(k), bytes(v)) for k, v in self._start.get("headers", ())]
                if not self.response.done():
                    self.response.set_result(Response(self._start["status"], headers, b"".join(self._chunks)))
                self._gone.set()  # the request is over

    def _done(self, task: asyncio.Task[None]) -> None:
        self._gone.set()
        if not self.response.done():
            self.response.cancel()  # aborted, or the app failed without an answer

    def abort(self) -> None:
        self._gone.set()

    @property
    def answered(self) -> bool:
        return self.response.done() and not self.response.cancelled()

    async def answer(self) -> Response | None:
        """The response, or None when there was none (aborted, or the app failed)."""
        await asyncio.wait((self.response,))
        return self.response.result() if self.answered else None


class WebSocketExchange:
    """One WebSocket: frames in and out as ASGI messages; the callbacks see what the app sends."""

    def __init__(
        self, asgi: AsgiDriver, scope: Scope, on_frame: Callable[[Frame], None], on_close: Callable[[], None]
    ) -> None:
        self._to_app: asyncio.Queue[Message] = asyncio.Queue()
        self._to_app.put_nowait({"type": "websocket.connect"})
        self._on_frame = on_frame
        self._on_close = on_close
        self.open = False
        self.accepted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.task = asgi.spawn(scope, self._to_app.get, self._send)
        self.task.add_done_callback(self._done)

    async def _send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "websocket.accept":
            if not self.accepted.done():  # else the client gave up waiting
                self.open = True
                self.accepted.set_result(None)
        elif kind == "websocket.send":
            if self.open:  # after the client left, frames fall into the void
                text = message.get("text")
                self._on_frame(text if text is not None else bytes(message["bytes"]))
        elif kind == "websocket.close":
            code = message.get("code", 1000)
            if not self.accepted.done():
                self.accepted.set_exception(ConnectionRefused("WebSocket refused", {"code": code}))
            elif self.open:
                self.open = False
                self._to_app.put_nowait({"type": "websocket.disconnect", "code": code})
                self._on_close()
        elif kind == "websocket.http.response.start" and not self.accepted.done():
            self.accepted.set_exception(ConnectionRefused("WebSocket refused", {"status": message["status"]}))

    def _done(self, task: asyncio.Task[None]) -> None:
        if not self.accepted.done():
            self.accepted.set_exception(ConnectionRefused("WebSocket refused"))
        elif self.open:  # the app returned without closing: the server closes the socket
            self.open = False
            self._on_close()

    def send(self, frame: Frame) -> None:
        if self.open:
            key = "text" if isinstance(frame, str) else "bytes"
            self._to_app.put_nowait({"type": "websocket.receive", key: frame})

    def close(self, code: int) -> None:
        """The client end goes away: 1000 is a clean close, 1006 a lost connection."""
        if self.open:
            self.open = False
            self._to_app.put_nowait({"type": "websocket.disconnect", "code": code})
