"""The coalescing protocol builds on uvicorn internals: on a uvicorn it was not tested with, or
whose protocol no longer has the parts it relies on, it refuses to load, saying which uvicorn
releases it supports and how to turn it off."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest
import uvicorn
from uvicorn.protocols.websockets import websockets_sansio_impl

from fastapi_realtime import uvicorn_ws
from fastapi_realtime.uvicorn_ws import SUPPORTED_UVICORN, TESTED_UVICORN, UnsupportedUvicornError, check_uvicorn
from tests.conftest import ROOT, free_port

pytestmark = pytest.mark.timeout(30)


def refusal(monkeypatch: pytest.MonkeyPatch) -> str:
    with pytest.raises(UnsupportedUvicornError) as info:
        check_uvicorn()
    message = str(info.value)
    assert SUPPORTED_UVICORN in message and "--ws websockets-sansio" in message, message
    return message


def test_the_installed_uvicorn_is_supported() -> None:
    check_uvicorn()
    assert uvicorn.__version__ in TESTED_UVICORN


@pytest.mark.parametrize("version", ["0.52.0", "0.56.0", "1.0.0", "unknown"])
def test_a_version_outside_the_range_is_refused(monkeypatch: pytest.MonkeyPatch, version: str) -> None:
    monkeypatch.setattr(uvicorn, "__version__", version)
    assert f"uvicorn {version} is outside" in refusal(monkeypatch)


def test_a_missing_protocol_class_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(websockets_sansio_impl, "WebSocketsSansIOProtocol")
    assert "no WebSocketsSansIOProtocol" in refusal(monkeypatch)


def test_a_send_that_no_longer_waits_on_writable_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    async def send(self: object, message: object) -> None:  # a reworked send: no `writable`
        self.transport.write(b"")  # type: ignore[attr-defined]

    monkeypatch.setattr(websockets_sansio_impl.WebSocketsSansIOProtocol, "send", send)
    assert "send no longer uses writable, wait" in refusal(monkeypatch)


def test_a_missing_method_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(websockets_sansio_impl.WebSocketsSansIOProtocol, "pause_writing")
    assert "pause_writing is missing" in refusal(monkeypatch)


def test_importing_the_module_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(uvicorn, "__version__", "0.99.0")
    monkeypatch.delitem(sys.modules, "fastapi_realtime.uvicorn_ws")
    with pytest.raises(ImportError, match=r"supports uvicorn>=0\.52\.1,<0\.56 .* 0\.99\.0"):
        importlib.import_module("fastapi_realtime.uvicorn_ws")
    assert uvicorn_ws.CoalescingWebSocketProtocol  # the copy loaded before is untouched


def test_uvicorns_command_line_refuses_to_start() -> None:
    """`uvicorn ... --ws fastapi_realtime.uvicorn_ws:...` on an unsupported uvicorn stops at
    startup with the message, instead of serving with a protocol that may misbehave."""
    port = free_port()
    code = (
        "import sys, uvicorn; uvicorn.__version__ = '0.99.0'; "
        "sys.argv = ['uvicorn', 'tests.uvicorn_ws.app:app', '--port', sys.argv[1], "
        "'--ws', 'fastapi_realtime.uvicorn_ws:CoalescingWebSocketProtocol']; uvicorn.main()"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(port)], cwd=ROOT, capture_output=True, text=True,
                          timeout=20)
    assert proc.returncode != 0
    assert "UnsupportedUvicornError" in proc.stderr and "--ws websockets-sansio" in proc.stderr, proc.stderr
    assert "Uvicorn running" not in proc.stderr
