"""The traced app of tests/tracing: handlers that make spans of their own, wait, fail, refuse.

`otel_app` serves it under uvicorn; the in-process tests build it with their own provider.
"""

from __future__ import annotations

import asyncio
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from fastapi_realtime import ConnectionRejected, Realtime, Socket

# A W3C traceparent the client sends on the handshake (version, trace id, parent id, sampled).
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"


def memory_provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def make_app(provider: TracerProvider, **tracing: Any) -> Realtime:
    tracer = provider.get_tracer("tests.tracing")
    rt = Realtime()

    @rt.on("connect")
    async def connect(socket: Socket, auth: Any) -> None:
        with tracer.start_as_current_span("connect.inner"):
            pass
        if auth == {"refuse": True}:
            raise ConnectionRejected("go away")
        if auth == {"crash": True}:
            raise RuntimeError("connect bug")

    @rt.on("work")
    async def work(socket: Socket, n: int) -> int:
        # No await: run by the WebSocket reader itself (fastapi_realtime/transports/websocket.py _run_here).
        with tracer.start_as_current_span("work.inner"):
            return n + 1

    @rt.on("slow")
    async def slow(socket: Socket) -> str:
        # Waits: the reader hands reading off, and the run goes on in the same task and context.
        with tracer.start_as_current_span("slow.before"):
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.01)
        with tracer.start_as_current_span("slow.after"):
            return "done"

    @rt.on("side", concurrent=True)
    async def side(socket: Socket) -> str:
        await asyncio.sleep(0)
        with tracer.start_as_current_span("side.inner"):
            return "side"

    @rt.on("echo")
    async def echo(socket: Socket, *args: Any) -> None:
        return None

    @rt.on("fail")
    async def fail(socket: Socket) -> None:
        with tracer.start_as_current_span("fail.inner"):
            raise KeyError("boom")

    rt.enable_tracing(tracer_provider=provider, **tracing)
    return rt


def dump(span: ReadableSpan) -> dict[str, Any]:
    """A finished span as JSON (what the uvicorn app sends back in an ack)."""
    context = span.get_span_context()
    assert context is not None
    return {
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": f"{context.trace_id:032x}",
        "span_id": f"{context.span_id:016x}",
        "parent": None if span.parent is None else f"{span.parent.span_id:016x}",
        "parent_trace_id": None if span.parent is None else f"{span.parent.trace_id:032x}",
        "links": [[f"{link.context.trace_id:032x}", f"{link.context.span_id:016x}"] for link in span.links],
        "attributes": dict(span.attributes or {}),
        "status": span.status.status_code.name,
        "description": span.status.description,
        "events": [event.name for event in span.events],
    }
