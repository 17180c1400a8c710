"""Processes of ``python -m bench``: the servers under test, the node load generator, and the
machine-wide CPU and memory readings around them.

Every server binds 127.0.0.1 on a free port and is pinned to core 0; the load generator
(bench/loadgen.js) is pinned to core 1.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
LOADGEN = BENCH_DIR / "loadgen.js"
NODE_APP = BENCH_DIR / "app_node.js"
SERVER_CORE = "0"
LOADGEN_CORE = "1"
# Whole-machine CPU (% of one core) under which the machine counts as quiet before a run.
QUIET_PERCENT = 10.0

# Extra Realtime(...) keyword arguments for the --recovery variant (read by bench/app_ours.py
# from BENCH_REALTIME_KWARGS).
RECOVERY_KWARGS: dict[str, Any] = {"recovery": True}

# Set by main (--no-pin).
PIN_CORES = True


@dataclass(frozen=True)
class ServerSpec:
    key: str          # short id used on the command line and in the JSON
    label: str        # full name (legend, progress lines)
    col: str          # table column header
    app: str          # uvicorn import string, or a script path for runtime "node"
    factory: bool     # the import string names an app factory
    kind: str         # "sio" (Socket.IO server) or "raw" (ASGI echo)
    env: dict[str, str] = field(default_factory=dict)
    runtime: str = "uvicorn"  # "uvicorn" or "node"
    ws: str | None = None     # this server's uvicorn --ws, instead of the run's


COALESCING_WS = "fastapi_realtime.uvicorn_ws:CoalescingWebSocketProtocol"


def server_specs(recovery: bool, coalescing: bool = False, metrics: bool = False) -> list[ServerSpec]:
    specs = [
        ServerSpec("ours", "fastapi-realtime", "ours", "bench.app_ours:create_app", True, "sio"),
        ServerSpec("pysio", "python-socketio", "pysio", "bench.app_pysio:create_app", True, "sio"),
        ServerSpec("raw", "raw ASGI echo", "raw", "bench.app_raw:app", False, "raw"),
        ServerSpec("node", "socket.io 4.8 (node)", "node", str(NODE_APP), False, "sio",
                   runtime="node"),
    ]
    if recovery:
        specs.insert(
            1,
            ServerSpec(
                "ours_recovery", "fastapi-realtime (recovery)", "ours+recov",
                "bench.app_ours:create_app", True, "sio",
                {"BENCH_REALTIME_KWARGS": json.dumps(RECOVERY_KWARGS)},
            ),
        )
    if metrics:
        # The same server with its Prometheus metrics on (what they cost).
        specs.insert(
            1,
            ServerSpec("ours_metrics", "fastapi-realtime (metrics on)", "ours+metr",
                       "bench.app_ours:create_app", True, "sio", {"BENCH_METRICS": "1"}),
        )
    if coalescing:
        # The same server on the package's write-coalescing WebSocket protocol.
        specs.insert(
            1,
            ServerSpec("ours_coalescing", "fastapi-realtime (coalescing ws)", "ours+coal",
                       "bench.app_ours:create_app", True, "sio", ws=COALESCING_WS),
        )
    return specs


def raise_nofile() -> None:
    # Runs in the child before exec: 10,000 connections need more than the usual 1024 fds.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def nofile_limit() -> int:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return 65536 if hard == resource.RLIM_INFINITY else int(hard)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(core: str | None, argv: list[str]) -> list[str]:
    if core is not None and PIN_CORES and shutil.which("taskset"):
        return ["taskset", "-c", core, *argv]
    return argv


def _cpu(ps: psutil.Process) -> float:
    # user + system of every thread of the process (node's GC and libuv threads included).
    try:
        t = ps.cpu_times()
    except psutil.Error:
        return 0.0
    return float(t.user + t.system)


def stop_process(proc: subprocess.Popen[Any]) -> None:
    """Terminate, then kill what does not stop within 8 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=8)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


class Server:
    """A server subprocess on 127.0.0.1 (uvicorn, or node for the socket.io reference), pinned
    to the server core (or `core`; None: unpinned)."""

    def __init__(self, spec: ServerSpec, ws: str, extra_env: dict[str, str],
                 core: str | None = SERVER_CORE, node: str = "node", http: str = "h11") -> None:
        self.spec = spec
        self.port = free_port()
        argv: list[str]
        if spec.runtime == "node":
            argv = [node, spec.app, str(self.port)]
        else:
            argv = [
                sys.executable, "-m", "uvicorn", spec.app,
                "--host", "127.0.0.1", "--port", str(self.port),
                "--ws", spec.ws or ws, "--http", http, "--log-level", "warning", "--no-access-log",
                "--backlog", "4096",
            ]
            if spec.factory:
                argv.append("--factory")
        env = {**os.environ, **spec.env, **extra_env, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            pinned(core, argv), cwd=ROOT, env=env, preexec_fn=raise_nofile,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self._log: list[str] = []
        threading.Thread(target=self._drain, daemon=True).start()
        # taskset execs the server, so the pid is the server's own.
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
        return _cpu(self.ps)

    def stop(self) -> None:
        stop_process(self.proc)


class LoadGen:
    """The node load generator, pinned to the load core (or `core`; None: unpinned); reports
    JSON lines on stdout."""

    def __init__(self, config: dict[str, Any], node: str, core: str | None = LOADGEN_CORE) -> None:
        self.proc = subprocess.Popen(
            pinned(core, [node, str(LOADGEN), json.dumps(config)]),
            cwd=ROOT, preexec_fn=raise_nofile, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self._stderr: list[str] = []
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        self.ps = psutil.Process(self.proc.pid)

    def cpu_seconds(self) -> float:
        return _cpu(self.ps)

    def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if len(self._stderr) < 50:
                self._stderr.append(line.rstrip())

    def events(self, timeout: float) -> Iterator[Any]:
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


def busy_seconds() -> float:
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
        b0, t0 = busy_seconds(), time.monotonic()
        time.sleep(1.0)
        busy = 100.0 * (busy_seconds() - b0) / (time.monotonic() - t0)
        if busy <= threshold or time.monotonic() >= deadline:
            return busy


def settled_rss(server: Server, max_wait: float, interval: float = 0.5) -> int:
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


EventHook = Callable[[dict[str, Any], LoadGen], None]


def run_load(server: Server, config: dict[str, Any], node: str, timeout: float,
             on_event: EventHook | None = None) -> dict[str, Any]:
    """Run one load generation against `server`; adds the server's CPU over the measurement
    window (serverCpu: % of one core; serverCpuSeconds) and the CPU used by everything else on
    the machine (otherCpu: a noisy neighbour skews the figures). Events other than the window
    boundaries, the result and errors go to `on_event`."""
    gen = LoadGen(config, node)
    result: dict[str, Any] | None = None
    cpu0 = t0 = busy0 = lg0 = 0.0
    server_s: float | None = None
    server_cpu: float | None = None
    other_cpu: float | None = None
    try:
        for ev in gen.events(timeout):
            kind = ev.get("event")
            if kind == "window_start":
                cpu0, t0, busy0, lg0 = (server.cpu_seconds(), time.monotonic(), busy_seconds(),
                                        gen.cpu_seconds())
            elif kind == "window_end" and t0:
                wall = time.monotonic() - t0
                server_s = server.cpu_seconds() - cpu0
                server_cpu = 100.0 * server_s / wall
                other_s = busy_seconds() - busy0 - server_s - (gen.cpu_seconds() - lg0)
                other_cpu = max(0.0, 100.0 * other_s / wall)
            elif kind == "result":
                result = ev
            elif kind == "error":
                raise RuntimeError(f"load generator: {ev.get('message')}")
            elif on_event is not None:
                on_event(ev, gen)
    finally:
        gen.finish()
    if result is None:
        raise RuntimeError(f"load generator gave no result (exit {gen.proc.returncode}):\n"
                           f"{gen.stderr_tail()}")
    result["serverCpu"] = server_cpu
    result["serverCpuSeconds"] = server_s
    result["otherCpu"] = other_cpu
    # CPU time per message: the server's CPU over the window / the messages counted in it
    # (round trips, or deliveries). Steadier than throughput when the machine is shared.
    msgs = result.get("count") if result.get("count") is not None else result.get("delivered")
    if server_s is not None and msgs:
        result["cpuUs"] = 1e6 * server_s / float(msgs)
    return result
