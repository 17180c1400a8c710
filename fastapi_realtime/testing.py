"""An in-process Socket.IO test client that drives the real ASGI app with real protocol bytes.

No network and no server process: each HTTP request and each WebSocket is an ASGI call of the
app whose messages travel through in-memory queues, and the app's lifespan runs on enter and
exit. The client speaks Engine.IO v4 / Socket.IO v5 with the package's own sans-I/O codecs.

```python
async with RealtimeTestClient(app) as client:       # in an async test
    sio = await client.connect(auth={"token": "t"})
    assert await sio.call("echo", "hi") == "hi"

with RealtimeTestClient(app) as client:             # in a sync test (a loop runs in a thread)
    sio = client.connect(transport="polling")
    assert sio.wait_for("welcome") == sio.id
```
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import json
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from types import TracebackType
from typing import Any, Literal, NamedTuple, ParamSpec, TypeVar
from urllib.parse import urlencode

import anyio.from_thread
from anyio.from_thread import BlockingPortal

from ._types import Message, Receive, Scope, Send
from .broadcast import ack_value
from .engineio.packet import Frame, decode_packet
from .engineio.packet import Packet as EnginePacket
from .engineio.packet import PacketType as EngineType
from .engineio.payload import decode_payload, encode_payload
from .exceptions import AckTimeoutError, DisconnectedError, LocalProtocolError, RealtimeError
from .socketio.packet import Packet, PacketType, encode
from .socketio.parser import Decoder

__all__ = ["BlockingClient", "BlockingClientSocket", "ClientSocket", "ConnectionRefused", "RealtimeTestClient"]

ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
TransportName = Literal["websocket", "polling"]
EventHandler = Callable[..., Any]
P = ParamSpec("P")
T = TypeVar("T")

DEFAULT_TIMEOUT = 5.0
# The server is trusted to send valid packets; this only bounds a runaway one.
MAX_ATTACHMENTS = 10_000


class ConnectionRefused(RealtimeError, ConnectionRefusedError):
    """The server refused the connection: a CONNECT_ERROR packet, or a refused handshake.

    `message` and `data` are those of the CONNECT_ERROR (`data` is None when absent); for a
    refused handshake, `data` holds the HTTP status or the WebSocket close code.
    """

    def __init__(self, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data


# --------------------------------------------------------------------------- the ASGI driver


class _Response(NamedTuple):
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


class _Asgi:
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


class _HttpExchange:
    """One HTTP request; `abort()` is the client going away before the answer (a lost connection)."""

    def __init__(self, asgi: _Asgi, scope: Scope, body: bytes) -> None:
        self._body: bytes | None = body
        self._gone = asyncio.Event()
        self._start: Message | None = None
        self._chunks: list[bytes] = []
        self.response: asyncio.Future[_Response] = asyncio.get_running_loop().create_future()
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
                    self.response.set_result(_Response(self._start["status"], headers, b"".join(self._chunks)))
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

    async def answer(self) -> _Response | None:
        """The response, or None when there was none (aborted, or the app failed)."""
        await asyncio.wait((self.response,))
        return self.response.result() if self.answered else None


class _WebSocketExchange:
    """One WebSocket: frames in and out as ASGI messages; the callbacks see what the app sends."""

    def __init__(
        self, asgi: _Asgi, scope: Scope, on_frame: Callable[[Frame], None], on_close: Callable[[], None]
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


# --------------------------------------------------------------------------- Engine.IO client


class _Target(NamedTuple):
    path: str
    query: dict[str, str]
    headers: list[tuple[str, str]]


class _Transport(ABC):
    """The client end of one Engine.IO session; subclasses carry the frames."""

    def __init__(
        self,
        asgi: _Asgi,
        target: _Target,
        on_message: Callable[[str | bytes], None],
        on_close: Callable[[str], None],
    ) -> None:
        self.asgi = asgi
        self.path, self.query, self.headers = target
        self.sid = ""
        self.closed = False
        self._on_message = on_message
        self._on_close = on_close

    def _handshake(self, packet: EnginePacket) -> None:
        if packet.type is not EngineType.OPEN or not isinstance(packet.data, str):
            raise ConnectionRefused(f"expected an Engine.IO open packet, got {packet!r}")
        self.sid = json.loads(packet.data)["sid"]

    def _receive(self, packet: EnginePacket) -> None:
        if self.closed:
            return
        if packet.type is EngineType.MESSAGE:
            self._on_message(packet.data)
        elif packet.type is EngineType.PING:
            self.send(["3"])  # heartbeats are answered at once
        elif packet.type is EngineType.CLOSE:
            self._lost("transport close")

    def _lost(self, reason: str) -> None:
        if not self.closed:
            self.closed = True
            self._on_close(reason)

    @abstractmethod
    async def open(self, timeout: float) -> None:
        """Do the Engine.IO handshake; raise ConnectionRefused if the server refuses it."""

    @abstractmethod
    def send(self, frames: list[Frame]) -> None:
        """Queue frames for the server; never waits."""

    async def flush(self) -> None:
        """Wait until the frames sent so far reached the app."""

    @abstractmethod
    async def close(self) -> None:
        """Close the session cleanly, as a client that leaves."""

    @abstractmethod
    async def drop(self) -> None:
        """Vanish with no close packet, as a lost network looks to the server."""


class _WebSocketTransport(_Transport):
    ws: _WebSocketExchange

    async def open(self, timeout: float) -> None:
        query = {**self.query, "EIO": "4", "transport": "websocket"}
        scope = self.asgi.scope("websocket", self.path, query, self.headers)
        scope["subprotocols"] = []
        opened: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()

        def on_frame(frame: Frame) -> None:
            if not opened.done():
                opened.set_result(frame)
                return
            try:
                packet = decode_packet(frame)
            except RealtimeError as exc:
                self.asgi.errors.append(exc)
                return
            self._receive(packet)

        self.ws = _WebSocketExchange(self.asgi, scope, on_frame, lambda: self._lost("transport close"))
        await asyncio.wait_for(self.ws.accepted, timeout)
        self._handshake(decode_packet(await asyncio.wait_for(opened, timeout)))

    def send(self, frames: list[Frame]) -> None:
        for frame in frames:
            self.ws.send(frame)

    async def close(self) -> None:
        # Like engine.io-client: a WebSocket is simply closed, with no close packet.
        self.closed = True
        self.ws.close(1000)
        await asyncio.wait((self.ws.task,), timeout=DEFAULT_TIMEOUT)

    async def drop(self) -> None:
        self.closed = True
        self.ws.close(1006)
        await asyncio.wait((self.ws.task,), timeout=DEFAULT_TIMEOUT)


class _PollingTransport(_Transport):
    """A long-poll GET always pending in the background; POSTs one at a time, as the protocol wants."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._outbox: list[Frame] = []
        self._poster: asyncio.Task[None] | None = None
        self._poller: asyncio.Task[None] | None = None
        self._get: _HttpExchange | None = None

    def _request(self, method: str, body: bytes = b"") -> _HttpExchange:
        query = {**self.query, "EIO": "4", "transport": "polling"}
        if self.sid:
            query["sid"] = self.sid
        headers = list(self.headers)
        if method == "POST":
            headers += [("content-type", "text/plain;charset=UTF-8"), ("content-length", str(len(body)))]
        scope = self.asgi.scope("http", self.path, query, headers)
        scope["method"] = method
        return _HttpExchange(self.asgi, scope, body)

    async def open(self, timeout: float) -> None:
        response = await asyncio.wait_for(self._request("GET").answer(), timeout)
        if response is None:
            raise ConnectionRefused("the handshake request got no answer")
        if response.status != 200:
            try:
                message = str(json.loads(response.body)["message"])
            except (ValueError, KeyError, TypeError):
                message = f"HTTP {response.status}"
            raise ConnectionRefused(message, {"status": response.status})
        packets = decode_payload(response.body.decode())
        self._handshake(packets[0])
        self._poller = asyncio.get_running_loop().create_task(self._poll(packets[1:]))

    async def _poll(self, packets: list[EnginePacket]) -> None:
        while True:
            for packet in packets:
                self._receive(packet)
            if self.closed:
                return
            self._get = self._request("GET")
            response = await self._get.answer()
            if response is None or response.status != 200:
                self._lost("transport error")
                return
            try:
                packets = decode_payload(response.body.decode())
            except (RealtimeError, UnicodeDecodeError) as exc:  # a server bug: the test hears of it
                self.asgi.errors.append(exc)
                self._lost("parse error")
                return

    def send(self, frames: list[Frame]) -> None:
        if self.closed:
            return
        self._outbox.extend(frames)
        if self._poster is None:
            self._poster = asyncio.get_running_loop().create_task(self._post())

    async def _post(self) -> None:
        try:
            while self._outbox:
                body, self._outbox = encode_payload(self._outbox).encode(), []
                response = await self._request("POST", body).answer()
                if response is None or response.status != 200:
                    self._lost("transport error")
                    return
        finally:
            self._poster = None

    async def flush(self) -> None:
        while self._poster is not None:
            await asyncio.wait((self._poster,))

    async def close(self) -> None:
        self.send(["1"])
        self.closed = True
        await self.flush()
        await self._stop()

    async def drop(self) -> None:
        self.closed = True
        self._outbox.clear()
        await self._stop()
        # The server notices a lost long-poll only while a GET is pending: if the last one was
        # already answered (its frames are lost on the way, as on a real network), abort a new one.
        for _ in range(100):
            get = self._get if self._get is not None and not self._get.answered else self._request("GET")
            get.abort()
            await asyncio.wait((get.task,), timeout=DEFAULT_TIMEOUT)
            if not get.answered or get.response.result().status != 200:
                return
            self._get = None

    async def _stop(self) -> None:
        for task in (self._poller, self._poster):
            if task is not None:
                task.cancel()
                await asyncio.wait((task,))
        self._poller = self._poster = None
        if self._get is not None and not self._get.answered:
            self._get.abort()
            await asyncio.wait((self._get.task,), timeout=DEFAULT_TIMEOUT)


# --------------------------------------------------------------------------- Socket.IO client


class ClientSocket:
    """A Socket.IO client connected to one namespace over its own Engine.IO session.

    Every event is recorded from the connection on (`received`), so `wait_for` never misses
    one. Args are kept as sent: with connection state recovery on, stored events carry their
    offset as the last argument, as socket.io-client shows them too.

    As in socket.io-client, events that arrive before the CONNECT reply (the missed events of a
    recovery) wait until it is processed; then each is recorded in order and, when the session
    has a pid, its offset becomes the one `reconnect()` sends.
    """

    def __init__(
        self,
        client: RealtimeTestClient,
        namespace: str,
        auth: dict[str, Any] | None,
        transport: TransportName,
        headers: Mapping[str, str] | None,
        query: Mapping[str, str] | None,
    ) -> None:
        if transport not in ("websocket", "polling"):
            raise ValueError(f"transport must be 'websocket' or 'polling', got {transport!r}")
        self.namespace = namespace
        self.transport: TransportName = transport
        self.id: str | None = None
        self.pid: str | None = None
        self.offset: str | None = None
        self.connected = False
        self.recovered = False
        self.disconnect_reason: str | None = None
        self.received: list[tuple[str, tuple[Any, ...]]] = []
        self._client = client
        self._auth = auth
        merged = {name.lower(): value for name, value in [*client.headers.items(), *(headers or {}).items()]}
        self._target = _Target(client.path, dict(query or {}), list(merged.items()))
        self._cursors: dict[str, int] = {}
        self._arrived = asyncio.Event()
        self._handlers: dict[str, EventHandler] = {}
        self._acks: dict[int, asyncio.Future[list[Any]]] = {}
        self._next_ack = 0
        self._connecting: asyncio.Future[None] | None = None
        self._sent_pid: str | None = None
        self._early: list[Packet] = []  # events that came before the CONNECT reply
        self._engine: _Transport | None = None
        self._decoder = Decoder(max_attachments=MAX_ATTACHMENTS)

    def __repr__(self) -> str:
        state = "connected" if self.connected else "disconnected"
        return f"<ClientSocket {self.namespace} {self.id} {self.transport} {state}>"

    # -- connecting ------------------------------------------------------------------------
    async def _open(self, timeout: float) -> None:
        transport_class = _WebSocketTransport if self.transport == "websocket" else _PollingTransport

        # Late news from an earlier session must not touch this one.
        def on_message(data: str | bytes) -> None:
            if self._engine is engine:
                self._on_message(data)

        def on_close(reason: str) -> None:
            if self._engine is engine:
                self._on_close(reason)

        engine = self._engine = transport_class(self._client._asgi, self._target, on_message, on_close)
        self._decoder = Decoder(max_attachments=MAX_ATTACHMENTS)
        connecting = self._connecting = asyncio.get_running_loop().create_future()
        self._early.clear()
        # As socket.io-client: once connected, the pid and the last offset ride in the auth.
        sent_pid = self._sent_pid = self.pid
        auth = self._auth
        if sent_pid is not None:
            auth = {"pid": sent_pid, **({"offset": self.offset} if self.offset is not None else {}), **(auth or {})}
        try:
            await engine.open(timeout)
            self._send(Packet(PacketType.CONNECT, self.namespace, auth))
            try:
                # The CONNECT reply itself is handled as it arrives (`_connected`), before
                # any frame that follows it.
                await asyncio.wait_for(connecting, timeout)
            except BaseException:
                self.connected = False
                await engine.close()
                raise
        finally:
            self._connecting = None
            self._early.clear()

    async def reconnect(self, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Connect again with a new Engine.IO session, sending `pid` and the last offset in the auth.

        Afterwards `recovered` tells whether the server restored the session (same id, the
        missed events delivered first).
        """
        if self.connected:
            raise LocalProtocolError("the socket is connected; drop() or disconnect() it first")
        await self._open(timeout)

    # -- incoming --------------------------------------------------------------------------
    def _on_message(self, data: str | bytes) -> None:
        try:
            packet = self._decoder.feed(data)
            if packet is not None:
                self._on_packet(packet)
        except Exception as exc:  # a server bug the test should hear about
            self._client._asgi.errors.append(exc)

    def _on_packet(self, packet: Packet) -> None:
        kind = packet.type
        if kind is PacketType.CONNECT:
            if self._connecting is not None and not self._connecting.done():
                if isinstance(packet.data, dict) and "sid" in packet.data:
                    self._connected(packet.data)
                    self._connecting.set_result(None)
                else:
                    self._connecting.set_exception(ConnectionRefused(f"a CONNECT reply without a sid: {packet.data!r}"))
        elif kind is PacketType.CONNECT_ERROR:
            data = packet.data
            error = (
                ConnectionRefused(str(data.get("message")), data.get("data"))
                if isinstance(data, dict)
                else ConnectionRefused(str(data))
            )
            if self._connecting is not None and not self._connecting.done():
                self._connecting.set_exception(error)
        elif kind is PacketType.EVENT or kind is PacketType.BINARY_EVENT:
            if self.connected:
                self._on_event(packet)
            elif self._connecting is not None and not self._connecting.done():
                self._early.append(packet)  # socket.io-client's receiveBuffer
        elif kind is PacketType.ACK or kind is PacketType.BINARY_ACK:
            future = self._acks.pop(packet.id, None) if packet.id is not None else None
            if future is not None and not future.done():
                future.set_result(list(packet.data))
        elif kind is PacketType.DISCONNECT:
            self._gone("io server disconnect")
            engine = self._engine
            if engine is not None:  # the last socket of the session went: close it, as a Manager does
                self._client._spawn(engine.close())

    def _connected(self, reply: dict[str, Any]) -> None:
        """The CONNECT reply, as socket.io-client's `onconnect`: the new id and pid first, then
        the events that came before it, each recorded with the pid now known."""
        self.id = str(reply["sid"])
        self.pid = reply.get("pid")
        self.recovered = self._sent_pid is not None and self.pid == self._sent_pid
        self.connected = True
        self.disconnect_reason = None
        early, self._early = self._early, []
        for packet in early:
            self._on_event(packet)

    def _on_event(self, packet: Packet) -> None:
        event, *args = packet.data
        # socket.io-client's `_lastOffset`; there an ack callback is the last argument, never an offset
        if packet.id is None and self.pid is not None and args and isinstance(args[-1], str):
            self.offset = args[-1]
        self.received.append((str(event), tuple(args)))
        self._arrived.set()
        self._arrived = asyncio.Event()
        handler = self._handlers.get(str(event))
        if handler is not None or packet.id is not None:
            self._client._spawn(self._run_handler(handler, args, packet.id))

    async def _run_handler(self, handler: EventHandler | None, args: list[Any], ack_id: int | None) -> None:
        result = None
        if handler is not None:
            try:
                result = handler(*args)
                if inspect.isawaitable(result):
                    result = await result
            except Exception as exc:
                self._client._asgi.errors.append(exc)
                return
        if ack_id is not None and self.connected:
            data = [] if result is None else list(result) if isinstance(result, tuple) else [result]
            self._send(Packet(PacketType.ACK, self.namespace, data, ack_id))

    def _on_close(self, reason: str) -> None:
        if self._connecting is not None and not self._connecting.done():
            self._connecting.set_exception(DisconnectedError(f"the session closed before the CONNECT reply ({reason})"))
        self._gone(reason)

    def _gone(self, reason: str) -> None:
        if not self.connected:
            return
        self.connected = False
        self.disconnect_reason = reason
        for future in self._acks.values():
            if not future.done():
                future.set_exception(DisconnectedError(f"disconnected ({reason}) before the ack"))
        self._acks.clear()
        self._arrived.set()
        self._arrived = asyncio.Event()

    # -- outgoing --------------------------------------------------------------------------
    def _send(self, packet: Packet) -> None:
        assert self._engine is not None
        text, *attachments = encode(packet)
        self._engine.send(["4" + str(text), *attachments])

    def _check_connected(self) -> None:
        if not self.connected:
            raise DisconnectedError(f"the socket is not connected ({self.disconnect_reason})")

    async def emit(self, event: str, *args: Any) -> None:
        """Send an event; `bytes` anywhere in the args travel as binary attachments."""
        self._check_connected()
        self._send(Packet(PacketType.EVENT, self.namespace, [event, *args]))
        assert self._engine is not None
        await self._engine.flush()

    async def call(self, event: str, *args: Any, timeout: float = DEFAULT_TIMEOUT) -> Any:
        """Send an event with an ack id and return the server's ack: None, its one arg, or a tuple.

        Raises AckTimeoutError (a TimeoutError) if no ack comes within `timeout` seconds, and
        DisconnectedError if the connection ends first.
        """
        self._check_connected()
        ack_id = self._next_ack
        self._next_ack += 1
        future = self._acks[ack_id] = asyncio.get_running_loop().create_future()
        self._send(Packet(PacketType.EVENT, self.namespace, [event, *args], ack_id))
        try:
            return ack_value(await asyncio.wait_for(future, timeout))
        except asyncio.TimeoutError:
            raise AckTimeoutError(f"no ack for {event!r} within {timeout}s") from None
        finally:
            self._acks.pop(ack_id, None)

    async def wait_for(self, event: str, *, timeout: float = DEFAULT_TIMEOUT) -> Any:
        """Return the next occurrence of `event` not returned before: None, its one arg, or a tuple.

        Events are recorded from the connection on, so one that came before this call counts.
        Raises TimeoutError after `timeout` seconds, DisconnectedError if the socket is
        disconnected and no such event is left.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            seen = self._cursors.get(event, 0)
            matches = [args for name, args in self.received if name == event]
            if len(matches) > seen:
                self._cursors[event] = seen + 1
                return ack_value(list(matches[seen]))
            if not self.connected and self._connecting is None:
                raise DisconnectedError(f"no {event!r} event and the socket is disconnected ({self.disconnect_reason})")
            try:
                await asyncio.wait_for(self._arrived.wait(), max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                raise TimeoutError(f"no {event!r} event within {timeout}s") from None

    def on(self, event: str, handler: EventHandler) -> None:
        """Call `handler(*args)` on each `event`; when the server asked for an ack, its return value
        (None, a value, or a tuple of several) is the ack. The handler may be async."""
        self._handlers[event] = handler

    async def disconnect(self) -> None:
        """Leave the namespace (the server sees "client namespace disconnect") and close the session."""
        if self.connected:
            self._send(Packet(PacketType.DISCONNECT, self.namespace))
            self._gone("io client disconnect")
        if self._engine is not None and not self._engine.closed:
            await self._engine.close()

    async def drop(self) -> None:
        """Lose the transport with no close packet, as a network failure looks to the server.

        Returns once the app has seen the connection go; `reconnect()` may follow.
        """
        self._gone("transport close")
        if self._engine is not None and not self._engine.closed:
            await self._engine.drop()

    async def _terminate(self) -> None:
        if self._engine is not None and not self._engine.closed:
            await self._engine.drop()
        self._gone("io client disconnect")


# --------------------------------------------------------------------------- the clients


class RealtimeTestClient:
    """Drives an ASGI app holding realtime routes, in-process, with real Engine.IO/Socket.IO bytes.

    `app` is a FastAPI/Starlette app that includes `realtime.router` (pass `path` with any
    prefix, e.g. "/api/socket.io"), or a `Realtime` itself. Use `async with` in async tests and
    plain `with` in sync ones (that one returns a `BlockingClient`). The app's lifespan runs on
    enter and exit, so leaving the block runs the realtime shutdown. Exceptions the app raised
    (and those of `on` handlers) are re-raised on exit unless `raise_server_exceptions=False`.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        path: str = "/socket.io",
        headers: Mapping[str, str] | None = None,
        raise_server_exceptions: bool = True,
    ) -> None:
        self.app = app
        self.path = path.rstrip("/") + "/"
        self.headers = dict(headers or {})
        self.raise_server_exceptions = raise_server_exceptions
        self.sockets: list[ClientSocket] = []
        self._asgi = _Asgi(app)
        self._tasks: set[asyncio.Task[None]] = set()
        self._exit_stack: contextlib.ExitStack | None = None
        self._portal: BlockingPortal | None = None

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def connect(
        self,
        namespace: str = "/",
        *,
        auth: dict[str, Any] | None = None,
        transport: TransportName = "websocket",
        headers: Mapping[str, str] | None = None,
        query: Mapping[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> ClientSocket:
        """Open an Engine.IO session and connect to `namespace`; return the connected socket.

        Raises ConnectionRefused (with the CONNECT_ERROR's `message` and `data`) when the server
        refuses, and TimeoutError when it does not answer within `timeout` seconds.
        """
        socket = ClientSocket(self, namespace, auth, transport, headers, query)
        await socket._open(timeout)
        self.sockets.append(socket)
        return socket

    async def __aenter__(self) -> RealtimeTestClient:
        self._asgi = _Asgi(self.app)
        await self._asgi.startup()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # Shutdown first: that is what the realtime server's clients see when the app stops.
        await self._asgi.shutdown()
        for socket in self.sockets:
            await socket._terminate()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._asgi.wait_idle(DEFAULT_TIMEOUT)
        self.sockets.clear()
        if exc is None and self.raise_server_exceptions and self._asgi.errors:
            raise self._asgi.errors[0]

    def __enter__(self) -> BlockingClient:
        with contextlib.ExitStack() as stack:
            portal = stack.enter_context(anyio.from_thread.start_blocking_portal("asyncio"))
            portal.call(self.__aenter__)
            self._portal = portal
            self._exit_stack = stack.pop_all()
        return BlockingClient(self, portal)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._exit_stack is not None and self._portal is not None
        portal, stack = self._portal, self._exit_stack
        self._portal = self._exit_stack = None
        with stack:
            portal.call(self.__aexit__, exc_type, exc, tb)


class BlockingClient:
    """The sync face of `RealtimeTestClient` (what `with RealtimeTestClient(app)` returns).

    The client's event loop runs in a background thread; every method blocks until done there.
    """

    def __init__(self, client: RealtimeTestClient, portal: BlockingPortal) -> None:
        self.client = client
        self.portal = portal

    def connect(
        self,
        namespace: str = "/",
        *,
        auth: dict[str, Any] | None = None,
        transport: TransportName = "websocket",
        headers: Mapping[str, str] | None = None,
        query: Mapping[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> BlockingClientSocket:
        """Connect to `namespace` (see `RealtimeTestClient.connect`) and return the socket."""
        connect = functools.partial(
            self.client.connect, namespace, auth=auth, transport=transport, headers=headers, query=query, timeout=timeout
        )
        return BlockingClientSocket(self.portal.call(connect), self.portal)

    def run(self, func: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `await func(*args, **kwargs)` on the app's loop, e.g. `client.run(rt.emit, "news", 1)`."""
        return self.portal.call(functools.partial(func, *args, **kwargs))


class BlockingClientSocket:
    """The sync face of a `ClientSocket`: the same methods, blocking. Handlers given to `on`
    run on the client's event loop thread."""

    def __init__(self, socket: ClientSocket, portal: BlockingPortal) -> None:
        self.socket = socket
        self._portal = portal

    def __repr__(self) -> str:
        return repr(self.socket)

    @property
    def id(self) -> str | None:
        return self.socket.id

    @property
    def pid(self) -> str | None:
        return self.socket.pid

    @property
    def offset(self) -> str | None:
        return self.socket.offset

    @property
    def connected(self) -> bool:
        return self.socket.connected

    @property
    def recovered(self) -> bool:
        return self.socket.recovered

    @property
    def disconnect_reason(self) -> str | None:
        return self.socket.disconnect_reason

    @property
    def received(self) -> list[tuple[str, tuple[Any, ...]]]:
        return self._portal.call(lambda: list(self.socket.received))

    def emit(self, event: str, *args: Any) -> None:
        """Send an event (see `ClientSocket.emit`)."""
        self._portal.call(functools.partial(self.socket.emit, event, *args))

    def call(self, event: str, *args: Any, timeout: float = DEFAULT_TIMEOUT) -> Any:
        """Send an event and return the server's ack (see `ClientSocket.call`)."""
        return self._portal.call(functools.partial(self.socket.call, event, *args, timeout=timeout))

    def wait_for(self, event: str, *, timeout: float = DEFAULT_TIMEOUT) -> Any:
        """Return the next unseen occurrence of `event` (see `ClientSocket.wait_for`)."""
        return self._portal.call(functools.partial(self.socket.wait_for, event, timeout=timeout))

    def on(self, event: str, handler: EventHandler) -> None:
        """Answer `event` with `handler` (see `ClientSocket.on`)."""
        self._portal.call(self.socket.on, event, handler)

    def disconnect(self) -> None:
        """Leave the namespace and close the session."""
        self._portal.call(self.socket.disconnect)

    def drop(self) -> None:
        """Lose the transport with no close packet (see `ClientSocket.drop`)."""
        self._portal.call(self.socket.drop)

    def reconnect(self, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Reconnect with the recovery auth (see `ClientSocket.reconnect`)."""
        self._portal.call(functools.partial(self.socket.reconnect, timeout=timeout))
