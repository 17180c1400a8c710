"""Python nodes and Node.js socket.io 4.8 nodes in one cluster on one Redis: with Node's
@socket.io/redis-adapter 8.x (classic pub/sub) and with @socket.io/redis-streams-adapter 0.3.x,
broadcasts, acks, fetchSockets, socketsJoin/Leave, disconnectSockets and serverSideEmit cross
both ways; Node's real emitter reaches Python nodes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from .conftest import RedisServer
from .node_cluster import node_cluster_node, run_node_emitter
from .nodes import Client, python_node, until

pytestmark = pytest.mark.timeout(90)


def run(body: Callable[[], Awaitable[None]], limit: float = 60.0) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(body(), limit)

    asyncio.run(bounded())


async def call(node: Any, op: str, **body: Any) -> Any:
    return await asyncio.to_thread(node.control, op, **body)


@pytest.mark.parametrize("adapter", ["redis", "streams"])
def test_python_and_node_nodes_serve_one_cluster(redis_server: RedisServer, adapter: str) -> None:
    with python_node(redis_server.url, adapter, name="py") as py, node_cluster_node(redis_server.url, adapter) as js:

        async def body() -> None:
            assert (await call(py, "serverCount"))["count"] == 2
            assert (await call(js, "serverCount"))["count"] == 2
            on_py = await Client(py.url).connect({"rooms": ["r1"], "data": {"who": "on-py"}})
            on_js = await Client(js.url, transport="polling").connect({"rooms": ["r1"], "data": {"who": "on-js"}})
            try:
                # broadcasts both ways, binary included
                for sender, event in ((py, "from-py"), (js, "from-js")):
                    await call(sender, "emit", rooms=["r1"], event=event, args=["x", b"\x00\xff", {"n": 1}])
                    await until(lambda: on_py.got(event) and on_js.got(event), what=event)
                    (a,), (b,) = on_py.got(event), on_js.got(event)
                    assert a[:3] == b[:3] == ["x", b"\x00\xff", {"n": 1}]
                    if adapter == "streams":
                        assert a[3] == b[3] and a[3].count("-") == 1  # the same stream offset everywhere
                await call(js, "emit", event="not-r1", args=[], except_=["r1"])
                await call(py, "emit", event="mark", args=[])
                await until(lambda: on_js.got("mark") and on_py.got("mark"), what="mark")
                assert not on_py.got("not-r1") and not on_js.got("not-r1")

                # broadcast acks both ways: every client of both nodes answers
                for sender in (py, js):
                    res = await call(sender, "emitWithAck", rooms=["r1"], event="ask", args=[1], timeout=3000)
                    assert "error" not in res, res
                    assert sorted(r["got"] for r in res["responses"]) == ["ask", "ask"]

                # fetchSockets both ways, with rooms, data and the handshake
                for asker, other, who in ((py, on_js, "on-js"), (js, on_py, "on-py")):
                    found = {s["id"]: s for s in await call(asker, "fetchSockets", rooms=["r1"])}
                    assert set(found) == {on_py.sid(), on_js.sid()}
                    remote = found[other.sid()]
                    assert set(remote["rooms"]) == {other.sid(), "r1"}
                    assert remote["data"] == {"who": who}
                    assert remote["handshake"]["query"]["EIO"] == "4"
                    assert remote["handshake"]["address"] == "127.0.0.1"

                # socketsJoin / socketsLeave / disconnectSockets on the other kind of node
                await call(py, "socketsJoin", rooms=[on_js.sid()], target=["joined"])
                await until(lambda: any("joined" in s["rooms"] for s in js.control("localSockets")), what="join on node")
                await call(js, "socketsJoin", rooms=[on_py.sid()], target=["joined"])
                await until(lambda: any("joined" in s["rooms"] for s in py.control("localSockets")), what="join on py")
                await call(py, "emit", rooms=["joined"], event="to-joined", args=[])
                await until(lambda: on_py.got("to-joined") and on_js.got("to-joined"), what="to the joined room")
                await call(js, "socketsLeave", rooms=[on_py.sid()], target=["joined"])
                await until(lambda: not any("joined" in s["rooms"] for s in py.control("localSockets")), what="leave")

                # server-side emits both ways, with answers
                res = await call(py, "serverSideEmit", event="ping-node", args=[1], ack=True)
                assert res == {"responses": [{"from": "node", "args": [1]}]}
                res = await call(js, "serverSideEmit", event="ping-node", args=[2], ack=True)
                assert res == {"responses": [{"from": "py", "args": [2]}]}

                await call(js, "disconnectSockets", rooms=[on_py.sid()])
                await until(lambda: on_py.disconnected == ["/"], what="disconnect from node")
                await call(py, "disconnectSockets", rooms=[on_js.sid()])
                await until(lambda: on_js.disconnected == ["/"], what="disconnect from py")
            finally:
                await on_py.close()
                await on_js.close()

        run(body)


def test_node_emitter_reaches_python_and_node_nodes(redis_server: RedisServer) -> None:
    with python_node(redis_server.url, name="py") as py, node_cluster_node(redis_server.url, "redis") as js:

        async def body() -> None:
            on_py = await Client(py.url).connect({"rooms": ["r"]})
            on_js = await Client(js.url).connect({"rooms": ["r"]})
            try:
                commands = [{"op": "emit", "rooms": ["r"], "event": "from-emitter", "args": [1, {"$bin": "01"}]}]
                await asyncio.to_thread(run_node_emitter, redis_server.url, commands)
                await until(lambda: on_py.got("from-emitter") and on_js.got("from-emitter"), what="emitter")
                assert on_py.got("from-emitter") == [[1, b"\x01"]]
            finally:
                await on_py.close()
                await on_js.close()

        run(body)
