"""What one traced session must look like, for the in-process and the uvicorn tests alike
(spans as tests/tracing/apps.py `dump` writes them)."""

from __future__ import annotations

from typing import Any

from .apps import PARENT_ID, TRACE_ID

Span = dict[str, Any]
# What the sessions of check_session ran, and the spans each handler makes.
EVENTS = {"work": ["work.inner"], "slow": ["slow.before", "slow.after"], "side": ["side.inner"]}


def named(spans: list[Span], name: str) -> list[Span]:
    return [span for span in spans if span["name"] == name]


def one(spans: list[Span], name: str) -> Span:
    found = named(spans, name)
    assert len(found) == 1, (name, [span["name"] for span in spans])
    return found[0]


def check_children(spans: list[Span], parent: Span, names: list[str]) -> None:
    for name in names:
        child = one(spans, name)
        assert (child["trace_id"], child["parent"]) == (parent["trace_id"], parent["span_id"]), name


def check_session(spans: list[Span], transport: str, traced: bool = True) -> None:
    """A session that sent `traceparent` (when `traced`), connected to "/" and ran EVENTS."""
    connect = one(spans, "socketio.connect /")
    assert connect["kind"] == "SERVER" and connect["status"] == "UNSET"
    attributes = connect["attributes"]
    assert attributes["socketio.namespace"] == "/" and attributes["engineio.transport"] == transport
    sid, eio_sid = attributes["socketio.sid"], attributes["engineio.sid"]
    assert sid and eio_sid and sid != eio_sid
    if traced:
        # The connect is part of the client's trace: a child of the handshake's context.
        assert (connect["trace_id"], connect["parent"]) == (TRACE_ID, PARENT_ID)
    else:
        assert connect["parent"] is None
    check_children(spans, connect, ["connect.inner"])
    traces = set()
    for event, inner in EVENTS.items():
        span = one(spans, f"socketio.event {event}")
        assert span["kind"] == "CONSUMER" and span["status"] == "UNSET"
        assert span["attributes"] == {
            "socketio.namespace": "/",
            "socketio.event": event,
            "socketio.sid": sid,
            "engineio.sid": eio_sid,
            "engineio.transport": transport,
        }
        # A trace of its own, linked to the handshake's context.
        assert span["parent"] is None and span["trace_id"] != TRACE_ID
        assert span["links"] == ([[TRACE_ID, PARENT_ID]] if traced else [])
        check_children(spans, span, inner)
        traces.add(span["trace_id"])
    assert len(traces) == len(EVENTS)  # no run's span stayed current for the next
