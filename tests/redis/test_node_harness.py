"""The Node cluster harness against itself: two Node socket.io servers on one Redis (classic, streams, and
sharded on a Redis Cluster), driven through their control API, with a python-socketio client on one of them.

Sync tests that drive their own event loop with asyncio.run; control calls block, so they run in a thread
(a client may have to answer while the node waits).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import socketio

from .conftest import RedisServer
from .node_cluster import NodeClusterNode, node_cluster_node, run_node_emitter
from .redis_cluster import RedisCluster

pytestmark = pytest.mark.timeout(45)
OFFSET = re.compile(r"^\d+-\d+$")


def run(body: Callable[[], Awaitable[None]], limit: float = 20.0) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(body(), limit)

    asyncio.run(bounded())


async def ctl(node: NodeClusterNode, name: str, **fields: Any) -> Any:
    return await asyncio.to_thread(node.control, name, **fields)


async def until(pred: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


class Client:
    """A python-socketio AsyncClient recording what it receives: `events[(namespace, event)]` = list of args."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: defaultdict[tuple[str, str], list[list[Any]]] = defaultdict(list)

    def record(self, event: str, namespace: str = "/") -> None:
        async def handler(*args: Any) -> None:
            self.events[(namespace, event)].append(list(args))

        self.sio.on(event, handler, namespace=namespace)

    async def connect(self, auth: dict[str, Any], namespaces: list[str] | None = None) -> None:
        await self.sio.connect(self.url, auth=auth, namespaces=namespaces or ["/"], transports=["websocket"],
                               wait_timeout=5)

    def sid(self, namespace: str = "/") -> str:
        sid = self.sio.get_sid(namespace)
        assert sid is not None
        return str(sid)

    async def received(self, event: str, count: int = 1, namespace: str = "/") -> list[list[Any]]:
        await until(lambda: len(self.events[(namespace, event)]) >= count, what=f"{count} {event!r} on {namespace}")
        return self.events[(namespace, event)]

    async def close(self) -> None:
        await self.sio.disconnect()


def test_redis_adapter_two_nodes(redis_server: RedisServer) -> None:
    options = {"namespaces": ["/chat"], "requestsTimeout": 3000}
    with node_cluster_node(redis_server.url, "redis", options) as a, \
            node_cluster_node(redis_server.url, "redis", options) as b:
        assert a.uid != b.uid and set(a.uids) == {"/", "/chat"}

        async def body() -> None:
            client = Client(b.url)
            for event in ("hello", "chat-hello", "from-emitter", "mine"):
                client.record(event, "/chat" if event == "chat-hello" else "/")
            await client.connect({"rooms": ["r1", "r2"], "data": {"who": "py"}}, ["/", "/chat"])
            try:
                sid = client.sid()
                assert await ctl(a, "serverCount") == {"count": 2}
                assert await ctl(b, "serverCount", nsp="/chat") == {"count": 2}

                # a broadcast from A to one room (the room's own channel) and to two rooms (the common one)
                await ctl(a, "emit", rooms=["r1"], event="hello", args=["one", b"\x01\x02"])
                await ctl(a, "emit", rooms=["r1", "nowhere"], except_=["r3"], event="hello", args=["two"])
                await ctl(a, "emit", rooms=["r2"], except_=["r1"], event="hello", args=["never"])
                await ctl(a, "emit", nsp="/chat", event="chat-hello", args=[{"n": 1}])
                assert await client.received("hello", 2) == [["one", b"\x01\x02"], ["two"]]
                assert await client.received("chat-hello", namespace="/chat") == [[{"n": 1}]]

                # A sees B's socket, its rooms and data; the local view of B has it, A's has not
                sockets = await ctl(a, "fetchSockets", rooms=["r1"])
                assert [(s["id"], sorted(s["rooms"]), s["data"]) for s in sockets] == [
                    (sid, sorted([sid, "r1", "r2"]), {"who": "py"})]
                assert sockets[0]["handshake"]["auth"]["data"] == {"who": "py"}
                assert await ctl(a, "localSockets") == []
                assert await ctl(b, "localSockets") == [{"id": sid, "rooms": [sid, "r1", "r2"]}]

                # server-side emit with ack: B answers; both kinds are recorded on B. The classic adapter sends
                # these requests as JSON text: a Buffer arrives as Node's Buffer.toJSON() object.
                as_json = {"type": "Buffer", "data": [255]}
                answer = await ctl(a, "serverSideEmit", event="ping-node", args=[7, b"\xff"], ack=True)
                assert answer == {"responses": [{"from": "node", "args": [7, as_json]}]}
                assert await ctl(a, "serverSideEmit", event="note", args=["x"]) == {"ok": True}
                await until(lambda: len(b.control("received")) == 2, what="server-side events on B")
                assert b.control("received") == [
                    {"nsp": "/", "event": "ping-node", "args": [7, as_json], "ack": True},
                    {"nsp": "/", "event": "note", "args": ["x"], "ack": False},
                ]
                assert a.control("received") == []

                # a client event and its broadcast: B records it, the socket gets it back through its room
                assert await client.sio.call("broadcast", {"rooms": ["r2"], "event": "mine", "args": [1]},
                                             timeout=5) is True
                assert await client.received("mine") == [[1]]
                assert await client.sio.call("echo", "e", timeout=5) == "e"
                events = await ctl(b, "events")
                assert [(e["id"], e["event"], e["ack"]) for e in events] == [
                    (sid, "broadcast", True), (sid, "echo", True)]

                # the emitter reaches the client through Redis
                await asyncio.to_thread(run_node_emitter, redis_server.url, [
                    {"op": "emit", "rooms": ["r1"], "event": "from-emitter", "args": ["em", b"\x00"]},
                    {"op": "socketsJoin", "rooms": ["r1"], "target": ["joined"]},
                    {"op": "serverSideEmit", "event": "from-emitter", "args": [1]},
                ])
                assert await client.received("from-emitter") == [["em", b"\x00"]]
                await until(lambda: len(a.control("received")) == 1, what="emitter's server-side event on A")
                assert a.control("received") == [{"nsp": "/", "event": "from-emitter", "args": [1], "ack": False}]
                await until(lambda: "joined" in b.control("localSockets")[0]["rooms"], what="emitter join")

                # A makes B's socket leave a room (the classic adapter applies it when the request comes back)
                assert await ctl(a, "socketsLeave", rooms=[sid], target=["r2"]) == {"ok": True}
                await until(lambda: "r2" not in b.control("localSockets")[0]["rooms"], what="remote leave")
            finally:
                await client.close()

        run(body)


def test_streams_adapter_two_nodes(redis_server: RedisServer) -> None:
    with node_cluster_node(redis_server.url, "streams") as a, node_cluster_node(redis_server.url, "streams") as b:

        async def body() -> None:
            client = Client(b.url)
            client.record("hello")
            await client.connect({"rooms": ["r1"]})
            try:
                sid = client.sid()
                assert await ctl(a, "serverCount") == {"count": 2}
                await ctl(a, "emit", rooms=["r1"], event="hello", args=["one", b"\x01"])
                [args] = await client.received("hello")
                # connection state recovery is on: the stream entry id comes as a last argument
                assert args[:2] == ["one", b"\x01"] and OFFSET.match(args[2]), args
                sockets = await ctl(a, "fetchSockets", rooms=["r1"])
                assert [(s["id"], sorted(s["rooms"]), s["data"]) for s in sockets] == [
                    (sid, sorted([sid, "r1"]), {"node": "node"})]
                answer = await ctl(a, "serverSideEmit", event="ping-node", args=[], ack=True)
                assert answer == {"responses": [{"from": "node", "args": []}]}
            finally:
                await client.close()

        run(body)


@pytest.fixture
def redis_cluster(tmp_path: Path) -> Iterator[RedisCluster]:
    with RedisCluster(tmp_path / "cluster") as cluster:
        yield cluster


def test_sharded_adapter_on_redis_cluster(redis_cluster: RedisCluster) -> None:
    options = {"cluster": redis_cluster.urls, "subscriptionMode": "dynamic"}
    url = redis_cluster.urls[0]
    with node_cluster_node(url, "sharded", options) as a, node_cluster_node(url, "sharded", options) as b:

        async def body() -> None:
            client = Client(b.url)
            client.record("hello")
            await client.connect({"rooms": ["r1"]})
            try:
                sid = client.sid()
                assert await ctl(a, "serverCount") == {"count": 2}
                # one public room: its own sharded channel, subscribed by B before the client got CONNECT
                await ctl(a, "emit", rooms=["r1"], event="hello", args=["room", b"\x02"])
                # the socket's own room (the common channel in "dynamic" mode) and everyone
                await ctl(a, "emit", rooms=[sid], event="hello", args=["sid"])
                await ctl(a, "emit", event="hello", args=["all"])
                # the room's channel and the common one may live on different shards (other connections):
                # their messages can arrive in either order
                got = await client.received("hello", 3)
                assert sorted(got, key=repr) == sorted([["room", b"\x02"], ["sid"], ["all"]], key=repr)
                sockets = await ctl(a, "fetchSockets")
                assert [s["id"] for s in sockets] == [sid]
            finally:
                await client.close()

        run(body)
