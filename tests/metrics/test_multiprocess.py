"""prometheus_client's multiprocess mode: `uvicorn --workers 2` with PROMETHEUS_MULTIPROC_DIR,
clients on both workers, and /metrics (served by either) shows their sum."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import socketio

from tests.conftest import WS_IMPL, ServerLog, free_port, run_server

from .helpers import series, settled

APP = "tests.metrics.metrics_app:app"
MAX_CLIENTS = 40


async def script(base: str) -> None:
    clients: list[socketio.AsyncClient] = []
    pids: set[int] = set()
    # The workers share the listening socket: connect until both have clients (bounded).
    while len(clients) < MAX_CLIENTS and (len(pids) < 2 or len(clients) < 4):
        client = socketio.AsyncClient()
        client.on("q", lambda n: n + 1)
        await client.connect(base, transports=["websocket"])  # no sticky sessions: WebSocket only
        clients.append(client)
        pids.add(await client.call("pid"))
        await asyncio.sleep(0.02)  # let the other worker's accept come round
    assert len(pids) == 2, "every client landed on the same worker"
    n = len(clients)
    for client in clients:
        assert await client.call("ask") == 2
    rows = [
        series("socketio_connected_sockets", n, namespace="/", transport="websocket"),
        series("socketio_engine_connections", n, transport="websocket"),
        series("socketio_engine_handshakes_total", n, transport="websocket"),
        series("socketio_engine_upgrades_total", 0),
        series("socketio_queue_overflows_total", 0),
        series("socketio_connects_total", n, namespace="/"),
        series("socketio_connect_refusals_total", 0, namespace="/"),
        series("socketio_events_received_total", 2 * n, namespace="/"),  # pid, ask
        series("socketio_events_emitted_total", n, namespace="/"),  # q
        series("socketio_ack_latency_seconds_count", n, namespace="/"),
        series("socketio_ack_latency_seconds_bucket", n, namespace="/", le="+Inf"),
        series("socketio_adapter_errors_total", 0, kind="publish"),
        series("socketio_adapter_errors_total", 0, kind="timeout"),
    ]
    # Each worker pushes its counts every second (and the one serving /metrics at the scrape).
    got = await settled(base, dict(rows))
    assert got == dict(rows)

    # Half the clients go: the live gauges of both workers drop, the counters stay.
    gone, kept = clients[: n // 2], clients[n // 2 :]
    for client in gone:
        await client.emit("bye")
    rows[0] = series("socketio_connected_sockets", len(kept), namespace="/", transport="websocket")
    rows[1] = series("socketio_engine_connections", len(kept), transport="websocket")
    rows[7] = series("socketio_events_received_total", 2 * n + len(gone), namespace="/")
    rows.append(series("socketio_disconnects_total", len(gone), namespace="/", reason="server namespace disconnect"))
    rows.append(series("socketio_engine_disconnects_total", len(gone), reason="forced close"))
    got = await settled(base, dict(rows))
    assert got == dict(rows)
    await asyncio.gather(*(client.disconnect() for client in clients))


def test_two_workers_add_up(tmp_path: Path) -> None:
    port = free_port()
    directory = tmp_path / "prometheus"
    directory.mkdir()
    log_path = tmp_path / "server.log"
    args = ["-m", "uvicorn", APP, "--host", "127.0.0.1", "--port", str(port), "--workers", "2",
            "--ws", WS_IMPL, "--log-level", "info"]
    with open(log_path, "wb") as output, run_server(args, port, {"PROMETHEUS_MULTIPROC_DIR": str(directory)}, output):
        log = ServerLog(log_path)
        # The port listens as soon as the supervisor binds it: wait for both workers.
        deadline = time.monotonic() + 20
        while log.text().count("Application startup complete") < 2:
            assert time.monotonic() < deadline, log.text()
            time.sleep(0.05)
        asyncio.run(asyncio.wait_for(script(f"http://127.0.0.1:{port}"), 90))
    log.assert_clean()
    # The workers exited cleanly: their live gauges went with them, their counters stayed.
    assert not list(directory.glob("gauge_livesum_*.db"))
    assert len(list(directory.glob("counter_*.db"))) == 2
