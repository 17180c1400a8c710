"""The cluster scenario of ``python -m bench``: cross-node broadcast over one real redis-server.

C clients sit in one room, split evenly over the nodes (client i on node i % n). The first
client of each node asks its node to "blast" the room, all at the same time, so every node
originates messages and every message reaches all C clients, most of them through Redis.
deliveries/s = deliveries counted by the load generator / time to the last one.

Measured, each on fresh processes: fastapi-realtime with one node (in-memory adapter, for
reference, and RedisAdapter, the same code path as the cluster), with two nodes on RedisAdapter,
and python-socketio with two nodes on AsyncRedisManager; `rounds` times, interleaved, with
medians over the rounds that other processes left quiet (one round swings with whatever else
runs on the machine).

Node A is pinned to core 0 and node B to core 1 (the one-node runs pin their node to core 0
too); the load generator and redis-server are left to the scheduler. On two cores there is no
core to spare for the load generator, and pinning it next to one node would slow that node
alone, so the nodes would finish their halves of the blast at different times; leaving the
nodes unpinned as well gave lower figures in a side-by-side trial (5 runs each). The price:
with two nodes the load generator (a few µs of CPU per delivery) shares the nodes' cores, which
caps "2 nodes / 1 node" on a two-core machine well below 2x whatever the adapter costs. CPU
time per delivery (summed over the node processes, from /proc) does not depend on that, so the
table also gives the scaling it implies with a whole core per node: 2 x CPU per delivery with
1 node / with 2 nodes.

The harness's process helpers are passed in (`Harness`) rather than imported: ``python -m bench``
runs bench/__main__.py as ``__main__``, and importing it again would make a second copy of it.
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from bench.servers import stop_process

LABEL = "cross-node broadcast deliveries/s, 2 nodes vs 1, {cluster_clients} clients"
# What the product asks of the figures.
TARGET_SCALING = 1.6  # ours, 2 nodes / 1 node (deliveries/s)
TARGET_VS_PYSIO = 3.0  # ours, 2 nodes / python-socketio, 2 nodes (deliveries/s)
NODE_CORES = ("0", "1")
# A run during whose window other processes used more than this (% of one core) is noisy: the
# medians leave it out when some run of the same kind was not.
NOISY_OTHER_PERCENT = 15.0


@dataclass(frozen=True)
class ClusterRun:
    key: str      # key in the JSON
    label: str    # row header
    server: str   # "ours" or "pysio" (the --servers key it belongs to)
    adapter: str  # BENCH_ADAPTER: "memory" or "redis"
    nodes: int
    reference: bool = False  # for reference only: measured in the first round alone


RUNS = [
    ClusterRun("ours_memory_1", "fastapi-realtime, 1 node, in-memory (reference)", "ours", "memory", 1,
               reference=True),
    ClusterRun("ours_1", "fastapi-realtime, 1 node, RedisAdapter", "ours", "redis", 1),
    ClusterRun("ours_2", "fastapi-realtime, 2 nodes, RedisAdapter", "ours", "redis", 2),
    ClusterRun("pysio_2", "python-socketio, 2 nodes, AsyncRedisManager", "pysio", "redis", 2),
]


class Node(Protocol):
    port: int
    proc: subprocess.Popen[str]

    def wait_ready(self, timeout: float = ...) -> None: ...
    def cpu_seconds(self) -> float: ...
    def stop(self) -> None: ...
    def log_tail(self, n: int = ...) -> str: ...


class Gen(Protocol):
    proc: subprocess.Popen[str]

    def cpu_seconds(self) -> float: ...
    def events(self, timeout: float) -> Iterator[dict[str, Any]]: ...
    def finish(self) -> None: ...
    def stderr_tail(self) -> str: ...


@dataclass
class Harness:
    """What bench/__main__.py lends: process starters and machine-wide CPU readings."""

    # (server key "ours"/"pysio", extra environment, core or None) -> a started uvicorn node
    start_node: Callable[[str, dict[str, str], str | None], Node]
    # (load generator config, core or None) -> a started load generator
    start_loadgen: Callable[[dict[str, Any], str | None], Gen]
    busy_seconds: Callable[[], float]
    wait_for_quiet: Callable[[float], float]
    free_port: Callable[[], int]
    pin: bool
    quiet_wait: float


class RedisServer:
    """A throwaway redis-server on a free port of 127.0.0.1, with no persistence."""

    def __init__(self, port: int) -> None:
        exe = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not os.path.exists(exe):
            raise RuntimeError("redis-server is not installed (make redis)")
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        # A file, not a pipe: nobody drains it. Closed in stop().
        self._log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "no", "--loglevel", "warning"],
            stdout=self._log, stderr=subprocess.STDOUT, text=True,
        )
        self.version = subprocess.run([exe, "--version"], capture_output=True, text=True,
                                      check=False).stdout.strip()

    def _ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def wait_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._log.seek(0)
                raise RuntimeError(f"redis-server exited at startup: {self._log.read().strip()[-500:]}")
            if self._ping():
                return
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer PING within {timeout}s")

    def cpu_seconds(self) -> float:
        # Redis uses a fraction of a percent of a core here, below the clock-tick resolution of
        # /proc/<pid>/stat, so the nanosecond run time of each thread (/proc/.../schedstat).
        total = 0
        try:
            for tid in os.listdir(f"/proc/{self.proc.pid}/task"):
                with open(f"/proc/{self.proc.pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            with open(f"/proc/{self.proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total / 1e9

    def stop(self) -> None:
        stop_process(self.proc)
        self._log.close()


def _node_core(harness: Harness, index: int) -> str | None:
    if not harness.pin or (os.cpu_count() or 1) < len(NODE_CORES):
        return None
    return NODE_CORES[index % len(NODE_CORES)]


def _measure(run: ClusterRun, harness: Harness, redis: RedisServer, clients: int,
             duration: float) -> dict[str, Any]:
    env = {"BENCH_JOIN_ROOM": "room", "BENCH_ADAPTER": run.adapter, "BENCH_REDIS_URL": redis.url}
    nodes: list[Node] = []
    try:
        for i in range(run.nodes):
            nodes.append(harness.start_node(run.server, env, _node_core(harness, i)))
        for node in nodes:
            node.wait_ready()
        cfg = {
            "mode": "broadcast", "kind": "sio", "path": "/socket.io/", "clients": clients,
            "urls": [f"ws://127.0.0.1:{node.port}" for node in nodes],
            "openConcurrency": 50, "duration": duration, "deflate": False,
        }
        gen = harness.start_loadgen(cfg, None)
        result: dict[str, Any] | None = None
        window: dict[str, Any] = {}
        t0 = 0.0
        cpu0: list[float] = []
        redis0 = busy0 = lg0 = 0.0
        try:
            for ev in gen.events(duration * 8 + 150):
                kind = ev.get("event")
                if kind == "window_start":
                    cpu0 = [node.cpu_seconds() for node in nodes]
                    redis0, busy0, lg0 = redis.cpu_seconds(), harness.busy_seconds(), gen.cpu_seconds()
                    t0 = time.monotonic()
                elif kind == "window_end" and t0:
                    wall = time.monotonic() - t0
                    node_s = [node.cpu_seconds() - c for node, c in zip(nodes, cpu0)]
                    redis_s = redis.cpu_seconds() - redis0
                    lg_s = gen.cpu_seconds() - lg0
                    other_s = harness.busy_seconds() - busy0 - sum(node_s) - redis_s - lg_s
                    window = {"wall": wall, "node_s": node_s, "redis_s": redis_s, "lg_s": lg_s,
                              "other_s": other_s}
                elif kind == "result":
                    result = ev
                elif kind == "error":
                    raise RuntimeError(f"load generator: {ev.get('message')}")
        finally:
            gen.finish()
        if result is None:
            raise RuntimeError(f"load generator gave no result (exit {gen.proc.returncode}):\n"
                               f"{gen.stderr_tail()}")
        for node in nodes:
            if node.proc.poll() is not None:
                raise RuntimeError(f"a node exited during the run:\n{node.log_tail()}")
        delivered = int(result.get("delivered") or 0)
        if window and delivered:
            wall = window["wall"]
            per = 1e6 / delivered
            result.update({
                "cpuUsPerDelivery": sum(window["node_s"]) * per,
                "nodeCpuUsPerDelivery": [s * per for s in window["node_s"]],
                "nodeCpu": [100.0 * s / wall for s in window["node_s"]],
                "redisCpu": 100.0 * window["redis_s"] / wall,
                "redisUsPerDelivery": window["redis_s"] * per,
                "loadgenUsPerDelivery": window["lg_s"] * per,
                "otherCpu": max(0.0, 100.0 * window["other_s"] / wall),
            })
        result["cores"] = [_node_core(harness, i) for i in range(run.nodes)]
        return result
    except Exception as exc:
        tails = [n.log_tail() for n in nodes if n.log_tail()]
        if tails:
            raise RuntimeError(f"{exc}\nnode log:\n" + "\n".join(tails)) from exc
        raise
    finally:
        for node in nodes:
            node.stop()


def run(harness: Harness, servers: list[str], clients: int, duration: float,
        rounds: int = 1) -> dict[str, Any]:
    """Every run whose server is in `servers`, `rounds` times (the order reversed every other
    round; the in-memory reference in the first round only), over one redis-server.

    Returns {run key: summary} (medians over the rounds, each round's result under "rounds")
    plus "redisVersion" and "ratioRounds" (each round's ratios: runs close in time paired).
    """
    results: dict[str, Any] = {}
    runs = [r for r in RUNS if r.server in servers]
    if not runs:
        return results
    per_round: list[dict[str, Any]] = []
    redis = RedisServer(harness.free_port())
    try:
        redis.wait_ready()
        results["redisVersion"] = redis.version
        for i in range(rounds):
            done: dict[str, Any] = {}
            for r in (runs if i % 2 == 0 else runs[::-1]):
                if r.reference and i > 0:
                    continue
                t = time.monotonic()
                tag = f"cluster{'' if rounds == 1 else f' {i + 1}/{rounds}'}"
                print(f"  {tag:<15} {r.label:<48} ", end="", flush=True)
                try:
                    busy = harness.wait_for_quiet(harness.quiet_wait) if harness.quiet_wait > 0 else None
                    res = _measure(r, harness, redis, clients, duration)
                    res["machineBusyBefore"] = busy
                    print(f"{res['value']:>10,.0f} deliveries/s, "
                          f"{res.get('cpuUsPerDelivery', float('nan')):.2f} µs CPU/delivery "
                          f"({time.monotonic() - t:.0f}s)")
                except Exception as exc:  # one failing run must not sink the others
                    res = {"error": str(exc)}
                    print(f"ERROR: {str(exc).splitlines()[0]}")
                done[r.key] = res
            per_round.append(done)
    finally:
        redis.stop()
    for r in runs:
        got = [rd[r.key] for rd in per_round if r.key in rd]
        results[r.key] = _summary(got)
    results["ratioRounds"] = [_ratios(rd) for rd in per_round]
    return results


SUMMARY_FIELDS = ("value", "cpuUsPerDelivery", "redisUsPerDelivery", "redisCpu", "loadgenCpu",
                  "loadgenUsPerDelivery", "otherCpu")


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _noisy(result: dict[str, Any]) -> bool:
    return (result.get("otherCpu") or 0.0) > NOISY_OTHER_PERCENT


def _summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the rounds that worked (the quiet ones, when there are some); an error when
    none worked."""
    ok = [r for r in rounds if "error" not in r and r.get("value") is not None]
    if not ok:
        return {"error": rounds[0].get("error", "no result") if rounds else "not run", "rounds": rounds}
    ok = [r for r in ok if not _noisy(r)] or ok
    out: dict[str, Any] = {"rounds": rounds, "n": len(ok)}
    for f in SUMMARY_FIELDS:
        vals = [float(r[f]) for r in ok if r.get(f) is not None]
        out[f] = _median(vals)
        if f in ("value", "cpuUsPerDelivery") and vals:
            out[f + "Range"] = [min(vals), max(vals)]
    node_cpu = [r["nodeCpu"] for r in ok if r.get("nodeCpu")]
    if node_cpu:
        out["nodeCpu"] = [_median([c[i] for c in node_cpu]) for i in range(len(node_cpu[0]))]
    for f in ("clients", "nodes"):
        out[f] = ok[0].get(f)
    return out


def _value(results: dict[str, Any], key: str, field: str = "value") -> float | None:
    r = results.get(key)
    if not isinstance(r, dict) or "error" in r or r.get(field) is None:
        return None
    return float(r[field])


def _ratios(results: dict[str, Any]) -> dict[str, Any]:
    def div(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None or b == 0 else a / b

    ours1, ours2, pysio2 = (_value(results, k) for k in ("ours_1", "ours_2", "pysio_2"))
    cpu1, cpu2, cpu_p = (_value(results, k, "cpuUsPerDelivery") for k in ("ours_1", "ours_2", "pysio_2"))
    paired = (results.get(k) for k in ("ours_1", "ours_2", "pysio_2"))
    runs = [r for r in paired if isinstance(r, dict) and "error" not in r]
    return {
        "quiet": not any(_noisy(r) for r in runs),
        "ours2_over_ours1": div(ours2, ours1),
        "ours2_over_pysio2": div(ours2, pysio2),
        # CPU per delivery, 2 nodes / 1 node: what a delivery costs more for crossing Redis.
        "cpu_ours2_over_ours1": div(cpu2, cpu1),
        # CPU per delivery, ours / python-socketio, both with 2 nodes.
        "cpu_ours2_over_pysio2": div(cpu2, cpu_p),
        # What 2 nodes / 1 node would be with a whole core per node and the load generator
        # elsewhere: 2 x CPU per delivery with 1 node / with 2 nodes.
        "cpu_bound_scaling": None if cpu1 is None or not cpu2 else 2 * cpu1 / cpu2,
    }


def ratios(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each ratio's median over the rounds (runs of one round paired), with min and max.
    Targets: ours2_over_ours1 >= TARGET_SCALING, ours2_over_pysio2 >= TARGET_VS_PYSIO."""
    per_round: list[dict[str, Any]] = results.get("ratioRounds") or []
    # Rounds where no run was disturbed by other work, when there are some.
    per_round = [rd for rd in per_round if rd.get("quiet")] or per_round
    out: dict[str, dict[str, Any]] = {}
    for name in ("ours2_over_ours1", "ours2_over_pysio2", "cpu_ours2_over_ours1", "cpu_ours2_over_pysio2",
                 "cpu_bound_scaling"):
        vals = [float(v) for rd in per_round if (v := rd.get(name)) is not None]
        out[name] = {"median": _median(vals), "min": min(vals) if vals else None,
                     "max": max(vals) if vals else None, "rounds": len(vals)}
    return out


def print_table(results: dict[str, Any], label: str) -> list[str]:
    """The scenario's table (medians over the rounds, and their range); returns warnings."""
    warnings: list[str] = []
    headers = ["cluster run", "deliveries/s", "range", "node CPU µs/deliv", "range",
               "redis CPU µs/deliv", "node CPU %", "redis CPU %", "loadgen CPU %"]
    rows: list[list[str]] = []

    def fmt(v: Any, spec: str) -> str:
        return "n/a" if v is None else format(v, spec)

    def span(v: Any, spec: str) -> str:
        if not v or v[0] == v[1]:
            return ""
        return f"{format(v[0], spec)}-{format(v[1], spec)}"

    for r in RUNS:
        res = results.get(r.key)
        if res is None:
            continue
        for i, rd in enumerate(res.get("rounds") or []):
            where = f"cluster / {r.label}" + (f" (round {i + 1})" if len(res["rounds"]) > 1 else "")
            if "error" in rd:
                warnings.append(f"{where}: {rd['error'].splitlines()[0]}")
                continue
            if rd.get("expected") and rd.get("delivered", 0) < rd["expected"]:
                warnings.append(f"{where}: only {rd['delivered']} of {rd['expected']} deliveries arrived")
            if rd.get("disconnected"):
                warnings.append(f"{where}: {rd['disconnected']} clients were disconnected")
            if rd.get("failed"):
                warnings.append(f"{where}: {rd['failed']} connections failed ({rd.get('firstError')})")
            other = rd.get("otherCpu")
            if other is not None and other > NOISY_OTHER_PERCENT:
                warnings.append(f"{where}: other processes used {other:.0f}% of a core during the "
                                f"window, the figure is noisy")
        if "error" in res:
            rows.append([r.label, "error", "", "", "", "", "", "", ""])
            continue
        node_cpu = res.get("nodeCpu") or []
        rows.append([
            r.label, fmt(res.get("value"), ",.0f"), span(res.get("valueRange"), ",.0f"),
            fmt(res.get("cpuUsPerDelivery"), ".2f"), span(res.get("cpuUsPerDeliveryRange"), ".2f"),
            fmt(res.get("redisUsPerDelivery"), ".2f"),
            " + ".join(f"{c:.0f}" for c in node_cpu) or "n/a",
            fmt(res.get("redisCpu"), ".0f"), fmt(res.get("loadgenCpu"), ".0f"),
        ])
    if not rows:
        return warnings
    q = ratios(results)

    def ratio_row(title: str, thr: str, cpu: str, target: float) -> None:
        m = q[thr]["median"]
        if m is None:
            return
        verdict = "ok" if m >= target else "BELOW TARGET"
        rng = "" if q[thr]["min"] == q[thr]["max"] else f"{q[thr]['min']:.2f}-{q[thr]['max']:.2f}x"
        c = q[cpu]
        crng = "" if c["min"] == c["max"] else f"{c['min']:.2f}-{c['max']:.2f}x"
        rows.append([title, f"{m:.2f}x", rng, fmt(c["median"], ".2f") + "x", crng, "", "", "", verdict])

    ratio_row(f"ratio ours 2 nodes / 1 node (target >= {TARGET_SCALING}x)",
              "ours2_over_ours1", "cpu_ours2_over_ours1", TARGET_SCALING)
    ratio_row(f"ratio ours 2 nodes / python-socketio 2 (target >= {TARGET_VS_PYSIO:g}x)",
              "ours2_over_pysio2", "cpu_ours2_over_pysio2", TARGET_VS_PYSIO)
    widths = [max(len(headers[i]), *(len(row[i]) for row in rows)) for i in range(len(headers))]
    line = "  ".join(h.ljust(widths[0]) if i == 0 else h.rjust(widths[i])
                     for i, h in enumerate(headers))
    rounds = len(results.get("ratioRounds") or []) or 1
    quiet = sum(1 for rd in results.get("ratioRounds") or [] if rd.get("quiet"))
    print()
    if rounds > 1:
        used = f"the {quiet} quiet ones" if quiet else "all of them (none was quiet)"
        label += (f"; {rounds} rounds, medians over {used} (quiet: other processes under "
                  f"{NOISY_OTHER_PERCENT:.0f}% of a core); ratios paired within a round")
    print(label)
    print(line)
    print("-" * len(line))
    for row in rows:
        print("  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i])
                        for i, c in enumerate(row)))
    print("(node CPU % per node, of one core; CPU µs per delivery summed over the nodes)")
    scaling = q["cpu_bound_scaling"]
    if scaling["median"] is not None:
        spread = ("" if scaling["min"] == scaling["max"]
                  else f", range {scaling['min']:.2f}-{scaling['max']:.2f}x")
        print(f"(2 nodes / 1 node with a free core per node, from CPU per delivery: "
              f"{scaling['median']:.2f}x{spread}; here the load generator shares the nodes' cores)")
    print()
    return warnings
