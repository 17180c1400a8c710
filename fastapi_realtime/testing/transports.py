"""The client end of an Engine.IO v4 session over the in-memory driver: WebSocket or long-polling.

A transport does the handshake, answers heartbeats, and hands each MESSAGE packet's data up;
it knows nothing of Socket.IO.
"""

from __future__ import annotations

import asyncio
import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, NamedTuple

from ..engineio.packet import Frame, decode_packet
from ..engineio.packet import Packet as EnginePacket
from ..engineio.packet import PacketType as EngineType
from ..engineio.payload import decode_payload, encode_payload
from ..exceptions import RealtimeError
from .driver import DEFAULT_TIMEOUT, AsgiDriver, HttpExchange, WebSocketExchange
from .errors import ConnectionRefused

__all__ = ["PollingTransport", "Target", "Transport", "WebSocketTransport"]


class Target(NamedTuple):
    """Where a session's requests go: the path, and the query and headers each request carries."""

    path: str
    query: dict[str, str]
    headers: list[tuple[str, str]]


class Transport(ABC):
    """The client end of one Engine.IO session; subclasses carry the frames."""

    def __init__(
        self,
        asgi: AsgiDriver,
        target: Target,
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


class WebSocketTransport(Transport):
    ws: WebSocketExchange

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

        self.ws = WebSocketExchange(self.asgi, scope, on_frame, lambda: self._lost("transport close"))
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


class PollingTransport(Transport):
    """A long-poll GET always pending in the background; POSTs one at a time, as the protocol wants."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._outbox: list[Frame] = []
        self._poster: asyncio.Task[None] | None = None
        self._poller: asyncio.Task[None] | None = None
        self._get: HttpExchange | None = None

    def _request(self, method: str, body: bytes = b"") -> HttpExchange:
        query = {**self.query, "EIO": "4", "transport": "polling"}
        if self.sid:
            query["sid"] = self.sid
        headers = list(self.headers)
        if method == "POST":
            headers += [("content-type", "text/plain;charset=UTF-8"), ("content-length", str(len(body)))]
        scope = self.asgi.scope("http", self.path, query, headers)
        scope["method"] = method
        return HttpExchange(self.asgi, scope, body)

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
