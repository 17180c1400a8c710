"""Real clients against a uvicorn subprocess running the coalescing protocol (selected with
`--ws fastapi_realtime.uvicorn_ws:CoalescingWebSocketProtocol`): python-socketio's AsyncClient
(WebSocket only, and polling then upgrade), a raw websockets client speaking Engine.IO, and the
official socket.io-client under node.

The server's handlers emit many frames in one event-loop iteration, which the protocol writes
as one: every frame must arrive, in order, intact, and before a close that follows them.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from typing import Any

import pytest
import socketio
from websockets.asyncio.client import connect

from tests.conftest import NODE_DIR
from tests.uvicorn_ws.app import pattern

pytestmark = pytest.mark.timeout(60)

BURST = 500
BIG = 3_000_000  # well past the protocol's flush threshold and the transport's high-water mark


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


async def python_client_session(url: str, transports: list[str]) -> dict[str, Any]:
    client = socketio.AsyncClient(reconnection=False)
    got: dict[str, list[Any]] = {"m": [], "r": [], "big": []}
    client.on("m", lambda i: got["m"].append(i))
    client.on("r", lambda i: got["r"].append(i))
    client.on("big", lambda s: got["big"].append(s))
    await client.connect(url, transports=transports, wait_timeout=10)
    try:
        if "polling" in transports:
            for _ in range(100):  # connect() returns before the upgrade has finished
                if client.transport() == "websocket":
                    break
                await asyncio.sleep(0.05)
        out: dict[str, Any] = {"transport": client.transport()}
        out["burst_ack"] = await client.call("burst", BURST, timeout=10)
        out["burst"], got["m"] = got["m"], []
        out["big_ack"] = await client.call("big", BIG, timeout=10)
        out["big_order"], out["big"] = got["m"], got["big"]
        out["room_ack"] = await client.call("room_burst", BURST, timeout=10)
        out["room"] = got["r"]
        return out
    finally:
        await client.disconnect()


@pytest.mark.parametrize("transports", [["websocket"], ["polling", "websocket"]], ids=["websocket", "upgrade"])
def test_python_client(coalescing_url: str, transports: list[str]) -> None:
    r = run(python_client_session(coalescing_url, transports))
    assert r["transport"] == "websocket"
    assert r["burst_ack"] == BURST
    assert r["burst"] == list(range(BURST))
    assert r["big_ack"] == BIG
    assert r["big_order"] == [-1, -2]
    assert r["big"] == [pattern(BIG)]
    assert r["room_ack"] == BURST
    assert r["room"] == list(range(BURST))


def test_python_client_close_after_burst(coalescing_url: str) -> None:
    """The server closes the connection right after a burst: the close does not overtake it."""

    async def session() -> list[int]:
        client = socketio.AsyncClient(reconnection=False)
        got: list[int] = []
        closed = asyncio.Event()
        client.on("m", got.append)
        client.on("disconnect", lambda *reason: closed.set())
        await client.connect(coalescing_url, transports=["websocket"], wait_timeout=10)
        await client.emit("burst_close", BURST)
        await asyncio.wait_for(closed.wait(), 10)
        await client.disconnect()
        return got

    assert run(session()) == list(range(BURST))


async def raw_session(url: str) -> dict[str, Any]:
    """Engine.IO / Socket.IO spoken by hand over a plain WebSocket client."""
    ws_url = url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    async with connect(ws_url, max_size=None) as ws:
        opening = await ws.recv()
        assert isinstance(opening, str) and opening.startswith("0{")
        await ws.send("40")
        assert (await ws.recv()).startswith("40{")
        await ws.send(f'421["burst",{BURST}]')
        burst = [await ws.recv() for _ in range(BURST + 1)]
        await ws.send(f'422["big",{BIG}]')
        big = [await ws.recv() for _ in range(4)]
        await ws.send(f'423["burst_close",{BURST}]')
        tail = [frame async for frame in ws]  # until the server's close
        return {"burst": burst, "big": big, "tail": tail, "close_code": ws.close_code}


def test_raw_websocket_client(coalescing_url: str) -> None:
    r = run(raw_session(coalescing_url))
    assert r["burst"] == [f'42["m",{i}]' for i in range(BURST)] + [f"431[{BURST}]"]
    assert r["big"] == ['42["m",-1]', '42["big",' + json.dumps(pattern(BIG)) + "]", '42["m",-2]', f"432[{BIG}]"]
    # The burst, then the Socket.IO disconnect packet, all before the close frame.
    assert r["tail"][:BURST] == [f'42["m",{i}]' for i in range(BURST)]
    assert r["tail"][BURST:] == ["41"]
    assert r["close_code"] == 1000


@pytest.mark.parametrize("mode", ["websocket", "upgrade"])
def test_node_client(coalescing_url: str, mode: str) -> None:
    assert (NODE_DIR / "node_modules" / "socket.io-client").is_dir(), "socket.io-client missing: run `make node`"
    proc = subprocess.run(
        ["node", str(NODE_DIR.parent / "uvicorn_ws" / "client.mjs"), coalescing_url,
         str(NODE_DIR / "package.json"), mode, str(BURST), str(BIG)],
        capture_output=True, text=True, timeout=30,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert lines, proc.stdout + proc.stderr
    r = json.loads(lines[-1])
    assert "error" not in r, r
    assert r["transport"] == "websocket"
    assert r["burstAck"] == BURST
    assert r["burst"] == list(range(BURST))
    assert r["bigAck"] == BIG
    assert r["bigOrder"] == [-1, -2]
    expected = pattern(BIG)
    assert (r["bigLength"], r["bigHead"], r["bigTail"]) == (BIG, expected[:64], expected[-64:])
    assert r["roomAck"] == BURST
    assert r["room"] == list(range(BURST))
