"""The metrics in one process: label bounding, registration, and what the hooks count, read
back through prometheus_client's own registry API (the real ASGI app, driven in memory)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY, CollectorRegistry

from fastapi_realtime import ConnectionRejected, Realtime, RealtimeRouter, RecoveryOptions, Socket
from fastapi_realtime.metrics import OTHER, BoundedLabels, enable_metrics, metrics_router
from fastapi_realtime.testing import ConnectionRefused, RealtimeTestClient


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


async def until(check: Callable[[], bool], limit: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not check():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


def make_app(**options: Any) -> Realtime:
    rt = Realtime(**options)
    router = RealtimeRouter()

    @rt.on("connect")
    async def connect(socket: Socket, auth: Any = None) -> None:
        if auth == {"no": True}:
            raise ConnectionRejected("go away")

    @router.on_any()
    async def anything(socket: Socket, event: str, *args: Any) -> str:
        await socket.emit(event)  # back under its own name
        return event

    rt.include_router(router)
    return rt


# -- label bounding --------------------------------------------------------------------------------
def test_bounded_labels_keep_the_first_names_and_fold_the_rest() -> None:
    labels = BoundedLabels(2)
    assert [labels.label(n) for n in ("a", "b", "c", "a", "b", "d")] == ["a", "b", OTHER, "a", "b", OTHER]
    assert labels.known == {"a": "a", "b": "b"}  # names past the bound are not kept


def test_bounded_labels_numbers_and_other_types() -> None:
    labels = BoundedLabels(3)
    assert labels.label(7) == "7" and labels.label(1.5) == "1.5"
    assert labels.label(None) == OTHER and labels.label(("t",)) == OTHER
    assert labels.label("x") == "x" and labels.label("y") == OTHER
    assert BoundedLabels(0).label("a") == OTHER
    with pytest.raises(ValueError):
        BoundedLabels(-1)


@pytest.mark.anyio
async def test_event_names_are_bounded() -> None:
    rt = make_app()
    registry = CollectorRegistry()
    enable_metrics(rt, registry=registry, event_names=True, max_event_names=2)
    async with RealtimeTestClient(rt) as client:
        sio = await client.connect()
        for event in ("a", "b", "c", "a", "d"):
            assert await sio.call(event) == event
    received = {e: value(registry, "socketio_events_received_total", namespace="/", event=e) for e in ("a", "b", OTHER, "c")}
    assert received == {"a": 2.0, "b": 1.0, OTHER: 2.0, "c": None}
    # One bound for both directions: the replies, named as the events, fall in the same places.
    emitted = {e: value(registry, "socketio_events_emitted_total", namespace="/", event=e) for e in ("a", "b", OTHER)}
    assert emitted == {"a": 2.0, "b": 1.0, OTHER: 2.0}
    assert value(registry, "socketio_events_received_total", namespace="/") is None  # no series without the label


@pytest.mark.anyio
async def test_without_event_names_the_counters_have_no_event_label() -> None:
    rt = make_app()
    registry = CollectorRegistry()
    enable_metrics(rt, registry=registry)
    async with RealtimeTestClient(rt) as client:
        sio = await client.connect()
        for event in ("a", "b", "c"):
            await sio.call(event)
    assert value(registry, "socketio_events_received_total", namespace="/") == 3.0
    assert value(registry, "socketio_events_emitted_total", namespace="/") == 3.0


@pytest.mark.anyio
async def test_namespaces_past_the_bound_count_as_other() -> None:
    rt = make_app()
    for name in ("/one", "/two", "/three"):
        rt.include_router(RealtimeRouter(namespace=name))
    registry = CollectorRegistry()
    enable_metrics(rt, registry=registry, max_namespaces=2)
    async with RealtimeTestClient(rt) as client:
        socks = [await client.connect(name) for name in ("/", "/one", "/two", "/three")]
        assert value(registry, "socketio_connected_sockets", namespace=OTHER, transport="websocket") == 2.0
        assert value(registry, "socketio_connects_total", namespace=OTHER) == 2.0
        assert value(registry, "socketio_connected_sockets", namespace="/two", transport="websocket") is None
        for sock in socks:
            await sock.disconnect()
        await until(lambda: value(registry, "socketio_connected_sockets", namespace=OTHER, transport="websocket") == 0)
    assert value(registry, "socketio_disconnects_total", namespace=OTHER, reason="client namespace disconnect") == 2.0
    assert value(registry, "socketio_connected_sockets", namespace="/", transport="websocket") == 0.0


# -- what the hooks count ----------------------------------------------------------------------------
@pytest.mark.anyio
async def test_a_socket_refused_by_its_connect_handler_leaves_the_gauge() -> None:
    """The core adds the socket (socket_connected) before the connect handler refuses it: it
    leaves the gauge, and counts as a refusal, neither a connect nor a disconnect."""
    rt = make_app()
    registry = CollectorRegistry()
    enable_metrics(rt, registry=registry)
    async with RealtimeTestClient(rt) as client:
        with pytest.raises(ConnectionRefused):
            await client.connect(auth={"no": True})
        assert value(registry, "socketio_connected_sockets", namespace="/", transport="websocket") == 0.0
        assert value(registry, "socketio_connect_refusals_total", namespace="/") == 1.0
        assert value(registry, "socketio_connects_total", namespace="/") == 0.0
        assert value(registry, "socketio_disconnects_total", namespace="/", reason="server namespace disconnect") is None
        await client.connect(transport="polling")
        assert value(registry, "socketio_connected_sockets", namespace="/", transport="polling") == 1.0
        assert value(registry, "socketio_engine_connections", transport="polling") == 1.0


@pytest.mark.anyio
async def test_refusal_reasons_are_bounded() -> None:
    """allow_request's own words are not labels: they count under their code's message."""

    async def allow(request: Any) -> str | bool:
        return f"user {request.query_params.get('u')} is banned" if request.query_params.get("u") else True

    rt = make_app(allow_request=allow)
    registry = CollectorRegistry()
    enable_metrics(rt, registry=registry)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=rt), base_url="http://test") as http:
        for user in ("1", "2"):
            response = await http.get("/socket.io/", params={"EIO": "4", "transport": "polling", "u": user})
            assert response.status_code == 403
        response = await http.get("/socket.io/", params={"EIO": "4", "transport": "carrier-pigeon"})
        assert response.status_code == 400
    assert value(registry, "socketio_engine_refusals_total", transport="polling", code="4", reason="Forbidden") == 2.0
    assert value(registry, "socketio_engine_refusals_total", transport="polling", code="0", reason="Transport unknown") == 1.0


@pytest.mark.anyio
async def test_recovery_outcomes() -> None:
    rt = make_app(recovery=RecoveryOptions(max_disconnection_duration=30.0))
    registry = CollectorRegistry()
    enable_metrics(rt, registry=registry)
    async with RealtimeTestClient(rt) as client:
        sio = await client.connect()
        await rt.emit("tick")  # the client holds an offset to recover from
        await sio.wait_for("tick")
        await sio.drop()
        await until(lambda: value(registry, "socketio_connected_sockets", namespace="/", transport="websocket") == 0)
        await sio.reconnect()
        assert sio.recovered
    assert value(registry, "socketio_recoveries_total", namespace="/", outcome="recovered") == 1.0
    assert value(registry, "socketio_disconnects_total", namespace="/", reason="transport close") == 1.0
    assert value(registry, "socketio_connects_total", namespace="/") == 2.0


def test_adapter_errors_and_overflows_start_at_zero() -> None:
    # The core does not report adapter errors yet: the hook is called as it will be.
    rt = make_app()
    registry = CollectorRegistry()
    metrics = enable_metrics(rt, registry=registry)
    assert value(registry, "socketio_adapter_errors_total", kind="publish") == 0.0
    assert value(registry, "socketio_queue_overflows_total") == 0.0
    metrics.observer.adapter_error("publish")
    metrics.observer.adapter_error("timeout")
    metrics.observer.adapter_error("timeout")
    assert value(registry, "socketio_adapter_errors_total", kind="publish") == 1.0
    assert value(registry, "socketio_adapter_errors_total", kind="timeout") == 2.0


def test_ack_latency_buckets() -> None:
    rt = make_app()
    registry = CollectorRegistry()
    metrics = enable_metrics(rt, registry=registry, latency_buckets=[0.1, 1.0])
    for seconds in (0.05, 0.1, 0.5, 3.0):
        metrics.observer.ack_received("/", seconds)
    buckets = {le: value(registry, "socketio_ack_latency_seconds_bucket", namespace="/", le=le) for le in ("0.1", "1.0", "+Inf")}
    assert buckets == {"0.1": 2.0, "1.0": 3.0, "+Inf": 4.0}  # "le": a value on a bound is in its bucket
    assert value(registry, "socketio_ack_latency_seconds_count", namespace="/") == 4.0
    assert value(registry, "socketio_ack_latency_seconds_sum", namespace="/") == pytest.approx(3.65)


# -- registration --------------------------------------------------------------------------------------
def test_enabling_twice_returns_the_same_metrics() -> None:
    rt = make_app()
    registry = CollectorRegistry()
    metrics = enable_metrics(rt, registry=registry, event_names=True)
    assert rt.enable_metrics() is metrics
    assert enable_metrics(rt, registry=registry, event_names=True) is metrics
    with pytest.raises(ValueError, match="prefix"):
        enable_metrics(rt, prefix="other")
    assert len([m for m in registry.collect() if m.name.startswith("socketio_")]) == 15


def test_the_default_registry_and_disable() -> None:
    # Another server of this process (an imported app) may share the default registry already.
    before = value(REGISTRY, "socketio_engine_upgrades_total")
    rt = make_app()
    metrics = rt.enable_metrics()
    try:
        assert metrics.registry is REGISTRY
        assert value(REGISTRY, "socketio_engine_upgrades_total") == (before or 0.0)
    finally:
        metrics.disable()
    assert value(REGISTRY, "socketio_engine_upgrades_total") == before
    assert rt.observation.observer is None
    again = rt.enable_metrics()  # possible again after disable
    again.disable()
    assert again is not metrics


def test_servers_sharing_a_registry_add_up() -> None:
    one, two = make_app(), make_app()
    registry = CollectorRegistry()
    first, second = enable_metrics(one, registry=registry), enable_metrics(two, registry=registry)
    first.observer.adapter_error("publish")
    second.observer.adapter_error("publish")
    assert value(registry, "socketio_adapter_errors_total", kind="publish") == 2.0
    with pytest.raises(ValueError, match="already registered"):
        enable_metrics(make_app(), registry=registry, event_names=True)
    enable_metrics(make_app(), registry=registry, event_names=True, prefix="named")
    second.disable()
    assert value(registry, "socketio_adapter_errors_total", kind="publish") == 1.0
    first.disable()
    assert value(registry, "socketio_adapter_errors_total", kind="publish") is None


def test_invalid_buckets() -> None:
    with pytest.raises(ValueError):
        enable_metrics(make_app(), registry=CollectorRegistry(), latency_buckets=[float("inf")])


@pytest.mark.anyio
async def test_the_router_serves_both_formats() -> None:
    rt = make_app()
    registry = CollectorRegistry()
    app = FastAPI()
    app.include_router(rt.router)
    app.include_router(metrics_router(rt, registry=registry, path="/stats"))
    assert rt.enable_metrics().registry is registry
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        text = await http.get("/stats")
        assert text.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert "socketio_engine_upgrades_total 0.0" in text.text
        om = await http.get("/stats", headers={"accept": "application/openmetrics-text; version=1.0.0"})
        assert om.headers["content-type"].startswith("application/openmetrics-text")
        assert om.text.endswith("# EOF\n")
