"""OpenTelemetry traces (fastapi_realtime/tracing.py), in-process through the test client: spans
go to the SDK's in-memory exporter of a TracerProvider given to enable_tracing."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.propagators.textmap import CarrierT, Getter, default_getter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from fastapi_realtime import Realtime
from fastapi_realtime.testing import ConnectionRefused, RealtimeTestClient
from fastapi_realtime.tracing import Tracing, enable_tracing

from .apps import TRACE_ID, TRACEPARENT, dump, make_app, memory_provider
from .checks import Span, check_session, named, one

HEADERS = {"traceparent": TRACEPARENT}


@pytest.fixture
def memory() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    provider, exporter = memory_provider()
    yield provider, exporter
    provider.shutdown()


def finished(exporter: InMemorySpanExporter) -> list[Span]:
    return [dump(span) for span in exporter.get_finished_spans()]


def run_events(sock: Any) -> None:
    assert sock.call("work", 1) == 2
    assert sock.call("slow") == "done"
    assert sock.call("side") == "side"


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_connect_and_event_spans(memory: Any, transport: str) -> None:
    provider, exporter = memory
    with RealtimeTestClient(make_app(provider)) as client:
        sock = client.connect(headers=HEADERS, transport=transport)
        run_events(sock)
        sock.disconnect()
    check_session(finished(exporter), transport)


def test_without_traceparent_spans_are_roots(memory: Any) -> None:
    provider, exporter = memory
    with RealtimeTestClient(make_app(provider)) as client:
        run_events(client.connect())
    check_session(finished(exporter), "websocket", traced=False)


def test_refused_connect_is_an_error(memory: Any) -> None:
    provider, exporter = memory
    with RealtimeTestClient(make_app(provider)) as client:
        with pytest.raises(ConnectionRefused):
            client.connect(auth={"refuse": True}, headers=HEADERS)
        with pytest.raises(ConnectionRefused):
            client.connect(auth={"crash": True}, headers=HEADERS)
    spans = finished(exporter)
    refused, crashed = named(spans, "socketio.connect /")
    assert (refused["status"], refused["description"]) == ("ERROR", "go away")
    assert (crashed["status"], crashed["description"]) == ("ERROR", "Internal server error")
    for span in (refused, crashed):
        assert span["trace_id"] == TRACE_ID
    for inner, span in zip(named(spans, "connect.inner"), (refused, crashed)):
        assert inner["parent"] == span["span_id"]




def test_failing_handler_is_an_error(memory: Any) -> None:
    provider, exporter = memory
    rt = make_app(provider)
    # A second observer's span is current inside the handler: each still marks its own.
    other, other_exporter = memory_provider()
    rt.enable_tracing(tracer_provider=other)
    with RealtimeTestClient(rt) as client:
        sock = client.connect(headers=HEADERS)
        sock.call("fail")  # the client gets the server's internal error as the ack
        assert sock.call("work", 1) == 2
    spans = finished(exporter)
    for span in (one(spans, "socketio.event fail"), one(finished(other_exporter), "socketio.event fail")):
        assert (span["status"], span["description"]) == ("ERROR", "KeyError: 'boom'")
        assert span["events"] == ["exception"] and span["attributes"]["error.type"] == "KeyError"
    # The handler's own span is a child of the span current in it (the later observer's).
    assert one(spans, "fail.inner")["parent"] == one(finished(other_exporter), "socketio.event fail")["span_id"]
    # The next run is not touched by it.
    assert one(spans, "socketio.event work")["status"] == "UNSET"


def test_crashing_connect_records_the_exception(memory: Any) -> None:
    provider, exporter = memory
    with RealtimeTestClient(make_app(provider)) as client:
        with pytest.raises(ConnectionRefused):
            client.connect(auth={"crash": True})
    span = one(finished(exporter), "socketio.connect /")
    assert span["events"] == ["exception"] and span["attributes"]["error.type"] == "RuntimeError"


def test_unregistered_events_share_a_name_and_args_are_opt_in(memory: Any) -> None:
    provider, exporter = memory
    with RealtimeTestClient(make_app(provider, record_args=True)) as client:
        sock = client.connect()
        sock.emit("made-up-1", 1)
        sock.emit("made-up-2")
        sock.call("echo", 1, "x", b"\x00\x01", {"k": [True, None]})
    spans = finished(exporter)
    # A client picks event names: the span name stays one for all it made up.
    made_up = named(spans, "socketio.event *")
    assert [span["attributes"]["socketio.event"] for span in made_up] == ["made-up-1", "made-up-2"]
    assert [span["attributes"]["socketio.event.args"] for span in made_up] == ["[1]", "[]"]
    echo = one(spans, "socketio.event echo")
    assert echo["attributes"]["socketio.event.args"] == '[1, "x", "<2 bytes>", {"k": [true, null]}]'


def test_args_are_not_recorded_by_default(memory: Any) -> None:
    provider, exporter = memory
    with RealtimeTestClient(make_app(provider)) as client:
        client.connect().call("echo", "secret")
    assert "socketio.event.args" not in one(finished(exporter), "socketio.event echo")["attributes"]


def test_the_request_span_current_at_the_handshake_is_the_context(memory: Any) -> None:
    """With ASGI instrumentation, the handshake request's own server span (a child of the
    client's traceparent) is current when the session opens: connects hang under it, events
    link to it. A stand-in middleware makes that span here."""
    provider, exporter = memory
    rt = make_app(provider)
    tracer = provider.get_tracer("asgi")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            return await rt(scope, receive, send)
        headers = {name.decode(): value.decode() for name, value in scope["headers"]}
        parent = TraceContextTextMapPropagator().extract(headers)
        with tracer.start_as_current_span(f"asgi {scope['type']}", context=parent):
            await rt(scope, receive, send)

    with RealtimeTestClient(app) as client:
        client.connect(headers=HEADERS).call("work", 1)
    spans = finished(exporter)
    request = one(spans, "asgi websocket")
    assert request["trace_id"] == TRACE_ID
    assert one(spans, "socketio.connect /")["parent"] == request["span_id"]
    assert one(spans, "socketio.event work")["links"] == [[TRACE_ID, request["span_id"]]]


class CountingPropagator(TraceContextTextMapPropagator):
    def __init__(self) -> None:
        self.calls = 0

    def extract(self, carrier: CarrierT, context: Any = None, getter: Getter[CarrierT] = default_getter) -> Any:
        self.calls += 1
        return super().extract(carrier, context, getter)


def test_the_context_is_extracted_once_per_session(memory: Any) -> None:
    provider, exporter = memory
    propagator = CountingPropagator()
    rt = make_app(provider, propagator=propagator)
    with RealtimeTestClient(rt) as client:
        sock = client.connect(headers=HEADERS)
        run_events(sock)
        assert propagator.calls == 1
        # Enabled while a session is open: taken from its headers on first use, then kept.
        late = CountingPropagator()
        rt.enable_tracing(tracer_provider=provider, propagator=late)
        sock.call("work", 1)
        sock.call("work", 2)
        assert (propagator.calls, late.calls) == (1, 1)
        sock.disconnect()
    assert len(named(finished(exporter), "socketio.event work")) == 5  # twice by two observers, once before


def test_unobserve_stops_the_spans(memory: Any) -> None:
    provider, exporter = memory
    rt = Realtime()
    rt.on("work")(lambda socket: None)
    tracing = enable_tracing(rt, tracer_provider=provider)
    assert isinstance(tracing, Tracing) and rt.observation.observer is tracing
    rt.unobserve(tracing)
    assert rt.observation.observer is None
    with RealtimeTestClient(rt) as client:
        client.connect().call("work")
    assert exporter.get_finished_spans() == ()


NO_SDK = textwrap.dedent(
    """
    import sys
    from importlib.abc import MetaPathFinder

    class NoSDK(MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "opentelemetry.sdk" or name.startswith("opentelemetry.sdk."):
                raise ImportError("no SDK here")
            return None

    sys.meta_path.insert(0, NoSDK())

    from fastapi_realtime import Realtime, Socket
    from fastapi_realtime.testing import RealtimeTestClient

    rt = Realtime()

    @rt.on("work")
    async def work(socket: Socket, n: int) -> int:
        from opentelemetry import trace
        with trace.get_tracer("app").start_as_current_span("inner"):
            return n + 1

    # Nothing of tracing until it is asked for (FastAPI may import the API for its own telemetry).
    assert rt.observation.observer is None and "fastapi_realtime.tracing" not in sys.modules
    tracing = rt.enable_tracing()
    assert rt.observation.observer is tracing
    with RealtimeTestClient(rt) as client:
        sock = client.connect(headers={"traceparent": %r})
        assert sock.call("work", 1) == 2
    assert not [m for m in sys.modules if m.startswith("opentelemetry.sdk")]
    print("ok")
    """
) % TRACEPARENT


def test_the_api_alone_is_enough() -> None:
    """No SDK: the API's no-op tracer makes the spans, and a server with tracing works."""
    done = subprocess.run([sys.executable, "-c", NO_SDK], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
