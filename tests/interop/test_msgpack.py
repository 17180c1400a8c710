"""parser="msgpack": socket.io-client with socket.io-msgpack-parser (npm) and python-socketio's
msgpack serializer, over every transport, against a real uvicorn server."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import socketio

from tests.conftest import run_uvicorn

HERE = Path(__file__).parent
APP = "tests.interop.msgpack_app:app"

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with run_uvicorn(APP) as base:
        yield base


@pytest.mark.parametrize("mode", ["polling", "websocket", "upgrade"])
def test_node_client_with_the_msgpack_parser(url: str, mode: str) -> None:
    run = subprocess.run(["node", str(HERE / "msgpack.mjs"), url, mode], capture_output=True, text=True, timeout=20)
    assert run.returncode == 0, run.stdout + run.stderr
    seen: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen["welcome"]["auth"] == {"token": "t1"} and len(seen["welcome"]["id"]) == 20
    assert seen["echoed"] == ["héllo ✓", 42, 1.5, None, True, {"nested": [1, {"deep": "x"}]}, {"$bin": "010203"}]
    assert seen["answered"] == "ARE YOU THERE"
    assert seen["received"] == ["to everyone", {"$bin": "0001ff"}]
    assert seen["transport"] == ("polling" if mode == "polling" else "websocket")


@pytest.mark.parametrize("transport", ["polling", "websocket"])
def test_python_client_with_the_msgpack_serializer(url: str, transport: str) -> None:
    async def body() -> None:
        client = socketio.AsyncClient(serializer="msgpack")
        welcome: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        client.on("welcome", lambda data: welcome.set_result(data))
        client.on("question", lambda q: q.upper())
        await client.connect(url, transports=[transport], auth={"token": "py"})
        try:
            assert (await asyncio.wait_for(welcome, 5))["auth"] == {"token": "py"}
            assert await client.call("echo", ("a", 1, b"\x00\xff"), timeout=5) == ("a", 1, b"\x00\xff")
            assert await client.call("ask", "hi", timeout=5) == "HI"
        finally:
            await client.disconnect()

    asyncio.run(asyncio.wait_for(body(), 20))


def test_a_text_client_is_refused(url: str) -> None:
    """A client on the default parser cannot talk to a msgpack server: its connection ends."""
    async def body() -> None:
        client = socketio.AsyncClient()
        with pytest.raises(socketio.exceptions.ConnectionError):
            await client.connect(url, transports=["websocket"], wait_timeout=2)
        await client.disconnect()

    asyncio.run(asyncio.wait_for(body(), 20))
