"""The pub/sub RedisAdapter across two and three Python nodes (uvicorn processes) on a real
redis-server, with python-socketio clients on each node."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from .conftest import RedisServer
from .nodes import Client, PythonNode, python_node, until

pytestmark = pytest.mark.timeout(60)


def run(body: Callable[[], Awaitable[None]], limit: float = 30.0) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(body(), limit)

    asyncio.run(bounded())


def test_two_nodes_share_rooms_broadcasts_acks_and_sockets(redis_server: RedisServer) -> None:
    with python_node(redis_server.url, name="a") as a, python_node(redis_server.url, name="b") as b:

        async def body() -> None:
            assert (await a.acontrol("serverCount"))["count"] == 2
            assert (await b.acontrol("serverCount"))["count"] == 2
            c1 = await Client(a.url).connect({"rooms": ["r1"]})
            c2 = await Client(b.url, transport="polling").connect({"rooms": ["r1"], "data": {"who": "c2"}})
            c3 = await Client(b.url).connect({"rooms": ["r3"]})
            try:
                # to a room that has members on both nodes, and to everyone but one room
                await a.acontrol("emit", rooms=["r1"], event="hello", args=[1, {"$bin": "0102"}])
                await until(lambda: c1.got("hello") and c2.got("hello"), what="room broadcast")
                assert c2.got("hello") == [[1, b"\x01\x02"]]
                await b.acontrol("emit", event="all", args=["x"], **{"except": ["r3"]})
                await until(lambda: c1.got("all") and c2.got("all"), what="broadcast with except")
                # `local` stays on its node
                await a.acontrol("emit", event="mine", args=[], local=True)
                await until(lambda: c1.got("mine"), what="local broadcast")
                await a.acontrol("emit", event="after", args=[])
                await until(lambda: c3.got("after"), what="a later broadcast")
                assert not c2.got("mine") and not c3.got("mine")
                assert not c3.got("hello") and not c3.got("all")

                # broadcast with acks: every client of every node answers
                res = await a.acontrol("emitWithAck", event="ask", args=[7], timeout=3000)
                assert "error" not in res, res
                assert sorted(r["got"] for r in res["responses"]) == ["ask", "ask", "ask"]

                # fetch_sockets sees the other node's sockets, with rooms, data and handshake
                found = {s["id"]: s for s in await a.acontrol("fetchSockets", rooms=["r1"])}
                assert set(found) == {c1.sid(), c2.sid()}
                remote = found[c2.sid()]
                assert set(remote["rooms"]) == {c2.sid(), "r1"}
                assert remote["data"] == {"who": "c2"}
                assert remote["handshake"]["query"]["transport"] == "polling"

                # sockets_join / sockets_leave on another node's sockets
                await a.acontrol("socketsJoin", rooms=["r3"], target=["joined"])
                await until(lambda: any("joined" in s["rooms"] for s in b.control("localSockets")), what="remote join")
                await a.acontrol("emit", rooms=["joined"], event="to-joined", args=[])
                await until(lambda: c3.got("to-joined"), what="broadcast to the joined room")
                await a.acontrol("socketsLeave", rooms=["joined"], target=["joined"])
                await until(lambda: not any("joined" in s["rooms"] for s in b.control("localSockets")), what="leave")

                # server-side emits, with and without answers
                res = await a.acontrol("serverSideEmit", event="ping-node", args=[1, "two"], ack=True)
                assert res == {"responses": [{"from": "b", "args": [1, "two"]}]}
                await b.acontrol("serverSideEmit", event="note", args=["n"])
                await until(lambda: a.control("received")[-1:] == [{"event": "note", "args": ["n"]}], what="note")
                assert all(r["event"] != "note" for r in b.control("received"))  # not to itself

                # disconnect_sockets reaches the other node's sockets
                await a.acontrol("disconnectSockets", rooms=["r3"])
                await until(lambda: c3.disconnected == ["/"], what="remote disconnect")
                assert not c1.disconnected and not c2.disconnected
            finally:
                for c in (c1, c2, c3):
                    await c.close()

        run(body)


def test_three_nodes_count_and_answer(redis_server: RedisServer) -> None:
    with (
        python_node(redis_server.url, name="a") as a,
        python_node(redis_server.url, name="b") as b,
        python_node(redis_server.url, name="c") as c,
    ):

        async def body() -> None:
            nodes: list[PythonNode] = [a, b, c]
            clients = [await Client(n.url).connect({"rooms": ["all"]}) for n in nodes]
            try:
                assert (await c.acontrol("serverCount"))["count"] == 3
                res = await b.acontrol("serverSideEmit", event="ping-node", args=[], ack=True)
                assert sorted(r["from"] for r in res["responses"]) == ["a", "c"]
                res = await c.acontrol("emitWithAck", rooms=["all"], event="q", args=[], timeout=3000)
                assert len(res["responses"]) == 3 and "error" not in res
                assert len(await a.acontrol("fetchSockets")) == 3
            finally:
                for client in clients:
                    await client.close()

        run(body)


def test_uvicorn_workers_are_one_app_with_the_redis_adapter(redis_server: RedisServer) -> None:
    """`uvicorn --workers 2`: WebSocket clients land on either worker (no stickiness needed),
    and broadcasts, acks and fetch_sockets span both."""
    with python_node(redis_server.url, name="w", workers=2) as node:

        async def body() -> None:
            async def counted() -> None:
                while (await node.acontrol("serverCount"))["count"] != 2:
                    await asyncio.sleep(0.1)

            await asyncio.wait_for(counted(), 20)
            clients = [await Client(node.url).connect({"rooms": ["r"]}) for _ in range(8)]
            try:
                # the control request, like the clients, is served by whichever worker takes it
                await node.acontrol("emit", rooms=["r"], event="all-workers", args=[])
                await until(lambda: all(c.got("all-workers") for c in clients), what="every client")
                assert len(await node.acontrol("fetchSockets", rooms=["r"])) == 8
                res = await node.acontrol("emitWithAck", rooms=["r"], event="q", args=[], timeout=3000)
                assert len(res["responses"]) == 8 and "error" not in res
            finally:
                for c in clients:
                    await c.close()

        run(body)


@pytest.mark.parametrize("adapter", ["redis", "streams"])
def test_remote_sockets_act_on_their_node(redis_server: RedisServer, adapter: str) -> None:
    """What fetch_sockets returns for another node's socket: emit, join, leave and disconnect
    work on it from here."""
    with python_node(redis_server.url, adapter, name="a") as a, python_node(redis_server.url, adapter, name="b") as b:

        async def body() -> None:
            c = await Client(b.url).connect({"rooms": ["r"]})
            try:
                await a.acontrol("remote", rooms=["r"], action="emit", event="direct", args=["hi"])
                await until(lambda: c.got("direct"), what="emit to a remote socket")
                assert c.got("direct")[0][0] == "hi"
                await a.acontrol("remote", rooms=["r"], action="join", target=["x", "y"])
                await until(lambda: {"x", "y"} <= set(b.control("localSockets")[0]["rooms"]), what="remote join")
                await a.acontrol("remote", rooms=["r"], action="leave", target=["x"])
                await until(lambda: "x" not in b.control("localSockets")[0]["rooms"], what="remote leave")
                await a.acontrol("remote", rooms=["r"], action="disconnect")
                await until(lambda: c.disconnected == ["/"], what="remote disconnect")
            finally:
                await c.close()

        run(body)
