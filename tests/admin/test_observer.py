"""The AdminObserver on the observation seam, in-process (RealtimeTestClient: the real ASGI app,
real Engine.IO and Socket.IO bytes): the stats timer's start and stop, a socket refused by its
connect handler, the data its connect handler set, transport upgrades, and broadcasts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from fastapi_realtime import ConnectionRejected, Realtime, Socket
from fastapi_realtime.admin import AdminObserver, Instrumentation, instrument
from fastapi_realtime.testing import RealtimeTestClient

pytestmark = pytest.mark.timeout(30)


def make_app(**options: Any) -> tuple[Realtime, Instrumentation]:
    rt = Realtime()

    @rt.on("connect")
    async def connect(socket: Socket, auth: Any = None) -> None:
        if isinstance(auth, dict) and auth.get("refuse"):
            raise ConnectionRejected("not you")
        socket.data["name"] = "ada"

    @rt.on("shout")
    async def shout(socket: Socket, text: Any = None) -> None:
        await rt.emit("news", text)

    return rt, instrument(rt, auth=False, stats_interval=0.05, **options)


def test_stats_run_from_start_up_to_shutdown() -> None:
    rt, instrumentation = make_app()
    assert not instrumentation.stats_running  # set-up code: no loop yet

    async def body() -> None:
        async with RealtimeTestClient(rt) as client:
            assert instrumentation.stats_running  # the lifespan started the server
            watcher = await client.connect("/admin")
            assert instrumentation.stats_running
            first = await watcher.wait_for("server_stats")
            assert first["clientsCount"] == 1
            await watcher.wait_for("server_stats")  # and again, each interval
        assert not instrumentation.stats_running  # the server shut down
        await asyncio.sleep(0.1)
        assert not instrumentation.stats_running

    asyncio.run(body())


def test_instrumented_from_the_loop_starts_at_once() -> None:
    async def body() -> None:
        _, instrumentation = make_app()
        assert instrumentation.stats_running
        instrumentation._stop()
        assert not instrumentation.stats_running

    asyncio.run(body())


def test_refused_by_its_connect_handler_is_reported_gone() -> None:
    rt, _ = make_app()

    async def body() -> None:
        async with RealtimeTestClient(rt) as client:
            watcher = await client.connect("/admin")
            await watcher.wait_for("all_sockets")
            with pytest.raises(Exception, match="not you"):
                await client.connect("/", auth={"refuse": True})
            socket, _ = await next_on(watcher, "socket_connected", lambda a: a[0]["nsp"] == "/")
            nsp, sid, reason, _ = await watcher.wait_for("socket_disconnected")
            assert (nsp, sid, reason) == ("/", socket["id"], "server namespace disconnect")

    asyncio.run(body())


def test_connect_handler_data_is_reported() -> None:
    rt, instrumentation = make_app()

    async def body() -> None:
        async with RealtimeTestClient(rt) as client:
            watcher = await client.connect("/admin")
            await watcher.wait_for("all_sockets")
            ada = await client.connect("/", transport="polling")
            connected, _ = await next_on(watcher, "socket_connected", lambda a: a[0]["nsp"] == "/")
            # Reported as it joined, before its connect handler; its data once that ran, as Node's
            # data proxy reports the handler's assignment.
            assert connected["id"] == ada.id and connected["data"] == {}
            assert await watcher.wait_for("socket_updated") == {"id": ada.id, "nsp": "/", "data": {"name": "ada"}}
            assert ada.id is not None
            assert rt.of("/").sockets[ada.id].data["_admin"]["transport"] == "polling"
            assert instrumentation.observer.sockets.keys() >= {("/", ada.id)}

    asyncio.run(body())


def test_upgrade_is_reported() -> None:
    observer = AdminObserver(_no_emit, admin_namespace="/admin", development=True)
    sent: list[tuple[str, tuple[Any, ...]]] = []
    observer.send = lambda event, *args: sent.append((event, args))  # type: ignore[method-assign]

    class Session:
        sid = "s1"

    class Client:
        session = Session()

    class Handshake:
        def to_dict(self) -> dict[str, Any]:
            return {}

    class Fake:
        id, namespace, client, transport, data = "a", "/", Client(), "polling", dict[str, Any]()
        handshake, rooms = Handshake(), {"a"}

    fake: Any = Fake()
    observer.socket_connected(fake)
    fake.transport = "websocket"
    observer.engine_upgraded(Session())
    assert sent[-1] == ("socket_updated", ({"id": "a", "nsp": "/", "transport": "websocket"},))
    assert fake.data["_admin"] == {"clientId": "s1", "transport": "websocket"}
    observer.engine_upgraded(Session())  # nothing new
    assert len(sent) == 2
    observer.socket_disconnected(fake, "transport close")
    event, args = sent.pop()
    assert event == "socket_disconnected" and args[:3] == ("/", "a", "transport close")
    assert observer.sockets == {} and observer._by_session == {}


def test_broadcast_recipients_each_get_event_sent() -> None:
    observer = AdminObserver(_no_emit, admin_namespace="/admin", development=True)
    sent: list[tuple[str, tuple[Any, ...]]] = []
    observer.send = lambda event, *args: sent.append((event, args))  # type: ignore[method-assign]
    observer.event_sent("/", None, ["news", 1], 2)  # a broadcast names no recipient
    assert sent == []
    observer.broadcast_sent("/", ["a", "b"], ["news", 1])
    assert [(e, a[:3]) for e, a in sent] == [("event_sent", ("/", "a", ["news", 1])), ("event_sent", ("/", "b", ["news", 1]))]
    observer.broadcast_sent("/admin", ["c"], ["server_stats", {}])
    observer.event_sent("/admin", "c", ["config", {}], 1)
    assert len(sent) == 2


async def next_on(socket: Any, event: str, match: Callable[[Any], bool]) -> Any:
    while True:
        args = await socket.wait_for(event)
        if match(args):
            return args


async def _no_emit(event: str, *args: Any) -> None:
    pass
