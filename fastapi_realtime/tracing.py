"""OpenTelemetry traces of a Realtime server: a span per namespace connect and per handled event.

`enable_tracing(realtime)` (or `realtime.enable_tracing()`) installs a `Tracing` observer
(fastapi_realtime.observe); until then nothing is installed and nothing costs. Only
opentelemetry-api is needed (extra `tracing`): without an SDK the API's tracer is a no-op.

The spans, and why they hang where they do:

- `socketio.connect <nsp>`, kind SERVER: the admission (middlewares, auth, connect handler) is
  the server's answer to the client's request to join, CONNECT in, CONNECT or CONNECT_ERROR
  out, and it follows the handshake closely. Its parent is the context of the HTTP request
  that opened the Engine.IO session, so a client that sent `traceparent` sees it in its trace.
- `socketio.event <event>`, kind CONSUMER: a client's event is a message processed on a
  long-lived connection (OpenTelemetry messaging "process" spans). Packets carry no trace
  context of their own, and making hours of events children of one short handshake request
  would stretch that trace without end, so each event starts a trace of its own with a Link
  to the handshake's context (the messaging conventions' way to relate a consumer to context
  it did not inherit). Spans the handler creates are its children: it is current while the
  handler runs (attached in handler_started, detached in handler_finished, both in the
  handler's task and contextvars context).

The handshake's context is what was current when the session opened (a server span of ASGI
instrumentation, if any), else what the propagator extracts from the handshake's headers; it is
taken once per Engine.IO session and kept until the session closes.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.trace import Link, NonRecordingSpan, Span, SpanKind, Status, StatusCode, TracerProvider
from opentelemetry.util.types import AttributeValue

from ._version import __version__
from .observe import Observer

if TYPE_CHECKING:
    from .server import Realtime

__all__ = ["Tracing", "enable_tracing"]

# An explicit empty parent: event spans are roots (linked, see above), whatever the ambient
# context of the task that runs them (the WebSocket reader's, or a polling POST's).
_ROOT = Context()
# Recorded arguments are cut here: they are the client's, of any size.
ARGS_LIMIT = 1024
_SessionTrace = tuple[Context, Sequence[Link]]


def enable_tracing(
    realtime: Realtime,
    *,
    tracer_provider: TracerProvider | None = None,
    propagator: TextMapPropagator | None = None,
    record_args: bool = False,
) -> Tracing:
    """Trace `realtime`'s connects and events; returns the observer (`realtime.unobserve(it)`
    stops). `tracer_provider`: default the global one; `propagator`: reads the handshake's
    headers, default the global one (W3C traceparent/tracestate and baggage unless configured);
    `record_args`: add the event's arguments as JSON (`socketio.event.args`, cut at ARGS_LIMIT
    characters), off by default since they may hold what must not leave the server."""
    tracing = Tracing(tracer_provider=tracer_provider, propagator=propagator, record_args=record_args)
    realtime.observe(tracing)
    return tracing


class Tracing(Observer):
    """The observer behind enable_tracing; a token is (span, attach token, run token)."""

    def __init__(
        self,
        *,
        tracer_provider: TracerProvider | None = None,
        propagator: TextMapPropagator | None = None,
        record_args: bool = False,
    ) -> None:
        # Looked up once: with no provider given, the API hands out a proxy that follows a
        # global provider set later.
        self._tracer = trace.get_tracer("fastapi_realtime", __version__, tracer_provider=tracer_provider)
        self._propagator = propagator
        self._record_args = record_args
        # Engine.IO session -> its handshake context and the links of its events; sessions
        # take no weak references (__slots__), so entries leave in engine_closed.
        self._sessions: dict[Any, _SessionTrace] = {}
        # Span names of registered events only: a client picks event names, and span names
        # must stay few (unregistered ones share "socketio.event *").
        self._names: dict[str, str] = {}
        # Arguments heard by event_received, waiting for their run's handler_started (FIFO:
        # concurrent handlers start in the order their events came).
        self._args: dict[Any, deque[str]] = {}
        # The span of the run (connect or event) this context is in, for handler_failed. A
        # variable of its own, not the OTel context: a handler's own spans and a second
        # observer replace the current span there. One per observer, so a few per process.
        self._run: ContextVar[Span | None] = ContextVar(f"fastapi_realtime.tracing.{id(self):x}", default=None)

    # -- the handshake's context ---------------------------------------------------------------
    def engine_opened(self, session: Any) -> None:
        # Called in the handshake request's task: an ASGI instrumentation's span is current here.
        current = trace.get_current_span().get_span_context()
        self._sessions[session] = self._extract(session, current if current.is_valid else None)

    def engine_closed(self, session: Any, reason: str) -> None:
        self._sessions.pop(session, None)

    def _session(self, session: Any) -> _SessionTrace:
        found = self._sessions.get(session)
        if found is None:
            # Opened before tracing was enabled: from its headers, once.
            found = self._extract(session, None)
            if not session.closed:  # engine_closed already ran for a closed one: no entry to leak
                self._sessions[session] = found
        return found

    def _extract(self, session: Any, current: trace.SpanContext | None) -> _SessionTrace:
        carrier: dict[str, list[str]] = {}
        for name, value in session.scope.get("headers", ()):
            carrier.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
        # From an empty context, not the current one: the result serves the whole session.
        if self._propagator is None:
            context = propagate.extract(carrier, context=Context())
        else:
            context = self._propagator.extract(carrier, context=Context())
        if current is not None:
            # Keeps the headers' baggage; holds the span's identity, not the (ending) span.
            context = trace.set_span_in_context(NonRecordingSpan(current), context)
        parent = trace.get_current_span(context).get_span_context()
        return context, ((Link(parent),) if parent.is_valid else ())

    # -- connects ------------------------------------------------------------------------------
    def connect_started(self, nsp: str, sid: str, session: Any) -> Any:
        context, _ = self._session(session)
        attributes: dict[str, AttributeValue] = {
            "socketio.namespace": nsp,
            "socketio.sid": sid,
            "engineio.sid": session.sid,
            "engineio.transport": str(session.transport),
        }
        span = self._tracer.start_span(
            f"socketio.connect {nsp}", context=context, kind=SpanKind.SERVER, attributes=attributes
        )
        return span, otel_context.attach(trace.set_span_in_context(span, context)), self._run.set(span)

    def connect_finished(self, token: Any, error: str | None) -> None:
        span, attached, run = token
        self._run.reset(run)
        otel_context.detach(attached)
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, error))
        span.end()

    # -- events --------------------------------------------------------------------------------
    def event_received(self, socket: Any, event: Any, args: Sequence[Any]) -> None:
        if self._record_args:
            text = json.dumps(list(args), default=_unjsonable, ensure_ascii=False)
            self._args.setdefault(socket, deque()).append(text[:ARGS_LIMIT])

    def socket_disconnected(self, socket: Any, reason: str) -> None:
        if self._record_args:
            self._args.pop(socket, None)

    def handler_started(self, socket: Any, event: Any) -> Any:
        session = socket.client.session
        context, links = self._session(session)
        name = self._names.get(event) if type(event) is str else None
        if name is None:
            name = self._name(socket, event)
        attributes: dict[str, AttributeValue] = {
            "socketio.namespace": socket.namespace,
            "socketio.event": event if type(event) is str else str(event),
            "socketio.sid": socket.id,
            "engineio.sid": session.sid,
            "engineio.transport": str(session.transport),
        }
        if self._record_args:
            pending = self._args.get(socket)
            if pending:
                attributes["socketio.event.args"] = pending.popleft()
        span = self._tracer.start_span(
            name, context=_ROOT, kind=SpanKind.CONSUMER, attributes=attributes, links=links
        )
        # The handshake's baggage applies inside the handler; its span is replaced by ours.
        return span, otel_context.attach(trace.set_span_in_context(span, context)), self._run.set(span)

    def _name(self, socket: Any, event: Any) -> str:
        if type(event) is str and event in socket.nsp.table.events:
            name = self._names[event] = f"socketio.event {event}"
            return name
        return "socketio.event *"

    def handler_failed(self, socket: Any, event: Any, exc: BaseException) -> None:
        """The handler raised `exc` and the server handled it (core hook: called in the run's
        context, before the server's exception handling)."""
        span = self._run.get()
        if span is not None:
            _failed(span, exc)

    def handler_finished(self, token: Any, error: BaseException | None) -> None:
        span, attached, run = token
        self._run.reset(run)
        otel_context.detach(attached)
        if error is not None:
            _failed(span, error)
        span.end()


def _failed(span: Span, exc: BaseException) -> None:
    span.record_exception(exc)
    span.set_attribute("error.type", type(exc).__qualname__)
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))


def _unjsonable(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value)} bytes>"
    if isinstance(value, Mapping):
        return dict(value)
    return repr(value)
