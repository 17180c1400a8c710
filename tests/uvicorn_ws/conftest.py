"""A uvicorn subprocess serving tests/uvicorn_ws/app.py with the coalescing protocol, selected
by import string on uvicorn's command line (as a user would)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import free_port, run_server

PROTOCOL = "fastapi_realtime.uvicorn_ws:CoalescingWebSocketProtocol"
APP = "tests.uvicorn_ws.app:app"


@pytest.fixture(scope="package")
def coalescing_url() -> Iterator[str]:
    port = free_port()
    args = ["-m", "uvicorn", APP, "--host", "127.0.0.1", "--port", str(port), "--ws", PROTOCOL,
            "--log-level", "warning"]
    with run_server(args, port):
        yield f"http://127.0.0.1:{port}"
