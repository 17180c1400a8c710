"""Raw-protocol tests: exact bytes over real HTTP and WebSocket connections (protocol.md §1-§2).

This module holds the small raw clients the test modules share. They speak Engine.IO by hand
(httpx for long-polling, the `websockets` library for WebSocket) so the tests see the real wire.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import re
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager
from typing import Any, ParamSpec

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Origin

# The conformance server's settings (tests/conftest.py, protocol.md §1.3 / §2.3).
PING_INTERVAL = 0.3
PING_TIMEOUT = 0.2
MAX_PAYLOAD = 1_000_000
CONNECT_TIMEOUT = 1.0

HANDSHAKE_KEYS = {"sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"}
SID_RE = re.compile(r"^[A-Za-z0-9_-]{20}$")
SEP = "\x1e"

P = ParamSpec("P")


def run_async(func: Callable[P, Coroutine[Any, Any, None]]) -> Callable[P, None]:
    """Turn an async test into a sync one; pytest still sees the original signature for fixtures."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        asyncio.run(func(*args, **kwargs))

    return wrapper


def ws_url(base: str, path: str, query: str) -> str:
    return base.replace("http://", "ws://", 1) + path + "?" + query


def parse_open(packet: str) -> dict[str, Any]:
    """Check an Engine.IO open packet and return its JSON."""
    assert packet.startswith("0"), packet
    data = json.loads(packet[1:])
    assert isinstance(data, dict)
    assert set(data) == HANDSHAKE_KEYS, data
    assert isinstance(data["sid"], str) and SID_RE.match(data["sid"]), data["sid"]
    return data


def b64(data: bytes) -> str:
    return "b" + base64.b64encode(data).decode()


def error_json(resp: httpx.Response) -> dict[str, Any]:
    """The `{code, message}` body of an Engine.IO HTTP error (protocol.md §1.8)."""
    assert resp.headers.get("content-type", "").startswith("application/json"), resp.headers
    body = resp.json()
    assert isinstance(body, dict)
    return body


def assert_error(resp: httpx.Response, status: int, code: int, message: str) -> None:
    assert resp.status_code == status, (resp.status_code, resp.text)
    assert error_json(resp) == {"code": code, "message": message}


# --------------------------------------------------------------------------- polling


class Polling:
    """A hand-driven long-polling session: every GET and POST is explicit."""

    def __init__(self, client: httpx.AsyncClient, base: str, path: str) -> None:
        self.client = client
        self.url = base + path
        self.sid = ""

    def _params(self, sid: bool = True) -> dict[str, str]:
        params = {"EIO": "4", "transport": "polling"}
        if sid:
            params["sid"] = self.sid
        return params

    async def handshake(self, headers: dict[str, str] | None = None) -> dict[str, Any]:
        resp = await self.client.get(self.url, params=self._params(sid=False), headers=headers)
        assert resp.status_code == 200, (resp.status_code, resp.text)
        data = parse_open(resp.text)
        self.sid = data["sid"]
        return data

    async def get(self, timeout: float = 3.0) -> httpx.Response:
        return await self.client.get(self.url, params=self._params(), timeout=timeout)

    async def post(self, body: str | bytes, content_type: str = "text/plain;charset=UTF-8") -> httpx.Response:
        return await self.client.post(
            self.url, params=self._params(), content=body, headers={"Content-Type": content_type}
        )

    async def send(self, body: str) -> None:
        resp = await self.post(body)
        assert resp.status_code == 200, (resp.status_code, resp.text)
        assert resp.text == "ok"

    async def packets(self, want: int, limit: float = 3.0) -> list[str]:
        """GET until `want` non-ping packets arrived; pings are answered so the session stays up."""
        got: list[str] = []
        deadline = time.monotonic() + limit
        while len(got) < want:
            assert time.monotonic() < deadline, f"only {got!r} after {limit}s"
            resp = await self.get()
            assert resp.status_code == 200, (resp.status_code, resp.text)
            for packet in resp.text.split(SEP):
                if packet == "2":
                    await self.send("3")
                else:
                    got.append(packet)
        return got

    async def assert_closed(self) -> None:
        """The session is gone: the next GET is 400 `Session ID unknown`."""
        assert_error(await self.get(), 400, 1, "Session ID unknown")


@asynccontextmanager
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


# --------------------------------------------------------------------------- websocket


class Closed(Exception):
    """The WebSocket closed while a frame was expected."""


class RawWS:
    """A raw Engine.IO WebSocket. A reader task answers pings (unless `autopong` is off) and
    queues every other frame, so an idle client does not die of ping timeout mid-test."""

    def __init__(self, conn: ClientConnection) -> None:
        self.conn = conn
        self.autopong = True
        self.queue: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        self.close_code: int | None = None
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for frame in self.conn:
                if self.autopong and frame == "2":
                    await self.conn.send("3")
                else:
                    self.queue.put_nowait(frame)
        except ConnectionClosed:
            pass
        finally:
            self.close_code = self.conn.close_code
            self.queue.put_nowait(None)

    async def send(self, frame: str | bytes) -> None:
        await self.conn.send(frame)

    async def recv(self, timeout: float = 3.0) -> str | bytes:
        frame = await asyncio.wait_for(self.queue.get(), timeout)
        if frame is None:
            self.queue.put_nowait(None)  # keep reporting the close
            raise Closed(f"closed with code {self.close_code}")
        return frame

    async def recv_text(self, timeout: float = 3.0) -> str:
        frame = await self.recv(timeout)
        assert isinstance(frame, str), frame
        return frame

    async def assert_closed(self, timeout: float = 3.0) -> list[str | bytes]:
        """Wait until the server closes the connection; return the frames seen before."""
        seen: list[str | bytes] = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"still open after {timeout}s; frames {seen!r}"
            try:
                seen.append(await self.recv(left))
            except Closed:
                return seen
            except TimeoutError:
                raise AssertionError(f"still open after {timeout}s; frames {seen!r}") from None

    async def assert_quiet(self, duration: float) -> None:
        """Nothing but (answered) pings for `duration` seconds."""
        with pytest.raises(TimeoutError):
            frame = await self.recv(duration)
            raise AssertionError(f"unexpected frame {frame!r}")

    async def close(self) -> None:
        await self.conn.close()
        self.reader.cancel()


def _connect(url: str, origin: str | None, headers: dict[str, str] | None = None) -> Any:
    return connect(
        url,
        origin=Origin(origin) if origin else None,
        additional_headers=headers,
        ping_interval=None,  # the protocol has its own heartbeat; keep WS-level pings out of the way
        max_size=None,
        compression=None,
        open_timeout=5,
        close_timeout=1,
    )


async def ws_connect(url: str, origin: str | None = None, headers: dict[str, str] | None = None) -> RawWS:
    """Open a raw WebSocket (the caller closes it); raises InvalidStatus if the upgrade is refused."""
    return RawWS(await _connect(url, origin, headers))


@asynccontextmanager
async def open_ws(url: str, origin: str | None = None) -> AsyncIterator[RawWS]:
    ws = await ws_connect(url, origin)
    try:
        yield ws
    finally:
        await ws.close()


async def ws_open(base: str, path: str, origin: str | None = None) -> tuple[RawWS, dict[str, Any]]:
    """A fresh WebSocket session (caller closes it) and its handshake JSON."""
    ws = await ws_connect(ws_url(base, path, "EIO=4&transport=websocket"), origin)
    try:
        handshake = parse_open(await ws.recv_text())
    except BaseException:
        await ws.close()
        raise
    return ws, handshake


async def assert_ws_refused(
    url: str, origin: str | None = None, timeout: float = 3.0, headers: dict[str, str] | None = None
) -> None:
    """The server refuses the WebSocket: an HTTP error before the upgrade, or a close with no
    Engine.IO traffic but an optional close packet (protocol.md §1.8 accepts either)."""
    try:
        ws = await ws_connect(url, origin, headers)
    except InvalidStatus as exc:
        assert 400 <= exc.response.status_code < 500, exc.response.status_code
        return
    try:
        seen = await ws.assert_closed(timeout)
        assert all(f == "1" for f in seen), seen
    finally:
        await ws.close()


# --------------------------------------------------------------------------- Socket.IO


def sio_sid(frame: str | bytes, nsp: str = "/") -> str:
    """Check a Socket.IO CONNECT reply (`40{"sid":..}` / `40/nsp,{"sid":..}`) and return the sid."""
    assert isinstance(frame, str), frame
    prefix = "40" if nsp == "/" else f"40{nsp},"
    assert frame.startswith(prefix), frame
    body = json.loads(frame[len(prefix):])
    assert isinstance(body, dict) and set(body) == {"sid"}, body  # no pid without recovery
    assert SID_RE.match(body["sid"]), body
    return str(body["sid"])



@pytest.fixture(scope="module")
def limits_url() -> Iterator[str]:
    """tests/protocol/limits_app.py under a real uvicorn."""
    from tests.conftest import run_uvicorn

    with run_uvicorn("tests.protocol.limits_app:app") as url:
        yield url


SIO = "/socket.io/"


def compact(value: Any) -> str:
    """JSON the way JavaScript's JSON.stringify writes it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def connect_packet(nsp: str = "/", auth: dict[str, Any] | None = None) -> str:
    text = "40" if nsp == "/" else f"40{nsp},"
    return text + (compact(auth) if auth is not None else "")


async def sio_client(
    base: str, nsp: str = "/", auth: dict[str, Any] | None = None, *, auth_event: bool = True
) -> tuple[RawWS, str]:
    """A WebSocket client joined to `nsp`. With `auth_event`, the server's greeting
    (the conformance server emits `auth` with the handshake auth on connection) is consumed and checked."""
    ws, _ = await ws_open(base, SIO)
    try:
        await ws.send(connect_packet(nsp, auth))
        sid = sio_sid(await ws.recv(), nsp)
        if auth_event:
            prefix = "" if nsp == "/" else f"{nsp},"
            assert await ws.recv() == f'42{prefix}["auth",{compact(auth or {})}]'
    except BaseException:
        await ws.close()
        raise
    return ws, sid


async def assert_echo(ws: RawWS, marker: str = "still alive") -> None:
    """The client is still served: an event comes back as message-back."""
    await ws.send(f'42["message",{compact(marker)}]')
    assert await ws.recv() == f'42["message-back",{compact(marker)}]'
