"""A scripted session against a real uvicorn server, then /metrics scraped over HTTP: every
series of the package has its exact value."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import socketio

from tests.conftest import logged_uvicorn

from .helpers import Key, Series, scrape, series, settled

APP = "tests.metrics.metrics_app:app"
HISTOGRAM = frozenset({"socketio_ack_latency_seconds_bucket", "socketio_ack_latency_seconds_sum", "socketio_ack_latency_seconds_count"})


def no_histogram(key: Key) -> bool:
    return key[0] in HISTOGRAM


def expected(*, during: bool) -> dict[Any, float]:
    """The series in the middle of the script (during) or at its end, when a has said "bye"
    (the server closed its connection) and b and c are still connected. (b, polling, stays: a
    poll of its in flight as the server closes it would meet "Session ID unknown", a refusal.)"""
    ended = 0 if during else 1
    rows = [
        series("socketio_connected_sockets", 2 - ended, namespace="/", transport="websocket"),  # a, c
        series("socketio_connected_sockets", 1, namespace="/", transport="polling"),  # b
        series("socketio_connected_sockets", 1 - ended, namespace="/chat", transport="websocket"),  # a
        series("socketio_engine_connections", 2 - ended, transport="websocket"),
        series("socketio_engine_connections", 1, transport="polling"),
        series("socketio_engine_handshakes_total", 2, transport="websocket"),  # a, and d (refused later)
        series("socketio_engine_handshakes_total", 2, transport="polling"),  # b, and c (upgraded)
        series("socketio_engine_refusals_total", 1, transport="polling", code="5", reason="Unsupported protocol version"),
        series("socketio_engine_upgrades_total", 1),
        series("socketio_engine_disconnects_total", 1, reason="transport close"),  # d, after its refusal
        series("socketio_queue_overflows_total", 0),
        series("socketio_connects_total", 3, namespace="/"),
        series("socketio_connects_total", 1, namespace="/chat"),
        series("socketio_connect_refusals_total", 1, namespace="/"),
        series("socketio_connect_refusals_total", 0, namespace="/chat"),
        # join x2, echo x3, shout, ask; then bye
        series("socketio_events_received_total", 7 + ended, namespace="/"),
        series("socketio_events_received_total", 1, namespace="/chat"),
        # "shouted" to a and b (room r), "q" to b
        series("socketio_events_emitted_total", 3, namespace="/"),
        series("socketio_events_emitted_total", 0, namespace="/chat"),
        series("socketio_adapter_errors_total", 0, kind="publish"),
        series("socketio_adapter_errors_total", 0, kind="timeout"),
    ]
    if not during:
        rows += [
            series("socketio_engine_disconnects_total", 1, reason="forced close"),
            series("socketio_disconnects_total", 1, namespace="/", reason="server namespace disconnect"),
            series("socketio_disconnects_total", 1, namespace="/chat", reason="server namespace disconnect"),
        ]
    return dict(rows)


def check_histogram(got: Series) -> None:
    count = got[("socketio_ack_latency_seconds_count", frozenset({("namespace", "/")}))]
    inf = got[("socketio_ack_latency_seconds_bucket", frozenset({("namespace", "/"), ("le", "+Inf")}))]
    ten = got[("socketio_ack_latency_seconds_bucket", frozenset({("namespace", "/"), ("le", "10.0")}))]
    total = got[("socketio_ack_latency_seconds_sum", frozenset({("namespace", "/")}))]
    assert (count, inf, ten) == (1, 1, 1)  # b's answer to "q"
    assert 0 < total < 5
    buckets = sorted(
        (float(dict(labels)["le"]), v) for (name, labels), v in got.items() if name == "socketio_ack_latency_seconds_bucket"
    )
    assert [v for _, v in buckets] == sorted(v for _, v in buckets) and len(buckets) == 14


async def script(base: str) -> None:
    a = socketio.AsyncClient()
    await a.connect(base, transports=["websocket"], namespaces=["/", "/chat"])
    b = socketio.AsyncClient()
    b.on("q", lambda n: n + 1)
    await b.connect(base, transports=["polling"])
    c = socketio.AsyncClient()
    await c.connect(base)  # polling, then upgraded
    for _ in range(100):
        if c.transport() == "websocket":
            break
        await asyncio.sleep(0.05)
    assert c.transport() == "websocket"
    assert await a.call("join", "r") is True and await b.call("join", "r") is True
    assert [await a.call("echo", n) for n in range(3)] == [0, 1, 2]
    assert await a.call("echo", "x", namespace="/chat") == "x"
    assert await a.call("shout", "hi") is True
    assert await b.call("ask") == 2
    d = socketio.AsyncClient()
    try:
        await d.connect(base, transports=["websocket"], auth={"no": True})
        raise AssertionError("d should have been refused")
    except socketio.exceptions.ConnectionError:
        pass
    async with httpx.AsyncClient() as http:
        response = await http.get(base + "/socket.io/", params={"EIO": "3", "transport": "polling"})
        assert response.status_code == 400

    got = await settled(base, expected(during=True), skip=no_histogram)
    assert got == expected(during=True)
    await a.emit("bye")
    got = await settled(base, expected(during=False), skip=no_histogram)
    assert got == expected(during=False)
    check_histogram(await scrape(base))
    await asyncio.gather(a.disconnect(), b.disconnect(), c.disconnect(), d.disconnect())


def test_scripted_session(tmp_path: Path) -> None:
    with logged_uvicorn(APP, tmp_path) as (base, log):
        asyncio.run(asyncio.wait_for(script(base), 60))
    log.assert_clean()
