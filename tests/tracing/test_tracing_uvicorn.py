"""OpenTelemetry traces under a real uvicorn (tests/tracing/otel_app.py), driven by
python-socketio's AsyncClient sending `traceparent` on the handshake; the app hands its
finished spans back as the ack of a `spans` event."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import socketio

from .apps import TRACEPARENT
from .checks import EVENTS, Span, check_children, check_session, one


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    from tests.conftest import run_uvicorn

    with run_uvicorn("tests.tracing.otel_app:app") as base:
        yield base


async def session(url: str, transport: str, *events: str) -> list[Span]:
    """Connect with a traceparent, run `events` (each acknowledged), then fetch the spans of
    this session (by its Engine.IO id: the module's server serves every test)."""
    client = socketio.AsyncClient()
    await client.connect(url, headers={"traceparent": TRACEPARENT}, transports=[transport])
    sid = client.eio.sid
    assert sid is not None
    try:
        for event in events:
            await client.call(event, 1 if event == "work" else None, timeout=10)
        spans: list[Span] = await client.call("spans", timeout=10)
    finally:
        await client.disconnect()
    ours = _ids(spans, sid)
    return [span for span in spans if span["span_id"] in ours or span["parent"] in ours]


def _ids(spans: list[Span], eio_sid: str) -> set[str]:
    return {span["span_id"] for span in spans if span["attributes"].get("engineio.sid") == eio_sid}


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_spans_of_a_session(url: str, transport: str) -> None:
    spans = asyncio.run(session(url, transport, *EVENTS))
    check_session(spans, transport)


def test_failing_handler_is_an_error(url: str) -> None:
    spans = asyncio.run(session(url, "websocket", "fail"))
    span: dict[str, Any] = one(spans, "socketio.event fail")
    assert (span["status"], span["description"]) == ("ERROR", "KeyError: 'boom'")
    assert span["events"] == ["exception"] and span["attributes"]["error.type"] == "KeyError"
    check_children(spans, span, ["fail.inner"])
