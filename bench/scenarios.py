"""The scenarios of ``python -m bench``: what each one runs against one server, and which
figures (table rows) it reports.

Every figure that has a message count also has the server's CPU time per message (µs): the
server process's user + system time (from /proc, via psutil) over the measurement window,
divided by the messages counted in it. It is steady on a shared machine, where throughput is not.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench import cluster
from bench.servers import LoadGen, Server, run_load, settled_rss


@dataclass(frozen=True)
class Metric:
    key: str      # key in the scenario's result
    label: str    # row suffix (the unit)
    digits: int   # decimals in the table


THROUGHPUT_RT = Metric("value", "rt/s", 0)
CPU_RT = Metric("cpuUs", "CPU µs/rt", 1)
P50 = Metric("p50Ms", "ack p50 ms", 2)
P99 = Metric("p99Ms", "ack p99 ms", 2)
ACK_METRICS = (THROUGHPUT_RT, CPU_RT, P50, P99)
FANOUT_METRICS = (Metric("value", "deliveries/s", 0), Metric("cpuUs", "CPU µs/delivery", 2))
CONNS_METRICS = (
    Metric("value", "connects/s", 0), Metric("cpuUsPerConnect", "CPU µs/connect", 0),
    Metric("kbPerConn", "KB/conn (RSS)", 1), Metric("ackRate", "rt/s, 50 of them", 0),
    Metric("cpuUs", "CPU µs/rt", 1), P50, P99,
)


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    unit: str                 # unit of the headline "value"
    raw_supported: bool       # the raw ASGI echo can play it (no rooms, no acks of its own)
    metrics: tuple[Metric, ...] = ()
    room: bool = False        # the clients join a room on connect
    # uvicorn's --http for the Python servers in this scenario (None: the run's, --http);
    # node's server has its own HTTP stack and is not run again for such a scenario.
    http: str | None = None


FANOUT_SIZES = (10, 100, 1000, 5000)

SCENARIOS = [
    Scenario("ack_ws_1", "ack, WebSocket, 1 client", "rt/s", True, ACK_METRICS),
    Scenario("ack_ws_50", "ack, WebSocket, {clients} clients", "rt/s", True, ACK_METRICS),
    *[Scenario(f"fanout_{n}", f"fan-out, room of {n:,}", "msg/s", False, FANOUT_METRICS, True)
      for n in FANOUT_SIZES],
    # The fan-out to a room of --broadcast-clients (the older name; not in the default run).
    Scenario("broadcast", "broadcast, room of {broadcast_clients}", "msg/s", False,
             FANOUT_METRICS, True),
    Scenario("memory", "idle conns ({idle_clients})", "KB", True,
             (Metric("value", "KB/conn (RSS)", 1),)),
    Scenario("conns", "{conn_clients:,} WebSocket conns", "conn/s", True, CONNS_METRICS),
    Scenario("ack_polling_50", "ack, long-polling, {clients} clients", "rt/s", True, ACK_METRICS),
    # The same on httptools, the HTTP parser of uvicorn[standard] (h11 is pure Python).
    Scenario("ack_polling_50_httptools", "ack, long-polling, {clients} clients, httptools", "rt/s",
             True, ACK_METRICS, http="httptools"),
    # Its own runs and table (bench/cluster.py), not one run per server.
    Scenario("cluster", cluster.LABEL, "deliveries/s", False),
]
SCENARIO_KEYS = [s.key for s in SCENARIOS]
DEFAULT_SCENARIOS = [k for k in SCENARIO_KEYS if k != "broadcast"]


@dataclass
class Options:
    ws: str
    warmup: float
    duration: float
    clients: int
    broadcast_clients: int
    idle_clients: int
    conn_clients: int
    cluster_clients: int
    node: str
    deflate: bool
    fanout_max_messages: int


def _base_config(server: Server, opts: Options) -> dict[str, Any]:
    return {
        "kind": server.spec.kind, "host": "127.0.0.1", "port": server.port,
        "path": "/socket.io/", "warmup": opts.warmup, "duration": opts.duration,
        "deflate": opts.deflate,
    }


def _latency(result: dict[str, Any]) -> dict[str, Any]:
    lat = result.get("latencyMs") or {}
    result["p50Ms"], result["p99Ms"] = lat.get("p50"), lat.get("p99")
    return result


def _scenario_ack(clients: int, mode: str) -> Callable[[Server, Options], dict[str, Any]]:
    def run(server: Server, opts: Options) -> dict[str, Any]:
        n = opts.clients if clients < 0 else clients
        cfg = {**_base_config(server, opts), "mode": mode, "clients": n}
        return _latency(run_load(server, cfg, opts.node, opts.warmup + opts.duration + 90))
    return run


def _scenario_fanout(size: int) -> Callable[[Server, Options], dict[str, Any]]:
    def run(server: Server, opts: Options) -> dict[str, Any]:
        n = opts.broadcast_clients if size < 0 else size
        # The load generator sizes the blast from a probe to last about `duration` seconds,
        # capped in messages; the blast itself times out after duration * 6 + 20 s (up to 3
        # attempts), so one run stays bounded whatever the server's speed.
        cfg = {**_base_config(server, opts), "mode": "broadcast", "clients": n,
               "openConcurrency": 50, "maxMessages": opts.fanout_max_messages,
               "connectTimeout": 120}
        return run_load(server, cfg, opts.node, opts.duration * 20 + 240)
    return run


def _warm_up(server: Server, opts: Options) -> None:
    # Exercise the connect/echo paths once so lazily built state is not billed per connection.
    warm = {**_base_config(server, opts), "mode": "ack-ws", "clients": 20, "warmup": 0.5,
            "duration": 1.0}
    run_load(server, warm, opts.node, 60)
    time.sleep(1.0)


def _scenario_memory(server: Server, opts: Options) -> dict[str, Any]:
    _warm_up(server, opts)
    rss_before = settled_rss(server, 15)
    cfg = {**_base_config(server, opts), "mode": "idle", "clients": opts.idle_clients,
           "openConcurrency": 100, "holdMax": 180, "connectTimeout": 120}
    gen = LoadGen(cfg, opts.node)
    ready: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    rss_after = 0
    try:
        for ev in gen.events(300):
            kind = ev.get("event")
            if kind == "ready":
                ready = ev
                time.sleep(2.0)
                rss_after = settled_rss(server, 30)
                gen.tell("close")
            elif kind == "result":
                result = ev
            elif kind == "error":
                raise RuntimeError(f"load generator: {ev.get('message')}")
    finally:
        gen.finish()
    if ready is None or result is None:
        raise RuntimeError(f"idle run incomplete:\n{gen.stderr_tail()}")
    opened = int(ready["opened"])
    if opened == 0:
        raise RuntimeError(f"no idle connection opened: {ready.get('firstError')}")
    per_conn_kb = (rss_after - rss_before) / opened / 1024
    return {
        "value": per_conn_kb, "unit": "KB/conn", "rssBeforeMB": rss_before / 2**20,
        "rssAfterMB": rss_after / 2**20, "opened": opened, "alive": result.get("alive"),
        "failed": ready.get("failed"), "firstError": ready.get("firstError"),
        "openSeconds": ready.get("openSeconds"), "loadgenCpu": None, "serverCpu": None,
    }


def _scenario_conns(server: Server, opts: Options) -> dict[str, Any]:
    """`conn_clients` WebSocket connections to one server process: connect rate and the server's
    CPU per connect, RSS growth per connection, then the 50-client ack load (throughput, CPU per
    round trip, latency) on clients spread over all of them, with all of them connected."""
    _warm_up(server, opts)
    rss_before = settled_rss(server, 15)
    seen: dict[str, Any] = {}

    def on_event(ev: dict[str, Any], gen: LoadGen) -> None:
        kind = ev.get("event")
        if kind == "connect_start":
            seen["cpu0"] = server.cpu_seconds()
        elif kind == "connect_end":
            seen["connectCpuSeconds"] = server.cpu_seconds() - seen.get("cpu0", 0.0)
            seen.update(ev)
        elif kind == "ready":
            # Let heartbeats and buffers settle before reading the memory.
            time.sleep(1.0)
            seen["rssAfter"] = settled_rss(server, 20)
            gen.tell("go")

    cfg = {**_base_config(server, opts), "mode": "conns", "clients": opts.conn_clients,
           "ackClients": opts.clients, "openConcurrency": 200, "connectTimeout": 120,
           "holdMax": 120}
    r = _latency(run_load(server, cfg, opts.node, opts.warmup + opts.duration + 400, on_event))
    opened = int(r.get("opened") or 0)
    if opened == 0:
        raise RuntimeError(f"no connection opened: {r.get('firstError')}")
    ack_rate = r.get("value")
    r.update({
        "value": r.get("connectRate"), "unit": "connects/s", "ackRate": ack_rate,
        "cpuUsPerConnect": 1e6 * seen.get("connectCpuSeconds", 0.0) / opened,
        "kbPerConn": (seen.get("rssAfter", rss_before) - rss_before) / opened / 1024,
        "rssBeforeMB": rss_before / 2**20, "rssAfterMB": seen.get("rssAfter", 0) / 2**20,
    })
    if r.get("alive") is not None and r["alive"] < opened:
        r["disconnected"] = opened - int(r["alive"])
    return r


RUNNERS: dict[str, Callable[[Server, Options], dict[str, Any]]] = {
    "ack_ws_1": _scenario_ack(1, "ack-ws"),
    "ack_ws_50": _scenario_ack(-1, "ack-ws"),
    **{f"fanout_{n}": _scenario_fanout(n) for n in FANOUT_SIZES},
    "broadcast": _scenario_fanout(-1),
    "memory": _scenario_memory,
    "conns": _scenario_conns,
    "ack_polling_50": _scenario_ack(-1, "ack-polling"),
    "ack_polling_50_httptools": _scenario_ack(-1, "ack-polling"),
}
