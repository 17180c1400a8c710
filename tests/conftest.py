"""Shared fixtures: real uvicorn servers on 127.0.0.1, started as subprocesses."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NODE_DIR = ROOT / "tests" / "interop"
WS_IMPL = os.environ.get("UVICORN_WS", "websockets-sansio")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early with code {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"server did not listen on {port} within {timeout}s")


@contextlib.contextmanager
def run_server(args: list[str], port: int, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """Run `python <args>` (a server listening on `port`) for the duration of the block."""
    proc = subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
    try:
        wait_for_port(port, proc)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def uvicorn_on(app: str, port: int, env: dict[str, str] | None = None) -> Iterator[str]:
    """Serve the ASGI app `module:attr` with uvicorn on `port` (fixed, so a test can restart
    it where its clients expect it); yields its base URL."""
    args = ["-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
            "--ws", WS_IMPL, "--log-level", "warning"]
    with run_server(args, port, env):
        yield f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def run_uvicorn(app: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """Serve the ASGI app `module:attr` with uvicorn on a free port; yields its base URL."""
    with uvicorn_on(app, free_port(), env) as base:
        yield base


@pytest.fixture(scope="session")
def conformance_url() -> Iterator[str]:
    """The conformance server (raw Engine.IO echo at /engine.io/, Socket.IO at /socket.io/)."""
    port = free_port()
    with run_server(["-m", "fastapi_realtime.conformance", "--port", str(port)], port):
        yield f"http://127.0.0.1:{port}"
