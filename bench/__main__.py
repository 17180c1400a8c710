"""Run the benchmark: ``python -m bench [options]`` from the repository root.

Each (server, scenario) pair gets a fresh uvicorn subprocess on 127.0.0.1 pinned to core 0; the
node load generator (bench/loadgen.js) is pinned to core 1. Results are printed as a table and
written to bench/results/latest.json.

The cluster scenario (bench/cluster.py) runs last, over its own redis-server: cross-node
broadcast with one and two fastapi-realtime nodes on RedisAdapter, and two python-socketio nodes
on AsyncRedisManager (nodes pinned to cores 0 and 1, load generator and Redis not pinned).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

from bench import cluster

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
LOADGEN = BENCH_DIR / "loadgen.js"
SERVER_CORE = "0"
LOADGEN_CORE = "1"
CPU_WARN_PERCENT = 85.0
# Whole-machine CPU (% of one core) under which the machine counts as quiet before a run, and the
# CPU used by other processes during a window above which its figure is flagged.
QUIET_PERCENT = 10.0
OTHER_WARN_PERCENT = 15.0

# Extra Realtime(...) keyword arguments for the --recovery variant (read by bench/app_ours.py
# from BENCH_REALTIME_KWARGS).
RECOVERY_KWARGS: dict[str, Any] = {"recovery": True}


@dataclass(frozen=True)
class ServerSpec:
    key: str          # short id used on the command line and in the JSON
    label: str        # column header
    app: str          # uvicorn import string
    factory: bool     # the import string names an app factory
    kind: str         # "sio" (Socket.IO server) or "raw" (ASGI echo)
    env: dict[str, str] = field(default_factory=dict)


def _server_specs(recovery: bool) -> list[ServerSpec]:
    specs = [
        ServerSpec("ours", "fastapi-realtime", "bench.app_ours:create_app", True, "sio"),
        ServerSpec("pysio", "python-socketio", "bench.app_pysio:create_app", True, "sio"),
        ServerSpec("raw", "raw ASGI echo", "bench.app_raw:app", False, "raw"),
    ]
    if recovery:
        specs.insert(
            1,
            ServerSpec(
                "ours_recovery", "fastapi-realtime (recovery)", "bench.app_ours:create_app", True,
                "sio", {"BENCH_REALTIME_KWARGS": json.dumps(RECOVERY_KWARGS)},
            ),
        )
    return specs


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    unit: str
    raw_supported: bool


SCENARIOS = [
    Scenario("ack_ws_1", "ack round-trips/s, WebSocket, 1 client", "rt/s", True),
    Scenario("ack_ws_50", "ack round-trips/s, WebSocket, {clients} clients", "rt/s", True),
    Scenario("broadcast", "broadcast deliveries/s, {broadcast_clients} clients in a room",
             "msg/s", False),
    Scenario("memory", "memory per idle connection ({idle_clients} conns)", "KB", True),
    Scenario("ack_polling_50", "ack round-trips/s, long-polling, {clients} clients", "rt/s", True),
    # Its own runs and table (bench/cluster.py), not one run per server.
    Scenario("cluster", cluster.LABEL, "deliveries/s", False),
]
SCENARIO_KEYS = [s.key for s in SCENARIOS]


def _raise_nofile() -> None:
    # Runs in the child before exec: 5000 idle connections need more than the usual 1024 fds.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


PIN_CORES = True


def _pinned(core: str | None, argv: list[str]) -> list[str]:
    if core is not None and PIN_CORES and shutil.which("taskset"):
        return ["taskset", "-c", core, *argv]
    return argv


class Server:
    """A uvicorn subprocess on 127.0.0.1, pinned to the server core (or `core`; None: unpinned)."""

    def __init__(self, spec: ServerSpec, ws: str, extra_env: dict[str, str],
                 core: str | None = SERVER_CORE) -> None:
        self.spec = spec
        self.port = _free_port()
        argv = [
            sys.executable, "-m", "uvicorn", spec.app,
            "--host", "127.0.0.1", "--port", str(self.port),
            "--ws", ws, "--log-level", "warning", "--no-access-log",
            "--backlog", "4096",
        ]
        if spec.factory:
            argv.append("--factory")
        env = {**os.environ, **spec.env, **extra_env, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            _pinned(core, argv), cwd=ROOT, env=env, preexec_fn=_raise_nofile,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self._log: list[str] = []
        threading.Thread(target=self._drain, daemon=True).start()
        # taskset execs the interpreter, so the pid is uvicorn's own.
        self.ps = psutil.Process(self.proc.pid)

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if len(self._log) < 200:
                self._log.append(line.rstrip())

    def log_tail(self, n: int = 15) -> str:
        return "\n".join(self._log[-n:])

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.spec.label} exited at startup:\n{self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.spec.label} did not start within {timeout}s:\n{self.log_tail()}")

    def rss(self) -> int:
        return int(self.ps.memory_info().rss)

    def cpu_seconds(self) -> float:
        t = self.ps.cpu_times()
        return float(t.user + t.system)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=8)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


class LoadGen:
    """The node load generator, pinned to the load core (or `core`; None: unpinned); reports
    JSON lines on stdout."""

    def __init__(self, config: dict[str, Any], node: str, core: str | None = LOADGEN_CORE) -> None:
        self.proc = subprocess.Popen(
            _pinned(core, [node, str(LOADGEN), json.dumps(config)]),
            cwd=ROOT, preexec_fn=_raise_nofile, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self._stderr: list[str] = []
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        self.ps = psutil.Process(self.proc.pid)

    def cpu_seconds(self) -> float:
        try:
            t = self.ps.cpu_times()
        except psutil.Error:
            return 0.0
        return float(t.user + t.system)

    def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if len(self._stderr) < 50:
                self._stderr.append(line.rstrip())

    def events(self, timeout: float) -> Any:
        """Yield the JSON events; kill the generator if it runs past `timeout` seconds."""
        assert self.proc.stdout is not None
        timer = threading.Timer(timeout, self.proc.kill)
        timer.start()
        try:
            for line in self.proc.stdout:
                line = line.strip()
                if line.startswith("{"):
                    yield json.loads(line)
        finally:
            timer.cancel()

    def tell(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def finish(self) -> None:
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def stderr_tail(self) -> str:
        return "\n".join(self._stderr[-10:])


def _busy_seconds() -> float:
    """CPU seconds spent by processes on the whole machine (all cores) so far.

    irq/softirq time is left out: our own loopback traffic is processed there and is not billed
    to the server or the load generator, so it would pass for a noisy neighbour.
    """
    t = psutil.cpu_times()
    return float(t.user + t.nice + t.system)


def wait_for_quiet(max_wait: float, threshold: float = QUIET_PERCENT) -> float:
    """Wait (bounded) until the machine is idle: other sessions may share these 2 cores.

    Returns the last whole-machine busy figure, in % of one core.
    """
    deadline = time.monotonic() + max_wait
    while True:
        b0, t0 = _busy_seconds(), time.monotonic()
        time.sleep(1.0)
        busy = 100.0 * (_busy_seconds() - b0) / (time.monotonic() - t0)
        if busy <= threshold or time.monotonic() >= deadline:
            return busy


def _run_load(server: Server, config: dict[str, Any], node: str, timeout: float) -> dict[str, Any]:
    """Run one load generation against `server`; adds the server's CPU use over the window and
    the CPU used by everything else on the machine (a noisy neighbour skews the figures)."""
    gen = LoadGen(config, node)
    result: dict[str, Any] | None = None
    cpu0 = t0 = busy0 = lg0 = 0.0
    server_cpu: float | None = None
    other_cpu: float | None = None
    try:
        for ev in gen.events(timeout):
            kind = ev.get("event")
            if kind == "window_start":
                cpu0, t0, busy0, lg0 = (server.cpu_seconds(), time.monotonic(), _busy_seconds(),
                                        gen.cpu_seconds())
            elif kind == "window_end" and t0:
                wall = time.monotonic() - t0
                server_s = server.cpu_seconds() - cpu0
                server_cpu = 100.0 * server_s / wall
                other_s = _busy_seconds() - busy0 - server_s - (gen.cpu_seconds() - lg0)
                other_cpu = max(0.0, 100.0 * other_s / wall)
            elif kind == "result":
                result = ev
            elif kind == "error":
                raise RuntimeError(f"load generator: {ev.get('message')}")
    finally:
        gen.finish()
    if result is None:
        raise RuntimeError(f"load generator gave no result (exit {gen.proc.returncode}):\n"
                           f"{gen.stderr_tail()}")
    result["serverCpu"] = server_cpu
    result["otherCpu"] = other_cpu
    return result


def _settled_rss(server: Server, max_wait: float, interval: float = 0.5) -> int:
    """RSS once it stops moving: spread of the last 4 samples under 0.5%, or after max_wait."""
    samples: list[int] = []
    deadline = time.monotonic() + max_wait
    while True:
        samples.append(server.rss())
        recent = samples[-4:]
        if len(recent) == 4 and (max(recent) - min(recent)) <= 0.005 * max(recent):
            return recent[-1]
        if time.monotonic() >= deadline:
            return samples[-1]
        time.sleep(interval)


@dataclass
class Options:
    ws: str
    warmup: float
    duration: float
    clients: int
    broadcast_clients: int
    idle_clients: int
    cluster_clients: int
    node: str
    deflate: bool


def _base_config(server: Server, opts: Options) -> dict[str, Any]:
    return {
        "kind": server.spec.kind, "host": "127.0.0.1", "port": server.port,
        "path": "/socket.io/", "warmup": opts.warmup, "duration": opts.duration,
        "deflate": opts.deflate,
    }


def _scenario_ack(clients: int, mode: str) -> Callable[[Server, Options], dict[str, Any]]:
    def run(server: Server, opts: Options) -> dict[str, Any]:
        n = opts.clients if clients < 0 else clients
        cfg = {**_base_config(server, opts), "mode": mode, "clients": n}
        return _run_load(server, cfg, opts.node, opts.warmup + opts.duration + 90)
    return run


def _scenario_broadcast(server: Server, opts: Options) -> dict[str, Any]:
    cfg = {**_base_config(server, opts), "mode": "broadcast", "clients": opts.broadcast_clients,
           "openConcurrency": 50}
    return _run_load(server, cfg, opts.node, opts.duration * 8 + 150)


def _scenario_memory(server: Server, opts: Options) -> dict[str, Any]:
    # Warm-up: exercise the connect/echo paths once so lazily built state is not billed per conn.
    warm = {**_base_config(server, opts), "mode": "ack-ws", "clients": 20, "warmup": 0.5,
            "duration": 1.0}
    _run_load(server, warm, opts.node, 60)
    time.sleep(1.0)
    rss_before = _settled_rss(server, 15)
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
                rss_after = _settled_rss(server, 30)
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


RUNNERS: dict[str, Callable[[Server, Options], dict[str, Any]]] = {
    "ack_ws_1": _scenario_ack(1, "ack-ws"),
    "ack_ws_50": _scenario_ack(-1, "ack-ws"),
    "broadcast": _scenario_broadcast,
    "memory": _scenario_memory,
    "ack_polling_50": _scenario_ack(-1, "ack-polling"),
}


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "KB":
        return f"{value:,.1f}"
    return f"{value:,.0f}"


def _ratio(a: float | None, b: float | None, unit: str) -> str:
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{a / b:.2f}x"


def _print_table(results: dict[str, dict[str, Any]], specs: list[ServerSpec],
                 scenarios: list[Scenario], labels: dict[str, str]) -> None:
    has = {s.key for s in specs}
    headers = ["scenario", *[s.label for s in specs]]
    ratio_cols: list[tuple[str, str, str]] = []
    if "ours" in has and "pysio" in has:
        ratio_cols.append(("ours / python-socketio", "ours", "pysio"))
    if "ours" in has and "raw" in has:
        ratio_cols.append(("ours / raw echo", "ours", "raw"))
    headers += [c[0] for c in ratio_cols]
    rows: list[list[str]] = []
    warnings: list[str] = []
    for sc in scenarios:
        row = [f"{labels[sc.key]} [{sc.unit}]"]
        values: dict[str, float | None] = {}
        for spec in specs:
            r = results.get(sc.key, {}).get(spec.key)
            if r is None or "error" in r or r.get("value") is None:
                values[spec.key] = None
                row.append("n/a" if (r is None or "error" not in r) else "error")
                if r is not None and "error" in r:
                    lines = [ln for ln in r["error"].splitlines() if ln.strip()]
                    detail = lines[0] if len(lines) < 2 else f"{lines[0]} {lines[1].strip()}"
                    warnings.append(f"{sc.key} / {spec.label}: {detail}")
                continue
            values[spec.key] = float(r["value"])
            cell = _fmt(values[spec.key], sc.unit)
            cpu = r.get("loadgenCpu")
            if cpu is not None and cpu > CPU_WARN_PERCENT:
                cell += " !"
                warnings.append(f"{sc.key} / {spec.label}: load generator at {cpu:.0f}% of its "
                                f"core, the figure may be client-bound")
            other = r.get("otherCpu")
            if other is not None and other > OTHER_WARN_PERCENT:
                cell += " ~"
                warnings.append(f"{sc.key} / {spec.label}: other processes used {other:.0f}% of a "
                                f"core during the window, the figure is noisy")
            busy = r.get("machineBusyBefore")
            if busy is not None and busy > QUIET_PERCENT:
                warnings.append(f"{sc.key} / {spec.label}: the machine was busy ({busy:.0f}% of a "
                                f"core) before the run")
            if r.get("expected") and r.get("delivered", 0) < r["expected"]:
                warnings.append(f"{sc.key} / {spec.label}: only {r['delivered']} of "
                                f"{r['expected']} deliveries arrived")
            if r.get("disconnected"):
                warnings.append(f"{sc.key} / {spec.label}: {r['disconnected']} clients were "
                                f"disconnected during the run")
            if r.get("failed"):
                warnings.append(f"{sc.key} / {spec.label}: {r['failed']} connections failed "
                                f"({r.get('firstError')})")
            row.append(cell)
        for _, a, b in ratio_cols:
            row.append(_ratio(values.get(a), values.get(b), sc.unit))
        rows.append(row)
    widths = [max(len(headers[i]), *(len(r[i]) for r in rows)) for i in range(len(headers))]
    line = "  ".join(h.ljust(widths[0]) if i == 0 else h.rjust(widths[i])
                     for i, h in enumerate(headers))
    print()
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i])
                        for i, c in enumerate(r)))
    print()
    # The load generator's CPU (share of its one core) and the server's, per measurement.
    print("CPU during the measurement window (load generator / server, % of one core):")
    for sc in scenarios:
        parts = []
        for spec in specs:
            r = results.get(sc.key, {}).get(spec.key)
            if r and "error" not in r and r.get("loadgenCpu") is not None:
                sc_cpu = r.get("serverCpu")
                parts.append(f"{spec.label} {r['loadgenCpu']:.0f}% / "
                             f"{'?' if sc_cpu is None else f'{sc_cpu:.0f}%'}")
        if parts:
            print(f"  {sc.key}: " + ", ".join(parts))
    if warnings:
        print()
        print("WARNINGS:")
        for w in warnings:
            print("  ! " + w)
    print()


def _versions(node: str) -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, str | None] = {}
    for dist in ("fastapi-realtime", "python-socketio", "python-engineio", "uvicorn", "websockets",
                 "wsproto", "fastapi", "starlette", "redis", "hiredis", "msgpack"):
        try:
            found[dist] = version(dist)
        except PackageNotFoundError:
            found[dist] = None
    try:
        found["node"] = subprocess.run([node, "--version"], capture_output=True, text=True,
                                       timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        found["node"] = None
    return found


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ws", default=os.environ.get("UVICORN_WS", "websockets-sansio"),
                   help="uvicorn --ws implementation (default: websockets-sansio)")
    p.add_argument("--scenarios", default=",".join(SCENARIO_KEYS),
                   help=f"comma-separated subset of {','.join(SCENARIO_KEYS)}")
    p.add_argument("--servers", default="ours,pysio,raw",
                   help="comma-separated subset of ours,pysio,raw (ours_recovery with --recovery)")
    p.add_argument("--recovery", action="store_true",
                   help="also run fastapi-realtime with connection state recovery enabled")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up (default 2)")
    p.add_argument("--duration", type=float, default=5.0,
                   help="seconds of measurement per throughput scenario (default 5)")
    p.add_argument("--clients", type=int, default=50, help="clients for the multi-client ack scenarios")
    p.add_argument("--broadcast-clients", type=int, default=1000)
    p.add_argument("--idle-clients", type=int, default=5000)
    p.add_argument("--cluster-clients", type=int, default=500,
                   help="clients of the cluster scenario, split evenly over the nodes (default 500)")
    p.add_argument("--cluster-rounds", type=int, default=3,
                   help="rounds of the cluster scenario's runs, interleaved; medians reported "
                        "(default 3: one round swings with other work on the machine)")
    p.add_argument("--no-cluster", action="store_true",
                   help="skip the cluster scenario (it needs redis-server; `--scenarios cluster` "
                        "runs it alone)")
    p.add_argument("--deflate", action="store_true",
                   help="let the clients offer permessage-deflate (off by default)")
    p.add_argument("--quiet-wait", type=float, default=30.0,
                   help="before each run, wait up to this many seconds for the machine to be idle "
                        "(0: do not wait)")
    p.add_argument("--no-pin", action="store_true",
                   help="do not pin the server and the load generator to separate cores")
    p.add_argument("--node", default=shutil.which("node") or "node")
    p.add_argument("--output", default=str(BENCH_DIR / "results" / "latest.json"))
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    global PIN_CORES
    PIN_CORES = not args.no_pin
    specs_all = _server_specs(args.recovery)
    wanted_servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    if args.recovery and "ours_recovery" not in wanted_servers:
        wanted_servers.append("ours_recovery")
    specs = [s for s in specs_all if s.key in wanted_servers]
    unknown = set(wanted_servers) - {s.key for s in specs_all}
    wanted_scen = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown |= set(wanted_scen) - set(SCENARIO_KEYS)
    if unknown:
        print(f"unknown server/scenario: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    if args.no_cluster:
        wanted_scen = [s for s in wanted_scen if s != "cluster"]
    scenarios = [s for s in SCENARIOS if s.key in wanted_scen]
    with_cluster = any(s.key == "cluster" for s in scenarios)
    scenarios = [s for s in scenarios if s.key != "cluster"]
    opts = Options(ws=args.ws, warmup=args.warmup, duration=args.duration, clients=args.clients,
                   broadcast_clients=args.broadcast_clients, idle_clients=args.idle_clients,
                   cluster_clients=args.cluster_clients, node=args.node, deflate=args.deflate)
    labels = {s.key: s.label.format(clients=opts.clients, broadcast_clients=opts.broadcast_clients,
                                     idle_clients=opts.idle_clients,
                                     cluster_clients=opts.cluster_clients) for s in SCENARIOS}
    if not LOADGEN.exists() or not (ROOT / "tests" / "interop" / "node_modules" / "ws").exists():
        print("node modules missing: run `make node` first", file=sys.stderr)
        return 2

    print(f"uvicorn --ws {opts.ws}; servers on core {SERVER_CORE}, load generator on core "
          f"{LOADGEN_CORE}; warm-up {opts.warmup}s, window {opts.duration}s")
    started = time.monotonic()
    results: dict[str, dict[str, Any]] = {}
    for sc in scenarios:
        results[sc.key] = {}
        for spec in specs:
            if spec.kind == "raw" and not sc.raw_supported:
                continue
            extra_env = {"BENCH_JOIN_ROOM": "room" if sc.key == "broadcast" else ""}
            t = time.monotonic()
            print(f"  {sc.key:<15} {spec.label:<28} ", end="", flush=True)
            server: Server | None = None
            try:
                busy = wait_for_quiet(args.quiet_wait) if args.quiet_wait > 0 else None
                server = Server(spec, opts.ws, extra_env)
                server.wait_ready()
                r = RUNNERS[sc.key](server, opts)
                if server.proc.poll() is not None:
                    raise RuntimeError(f"server exited during the run:\n{server.log_tail()}")
                r["machineBusyBefore"] = busy
                print(f"{_fmt(r['value'], sc.unit):>10} {sc.unit}  ({time.monotonic() - t:.0f}s)")
            except Exception as exc:  # one failing pair must not sink the whole run
                msg = str(exc)
                if server is not None and server.log_tail() and server.log_tail() not in msg:
                    msg += "\nserver log:\n" + server.log_tail()
                r = {"error": msg}
                print(f"ERROR: {msg.splitlines()[0]}")
            finally:
                if server is not None:
                    server.stop()
            results[sc.key][spec.key] = r

    cluster_summary: dict[str, Any] | None = None
    if with_cluster:
        specs_by_key = {s.key: s for s in specs_all}

        def start_node(server: str, env: dict[str, str], core: str | None) -> Server:
            return Server(specs_by_key[server], opts.ws, env, core)

        harness = cluster.Harness(
            start_node=start_node,
            start_loadgen=lambda config, core: LoadGen(config, opts.node, core),
            busy_seconds=_busy_seconds, wait_for_quiet=wait_for_quiet, free_port=_free_port,
            pin=PIN_CORES, quiet_wait=args.quiet_wait,
        )
        results["cluster"] = cluster.run(harness, wanted_servers, opts.cluster_clients,
                                         opts.duration, max(1, args.cluster_rounds))
        cluster_summary = {
            "clients": opts.cluster_clients, "rounds": max(1, args.cluster_rounds),
            "redisVersion": results["cluster"].pop("redisVersion", None),
            "pinning": "nodes on cores " + ", ".join(cluster.NODE_CORES) + "; load generator "
                       "and redis-server unpinned" if PIN_CORES else "none",
            "ratios": cluster.ratios(results["cluster"]),
            "targets": {"ours2_over_ours1": cluster.TARGET_SCALING,
                        "ours2_over_pysio2": cluster.TARGET_VS_PYSIO},
        }

    if scenarios:
        _print_table(results, specs, scenarios, labels)
    if with_cluster:
        cluster_warnings = cluster.print_table(results["cluster"], labels["cluster"])
        if cluster_warnings:
            print("WARNINGS (cluster):")
            for w in cluster_warnings:
                print("  ! " + w)
            print()
    doc = {
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "settings": {"ws": opts.ws, "warmup": opts.warmup, "duration": opts.duration,
                     "clients": opts.clients, "broadcastClients": opts.broadcast_clients,
                     "idleClients": opts.idle_clients, "clusterClients": opts.cluster_clients,
                     "deflate": opts.deflate,
                     "pinned": PIN_CORES, "serverCore": SERVER_CORE, "loadgenCore": LOADGEN_CORE,
                     "versions": _versions(opts.node)},
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "platform": platform.platform()},
        "servers": {s.key: {"label": s.label, "app": s.app, "env": s.env} for s in specs},
        "scenarios": {s.key: {"label": labels[s.key], "unit": s.unit}
                      for s in SCENARIOS if s in scenarios or (s.key == "cluster" and with_cluster)},
        "results": results,
        "cluster": cluster_summary,
        "elapsedSeconds": time.monotonic() - started,
    }
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"results written to {out} ({doc['elapsedSeconds']:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
