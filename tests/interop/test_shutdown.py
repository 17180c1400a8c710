"""Stopping uvicorn (SIGTERM) disconnects every client with `server shutting down` and answers
pending long-polls at once, whether the Realtime was included or mounted (no lifespan wiring)."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path

import httpx
import pytest
import socketio

from tests.conftest import free_port, uvicorn_on

APP = "tests.interop.shutdown_app:app"

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize("mount", [False, True], ids=["included", "mounted"])
def test_sigterm_disconnects_everyone_at_once(tmp_path: Path, mount: bool) -> None:
    reasons = tmp_path / "reasons.txt"
    env = {"SHUTDOWN_REASONS": str(reasons), "SHUTDOWN_MOUNT": "1" if mount else "0"}
    with uvicorn_on(APP, free_port(), env) as base:
        outcome = asyncio.run(_stop_with_clients(base))
    assert outcome["poll_answer"].startswith("1") or "\x1e1" in outcome["poll_answer"]
    # Answered at once, long before the 20 s ping interval would have released the GET.
    assert outcome["poll_seconds"] < 5
    assert outcome["ws_reason"] is not None
    assert sorted(reasons.read_text().split("\n")[:-1]) == ["server shutting down"] * 2


async def _stop_with_clients(base: str) -> dict[str, object]:
    ws_client = socketio.AsyncClient(reconnection=False)
    ws_reason: list[str] = []
    ws_client.on("disconnect", lambda *reason: ws_reason.append(str(reason)))
    await ws_client.connect(base, transports=["websocket"])
    async with httpx.AsyncClient(base_url=base, timeout=15) as http:
        opened = await http.get("/socket.io/", params={"EIO": "4", "transport": "polling"})
        sid = json.loads(opened.text[1:])["sid"]
        query = {"EIO": "4", "transport": "polling", "sid": sid}
        await http.post("/socket.io/", params=query, content="40")
        connected = await http.get("/socket.io/", params=query)
        assert connected.text.startswith("40{")
        if "welcome" not in connected.text:
            assert "welcome" in (await http.get("/socket.io/", params=query)).text
        pending = asyncio.ensure_future(http.get("/socket.io/", params=query))
        await asyncio.sleep(0.3)
        assert not pending.done()
        started = time.monotonic()
        _signal_server(base)
        answer = await pending
        poll_seconds = time.monotonic() - started
    for _ in range(100):
        if ws_reason:
            break
        await asyncio.sleep(0.05)
    return {"poll_answer": answer.text, "poll_seconds": poll_seconds, "ws_reason": ws_reason[0] if ws_reason else None}


def _signal_server(base: str) -> None:
    port = int(base.rsplit(":", 1)[1])
    # The uvicorn process listening on the port (started by run_server in this test).
    import psutil  # type: ignore[import-untyped]

    for conn in psutil.net_connections("tcp"):
        if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
            psutil.Process(conn.pid).send_signal(signal.SIGTERM)
            return
    raise AssertionError("no server process found")
