"""The Redis Streams adapter across Python nodes (uvicorn processes) on a real redis-server:
cluster-wide operations, and connection state recovery on whichever node the client lands."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from tests.conftest import NODE_DIR
from tests.interop.node import NodeRun

from .conftest import RedisServer
from .nodes import Client, python_node, until

pytestmark = pytest.mark.timeout(120)


def run(body: Callable[[], Awaitable[None]], limit: float = 30.0) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(body(), limit)

    asyncio.run(bounded())


def test_streams_nodes_share_broadcasts_sockets_and_server_side_emits(redis_server: RedisServer) -> None:
    with python_node(redis_server.url, "streams", name="a") as a, python_node(redis_server.url, "streams", name="b") as b:

        async def body() -> None:
            assert (await a.acontrol("serverCount"))["count"] == 2
            c1 = await Client(a.url).connect({"rooms": ["r1"]})
            c2 = await Client(b.url, transport="polling").connect({"rooms": ["r1"], "data": {"who": "c2"}})
            try:
                await b.acontrol("emit", rooms=["r1"], event="hello", args=["x", {"$bin": "ff00"}])
                await until(lambda: c1.got("hello") and c2.got("hello"), what="broadcast")
                # with recovery on, every stored event carries its stream entry id, alike on both nodes
                (args1,), (args2,) = c1.got("hello"), c2.got("hello")
                assert args1[:2] == ["x", b"\xff\x00"] and args1 == args2
                assert isinstance(args1[-1], str) and args1[-1].count("-") == 1
                found = {s["id"]: s for s in await a.acontrol("fetchSockets", rooms=["r1"])}
                assert set(found) == {c1.sid(), c2.sid()}
                assert found[c2.sid()]["data"] == {"who": "c2"}
                res = await a.acontrol("serverSideEmit", event="ping-node", args=[3], ack=True)
                assert res == {"responses": [{"from": "b", "args": [3]}]}
                res = await b.acontrol("emitWithAck", rooms=["r1"], event="q", args=[], timeout=3000)
                assert len(res["responses"]) == 2, res
                await a.acontrol("socketsJoin", rooms=["r1"], target=["r9"])
                await until(lambda: all("r9" in s["rooms"] for s in b.control("localSockets")), what="join")
                await a.acontrol("disconnectSockets", rooms=[c2.sid()])
                await until(lambda: c2.disconnected == ["/"], what="remote disconnect")
            finally:
                await c1.close()
                await c2.close()

        run(body)


@pytest.mark.parametrize(("transport", "drops"), [("websocket", 100), ("polling", 30)])
def test_recovery_on_the_other_node_loses_and_repeats_nothing(
    redis_server: RedisServer, transport: str, drops: int
) -> None:
    """socket.io-client drops its transport and comes back on the other node each time, while
    both nodes emit numbered events to its room: every event arrives exactly once, in order."""
    with python_node(redis_server.url, "streams", name="a") as a, python_node(redis_server.url, "streams", name="b") as b:
        result = NodeRun(NODE_DIR / "cluster_recovery.mjs", a.url, b.url, str(drops), transport, limit=80).result()
    assert result["connects"] == drops + 1
    assert result["recovered"] == drops, result
    assert result["offsetsAreStreamIds"], result
    assert result["a"]["exact"], result["a"]
    assert result["b"]["exact"], result["b"]
