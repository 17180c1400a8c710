"""Shared by the admin tests: the instrumented app under uvicorn, and recording clients."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import socketio

from fastapi_realtime.admin import hash_password
from tests.conftest import free_port, uvicorn_on

APP = "tests.admin.admin_app:app"
PASSWORD = "s3cret"
# Cost 4: the cheapest bcrypt hash, so tests do not wait on it (the format is what matters).
PASSWORD_HASH = hash_password(PASSWORD, rounds=4)
CREDENTIALS = {"username": "admin", "password": PASSWORD}


@contextlib.contextmanager
def serve_admin(**env: str) -> Iterator[str]:
    settings = {"ADMIN_AUTH": PASSWORD_HASH, "STATS_INTERVAL": "0.3", **env}
    with uvicorn_on(APP, free_port(), settings) as url:
        yield url


def run(body: Callable[[], Awaitable[None]], limit: float = 15.0) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(body(), limit)

    asyncio.run(bounded())


async def until(pred: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


class Recorder:
    """A python-socketio AsyncClient on some namespaces; every event kept as (namespace, name, args)."""

    def __init__(self, url: str, transports: list[str] | None = None) -> None:
        self.url = url
        self.transports = transports or ["websocket"]
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: list[tuple[str, str, list[Any]]] = []
        self.connect_errors: list[Any] = []
        self.disconnects: list[str] = []

    async def connect(self, namespaces: list[str], auth: dict[str, Any] | None = None) -> Recorder:
        for ns in namespaces:
            self._record(ns)
        await self.sio.connect(self.url, namespaces=namespaces, auth=auth, transports=self.transports,
                               wait_timeout=5)
        return self

    def _record(self, ns: str) -> None:
        async def any_event(event: str, *args: Any) -> None:
            self.events.append((ns, event, list(args)))

        async def on_connect_error(data: Any) -> None:
            self.connect_errors.append(data)

        async def on_disconnect(reason: Any = None) -> None:
            self.disconnects.append(str(reason))

        self.sio.on("*", any_event, namespace=ns)
        self.sio.on("connect_error", on_connect_error, namespace=ns)
        self.sio.on("disconnect", on_disconnect, namespace=ns)

    def named(self, name: str, ns: str | None = None) -> list[list[Any]]:
        return [args for n, event, args in self.events if event == name and (ns is None or n == ns)]

    async def wait_for(self, name: str, match: Callable[[list[Any]], bool] = lambda _: True,
                       timeout: float = 5.0) -> list[Any]:
        def found() -> list[Any] | None:
            return next((args for args in self.named(name) if match(args)), None)

        result: list[Any] = await until(found, timeout, f"event {name!r}")
        return result

    def sid(self, ns: str = "/") -> str:
        sid = self.sio.get_sid(ns)
        assert sid is not None
        return str(sid)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.sio.disconnect()


async def admin(url: str, auth: dict[str, Any] | None = None) -> Recorder:
    return await Recorder(url).connect(["/admin"], auth=CREDENTIALS if auth is None else auth)
