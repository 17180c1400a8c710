"""Shared fixtures: real uvicorn servers on 127.0.0.1, started as subprocesses."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
def run_server(
    args: list[str], port: int, env: dict[str, str] | None = None, output: Any = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `python <args>` (a server listening on `port`) for the duration of the block;
    `output` (a file) takes its stdout and stderr when given.

    Without `output` the server's output is kept too, shown (pytest shows it for a failing
    test), and checked as the server stops: an exception that reached the ASGI server fails
    the test, whatever the test itself looked at.
    """
    own = output is None
    if own:
        output = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        stdout=output,
        stderr=subprocess.STDOUT,
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
        if own:
            output.seek(0)
            text = output.read().decode(errors="replace")
            output.close()
            sys.stderr.write(text)
            assert "Exception in ASGI application" not in text, text


@contextlib.contextmanager
def uvicorn_on(app: str, port: int, env: dict[str, str] | None = None) -> Iterator[str]:
    """Serve the ASGI app `module:attr` with uvicorn on `port` (fixed, so a test can restart
    it where its clients expect it); yields its base URL."""
    args = ["-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
            "--ws", WS_IMPL, "--log-level", "warning"]
    with run_server(args, port, env):
        yield f"http://127.0.0.1:{port}"


class ServerLog:
    """What a server process printed, read back while it runs."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def text(self) -> str:
        return self.path.read_text(errors="replace")

    def assert_clean(self) -> None:
        """No exception reached the ASGI server, and nothing else crashed."""
        text = self.text()
        assert "Exception in ASGI application" not in text, text
        assert "Traceback" not in text, text


@contextlib.contextmanager
def logged_uvicorn(
    app: str, tmp_path: Path, env: dict[str, str] | None = None, log_level: str = "info"
) -> Iterator[tuple[str, ServerLog]]:
    """Serve `module:attr` with uvicorn on a free port, its output kept in a file; yields the
    base URL and the log."""
    port = free_port()
    log_path = tmp_path / f"server-{port}.log"
    args = ["-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
            "--ws", WS_IMPL, "--log-level", log_level]
    with open(log_path, "wb") as output, run_server(args, port, env, output):
        yield f"http://127.0.0.1:{port}", ServerLog(log_path)


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
