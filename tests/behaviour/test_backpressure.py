"""A client that stops reading is dropped when its queue overflows; nobody else is delayed.

Real uvicorn, real sockets: the slow client is a raw TCP socket that completes the WebSocket
and Socket.IO handshakes and then never reads again.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import time

import httpx
import socketio

from tests.conftest import run_uvicorn

APP = "tests.behaviour.slow_app:app"


def _stalled_client(base: str) -> tuple[socket.socket, str]:
    """Open a WebSocket, join "/", read the CONNECT reply, then stop reading for good."""
    host, port = base.removeprefix("http://").split(":")
    sock = socket.socket()
    # A small receive buffer, set before connecting so the kernel does not grow it.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(5)
    sock.connect((host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
            f"Host: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        buffer += sock.recv(4096)
    # A masked client text frame "40" (connect to "/").
    mask = os.urandom(4)
    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(b"40"))
    sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + payload)
    deadline = time.monotonic() + 5
    while b'40{"sid":"' not in buffer and time.monotonic() < deadline:
        buffer += sock.recv(4096)
    start = buffer.index(b'40{"sid":"') + 2
    sid = json.loads(buffer[start : buffer.index(b"}", start) + 1])["sid"]
    return sock, sid


def test_slow_client_is_dropped_and_others_get_everything() -> None:
    async def body(base: str) -> None:
        stalled, stalled_sid = await asyncio.to_thread(_stalled_client, base)
        try:
            fast = socketio.AsyncClient()
            received: list[int] = []
            fast.on("blob", lambda i, blob: received.append(i))
            await fast.connect(base, transports=["websocket"])
            count = 400
            # 400 x 64 KB = 25 MB: far more than the stalled socket's buffers hold.
            assert await fast.call("flood", (count, 65536), timeout=30) == count
            deadline = time.monotonic() + 20
            while len(received) < count and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert received == list(range(count))  # the fast client got all, in order
            reason = await fast.call("reason", stalled_sid, timeout=5)
            assert reason == "transport error"
            await fast.disconnect()
        finally:
            stalled.close()

    with run_uvicorn(APP) as base:
        asyncio.run(body(base))


async def _polling_socket(http: httpx.AsyncClient) -> tuple[str, str]:
    """A polling session joined to "/": (Engine.IO sid, socket id)."""
    opened = (await http.get("/socket.io/?EIO=4&transport=polling")).text
    sid = json.loads(opened[1:])["sid"]
    await http.post(f"/socket.io/?EIO=4&transport=polling&sid={sid}", content="40")
    reply = (await http.get(f"/socket.io/?EIO=4&transport=polling&sid={sid}")).text
    return sid, json.loads(reply[2:])["sid"]


def test_dropped_long_poll_closes_the_session() -> None:
    async def body(base: str) -> None:
        async with httpx.AsyncClient(base_url=base) as http:
            sid, socket_sid = await _polling_socket(http)
            # A GET that waits, then is abandoned by the client.
            with contextlib.suppress(httpx.TimeoutException):
                await http.get(f"/socket.io/?EIO=4&transport=polling&sid={sid}", timeout=0.3)
            await asyncio.sleep(0.3)
            gone = await http.get(f"/socket.io/?EIO=4&transport=polling&sid={sid}")
            assert gone.status_code == 400 and gone.json() == {"code": 1, "message": "Session ID unknown"}
        observer = socketio.AsyncClient()
        await observer.connect(base, transports=["websocket"])
        assert await observer.call("reason", socket_sid, timeout=5) == "transport error"
        await observer.disconnect()

    with run_uvicorn(APP) as base:
        asyncio.run(body(base))


def test_a_long_poll_dropped_at_once_is_noticed_too() -> None:
    """A GET dropped right after it was sent, with or without frames for it coming next: the
    session ends with "transport error" and a new GET is refused (nothing goes out to the dead
    request as if delivered)."""

    async def body(base: str, poke: bool) -> None:
        observer = socketio.AsyncClient()
        await observer.connect(base, transports=["websocket"])
        async with httpx.AsyncClient(base_url=base) as http:
            sid, socket_sid = await _polling_socket(http)
            with contextlib.suppress(httpx.TimeoutException):
                await http.get(f"/socket.io/?EIO=4&transport=polling&sid={sid}", timeout=0.05)
            if poke:
                await observer.call("poke", socket_sid, timeout=5)  # frames for the dropped GET
            await asyncio.sleep(0.5)
            gone = await http.get(f"/socket.io/?EIO=4&transport=polling&sid={sid}")
            assert gone.status_code == 400 and gone.json() == {"code": 1, "message": "Session ID unknown"}
        assert await observer.call("reason", socket_sid, timeout=5) == "transport error"
        await observer.disconnect()

    with run_uvicorn(APP) as base:
        asyncio.run(body(base, poke=False))
        asyncio.run(body(base, poke=True))
