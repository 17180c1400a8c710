"""The coalescing protocol on every uvicorn release the package allows (pyproject's `server`
extra: uvicorn>=0.52.1; the module's TESTED_UVICORN), and its refusal on the release before.

One venv made with uv holds the app's dependencies at the versions of the test venv; each
uvicorn release is installed into it in turn (uv's cache makes a reinstall a fraction of a
second) and serves tests/uvicorn_ws/app.py from the checkout with
`--ws fastapi_realtime.uvicorn_ws:CoalescingWebSocketProtocol`, and python-socketio's client
runs a short burst over WebSocket, then one the server closes after.

Needs the network (PyPI) for uv the first time; FASTAPI_REALTIME_SKIP_PACKAGING=1 skips it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from importlib.metadata import version as installed_version
from pathlib import Path

import pytest
import socketio

from fastapi_realtime.uvicorn_ws import TESTED_UVICORN
from tests.conftest import ROOT, free_port, wait_for_port
from tests.packaging.floors import uv

PROTOCOL = "fastapi_realtime.uvicorn_ws:CoalescingWebSocketProtocol"
BURST = 300
# What the app needs besides uvicorn, at the test venv's versions.
DEPENDENCIES = ["fastapi", "starlette", "pydantic", "anyio", "websockets", "wsproto"]

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(
        os.environ.get("FASTAPI_REALTIME_SKIP_PACKAGING") == "1", reason="FASTAPI_REALTIME_SKIP_PACKAGING=1"
    ),
]


@pytest.fixture(scope="module")
def python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("uvicorn-versions") / "venv"
    uv("venv", "--quiet", "--python", sys.executable, venv)
    py = venv / "bin" / "python"
    uv("pip", "install", "--quiet", "--python", py, *(f"{d}=={installed_version(d)}" for d in DEPENDENCIES))
    return py


def install_uvicorn(python: Path, release: str) -> None:
    uv("pip", "install", "--quiet", "--python", python, f"uvicorn=={release}")
    got = subprocess.run([python, "-c", "import uvicorn; print(uvicorn.__version__)"], capture_output=True,
                         text=True, check=True).stdout.strip()
    assert got == release


def start(python: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    # From the checkout: `-m` puts it first on sys.path, so fastapi_realtime is this one.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    with open(log, "wb") as out:
        return subprocess.Popen(
            [python, "-m", "uvicorn", "tests.uvicorn_ws.app:app", "--host", "127.0.0.1", "--port", str(port),
             "--ws", PROTOCOL, "--log-level", "warning"],
            cwd=ROOT, env={**env, "PYTHONUNBUFFERED": "1"}, stdout=out, stderr=subprocess.STDOUT,
        )


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def smoke(url: str) -> tuple[object, list[int], list[int]]:
    client = socketio.AsyncClient(reconnection=False)
    got: list[int] = []
    closed = asyncio.Event()
    client.on("m", got.append)
    client.on("disconnect", lambda *reason: closed.set())
    await client.connect(url, transports=["websocket"], wait_timeout=10)
    ack = await client.call("burst", BURST, timeout=10)
    burst, got[:] = list(got), []
    await client.emit("burst_close", BURST)  # the server closes right after the burst
    await asyncio.wait_for(closed.wait(), 10)
    await client.disconnect()
    return ack, burst, got


@pytest.mark.parametrize("release", TESTED_UVICORN)
def test_serves_on_every_allowed_uvicorn(python: Path, release: str, tmp_path: Path) -> None:
    install_uvicorn(python, release)
    serve_and_smoke(python, tmp_path)


@pytest.mark.parametrize("websockets_release", ["14.0", "15.0.1"])
def test_serves_on_older_websockets(python: Path, websockets_release: str, tmp_path: Path) -> None:
    """The `server` extra allows websockets>=14; websockets 16 renamed the Protocol attributes
    the protocol reads (cur_size, max_size)."""
    install_uvicorn(python, TESTED_UVICORN[-1])
    uv("pip", "install", "--quiet", "--python", python, f"websockets=={websockets_release}")
    try:
        serve_and_smoke(python, tmp_path)
    finally:
        uv("pip", "install", "--quiet", "--python", python, f"websockets=={installed_version('websockets')}")


def serve_and_smoke(python: Path, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "server.log"
    proc = start(python, port, log)
    try:
        wait_for_port(port, proc)
        ack, burst, before_close = asyncio.run(asyncio.wait_for(smoke(f"http://127.0.0.1:{port}"), 30))
    finally:
        stop(proc)
        output = log.read_text(errors="replace")
    assert "Traceback" not in output, output
    assert ack == BURST
    assert burst == list(range(BURST))
    assert before_close == list(range(BURST))


def test_refuses_the_release_before(python: Path, tmp_path: Path) -> None:
    """uvicorn 0.52.0 (below the package's floor, and outside the module's range): uvicorn
    stops at startup with the module's message."""
    install_uvicorn(python, "0.52.0")
    log = tmp_path / "server.log"
    proc = start(python, free_port(), log)
    try:
        proc.wait(20)
    finally:
        stop(proc)
    output = log.read_text(errors="replace")
    assert proc.returncode != 0
    assert "UnsupportedUvicornError" in output and "uvicorn 0.52.0 is outside" in output, output
