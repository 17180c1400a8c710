"""Python nodes of a Redis cluster (tests/redis/cluster_app.py under uvicorn), and clients.

A node is driven through the same control API as the Node node of tests/interop/cluster_node.mjs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import socketio

from tests.conftest import WS_IMPL, free_port, run_server
from tests.interop.node import unbin
from tests.redis.node_cluster import tobin

APP = "tests.redis.cluster_app:app"


class PythonNode:
    def __init__(self, url: str, name: str) -> None:
        self.url = url
        self.name = name

    def control(self, op: str, **body: Any) -> Any:
        """As NodeClusterNode.control: `except_` for `except`, bytes as {"$bin"} both ways."""
        payload = tobin({k.removesuffix("_"): v for k, v in body.items()})
        request = urllib.request.Request(
            f"{self.url}/control/{op}", data=json.dumps(payload).encode(), method="POST",
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=15) as response:
            return unbin(json.loads(response.read()))

    async def acontrol(self, op: str, **body: Any) -> Any:
        return await asyncio.to_thread(self.control, op, **body)


@contextlib.contextmanager
def python_node(
    redis_url: str,
    adapter: str = "redis",
    name: str = "python",
    options: dict[str, Any] | None = None,
    namespaces: list[str] | None = None,
    port: int | None = None,
    workers: int = 1,
) -> Iterator[PythonNode]:
    port = port or free_port()
    env = {
        "REDIS_URL": redis_url, "ADAPTER": adapter, "NODE_NAME": name,
        "ADAPTER_OPTIONS": json.dumps(options or {}), "NAMESPACES": json.dumps(namespaces or []),
    }
    args = ["-m", "uvicorn", APP, "--host", "127.0.0.1", "--port", str(port), "--ws", WS_IMPL,
            "--log-level", "warning"]
    if workers > 1:
        args += ["--workers", str(workers)]
    with run_server(args, port, env):
        yield PythonNode(f"http://127.0.0.1:{port}", name)


async def until(pred: Any, timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


class Client:
    """python-socketio's AsyncClient recording what it receives: events[(nsp, event)] = [args...]."""

    def __init__(self, url: str, *, transport: str = "websocket", namespaces: tuple[str, ...] = ("/",)) -> None:
        self.url = url
        self.transport = transport
        self.namespaces = namespaces
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: defaultdict[tuple[str, str], list[Any]] = defaultdict(list)
        self.disconnected: list[str] = []

        for nsp in namespaces:
            @self.sio.on("*", namespace=nsp)
            async def any_event(event: str, *args: Any, _nsp: str = nsp) -> Any:
                self.events[(_nsp, event)].append(list(args))
                return {"got": event, "args": list(args)}

            @self.sio.on("disconnect", namespace=nsp)
            async def gone(*args: Any, _nsp: str = nsp) -> None:
                self.disconnected.append(_nsp)

    async def connect(self, auth: dict[str, Any] | None = None) -> Client:
        await self.sio.connect(self.url, transports=[self.transport], namespaces=list(self.namespaces),
                               auth=auth, wait_timeout=5)
        return self

    def sid(self, nsp: str = "/") -> str:
        sid = self.sio.get_sid(nsp)
        assert sid is not None
        return sid

    def got(self, event: str, nsp: str = "/") -> list[Any]:
        return self.events[(nsp, event)]

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.sio.disconnect()
