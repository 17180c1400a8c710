"""A real Redis Cluster (three masters, no replicas) on free ports of 127.0.0.1, for the sharded adapter tests."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import redis

from tests.conftest import free_port

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")


def _distinct_free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


class RedisCluster:
    """`size` redis-server processes in cluster mode, joined by `redis-cli --cluster create`; `urls` lists them.

    Use it as a context manager (or start()/stop()). The cluster bus of each node gets its own free port
    (`--cluster-port`): the default, port + 10000, may not exist for an ephemeral port.
    """

    def __init__(self, workdir: Path, size: int = 3) -> None:
        if REDIS_SERVER is None or REDIS_CLI is None:
            raise RuntimeError("redis-server / redis-cli are not installed (make redis installs Debian's)")
        self.workdir = workdir
        ports = _distinct_free_ports(2 * size)
        self.ports = ports[:size]
        self.bus_ports = ports[size:]
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def urls(self) -> list[str]:
        return [f"redis://127.0.0.1:{port}" for port in self.ports]

    def start(self, timeout: float = 30.0) -> None:
        assert REDIS_SERVER is not None and REDIS_CLI is not None
        deadline = time.monotonic() + timeout
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            for port, bus in zip(self.ports, self.bus_ports, strict=True):
                args = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                        "--cluster-port", str(bus), "--cluster-config-file", str(self.workdir / f"nodes-{port}.conf"),
                        "--save", "", "--appendonly", "no", "--dir", str(self.workdir)]
                self.procs.append(subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT))
            for port in self.ports:
                self._wait(port, "answering", lambda c: bool(c.ping()), deadline)
            create = subprocess.run(
                [REDIS_CLI, "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports),
                 "--cluster-replicas", "0", "--cluster-yes"],
                capture_output=True, text=True, timeout=max(deadline - time.monotonic(), 1),
            )
            if create.returncode != 0:
                raise RuntimeError(f"redis-cli --cluster create failed:\n{create.stdout}{create.stderr}")
            # every node must see every slot covered before clients can rely on it
            for port in self.ports:
                self._wait(port, "cluster_state:ok", _cluster_ok, deadline)
        except BaseException:
            self.stop()
            raise

    def _wait(self, port: int, what: str, ready: Callable[[redis.Redis], bool], deadline: float) -> None:
        client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.2, decode_responses=True)
        try:
            while True:
                with contextlib.suppress(redis.exceptions.ConnectionError):
                    if ready(client):
                        return
                for proc in self.procs:
                    if proc.poll() is not None:
                        raise RuntimeError(f"a cluster redis-server exited with {proc.returncode}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis 127.0.0.1:{port}: not {what} in time")
                time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs = []

    def __enter__(self) -> RedisCluster:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _cluster_ok(client: redis.Redis) -> bool:
    info = client.execute_command("CLUSTER INFO")  # type: ignore[no-untyped-call]
    if isinstance(info, dict):  # parsed by some redis-py versions
        return info.get("cluster_state") == "ok"
    return "cluster_state:ok" in str(info)
