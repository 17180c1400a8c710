"""The sharded Redis adapter (SSUBSCRIBE/SPUBLISH, Redis 7): two Python nodes (uvicorn processes) on a
standalone redis-server, the same on a three-process Redis Cluster (with a Node node beside them), and a
Python node next to a Node socket.io 4.8 node running Node's `createShardedAdapter`; python-socketio clients.

Which channel a message went through is read off MONITOR (standalone) and PUBSUB SHARDCHANNELS /
SHARDNUMSUB (every node of a cluster); a spy never subscribes to the common channel, whose subscriber
count is the node count.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import pickle
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio

from fastapi_realtime.adapters import ShardedRedisAdapter
from fastapi_realtime.adapters.sharded import looks_like_socket_id

from .conftest import RedisServer
from .node_cluster import node_cluster_node
from .nodes import Client, PythonNode, python_node, until
from .redis_cluster import RedisCluster

pytestmark = pytest.mark.timeout(80)

COMMON = "socket.io#/#"
UID_CHANNEL = re.compile(r"^socket\.io#/#[0-9a-f]{16}#$")


def run(body: Callable[[], Awaitable[None]], limit: float = 40.0) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(body(), limit)

    asyncio.run(bounded())


# -- Redis observers ---------------------------------------------------------------------------------------
class Shards:
    """PUBSUB SHARDCHANNELS / SHARDNUMSUB, summed over every node given (one for a standalone Redis)."""

    def __init__(self, ports: list[int]) -> None:
        self.clients = [redis.Redis(host="127.0.0.1", port=port, decode_responses=True) for port in ports]

    def channels(self) -> set[str]:
        found: set[str] = set()
        for client in self.clients:
            found.update(client.execute_command("PUBSUB", "SHARDCHANNELS"))  # type: ignore[no-untyped-call]
        return found

    def numsub(self, channel: str) -> int:
        total = 0
        for client in self.clients:
            reply = client.execute_command("PUBSUB", "SHARDNUMSUB", channel)  # type: ignore[no-untyped-call]
            total += int(dict(reply)[channel] if isinstance(reply, dict) else reply[1])
        return total

    async def until_numsub(self, channel: str, count: int) -> None:
        await until(lambda: self.numsub(channel) == count, what=f"SHARDNUMSUB {channel} == {count}")

    def close(self) -> None:
        for client in self.clients:
            client.close()


class Monitor:
    """MONITOR on a standalone Redis: the SPUBLISHes seen, as (channel, payload text)."""

    def __init__(self, url: str) -> None:
        self.client = redis.asyncio.Redis.from_url(url)
        self.commands: list[str] = []
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        async with self.client.monitor() as monitor:
            self._ready.set()
            while True:
                self.commands.append((await monitor.next_command())["command"])

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Monitor]:
        self._task = asyncio.get_running_loop().create_task(self._run())
        await asyncio.wait_for(self._ready.wait(), 5)
        try:
            yield self
        finally:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
            await self.client.aclose()

    def spublished(self, event: str | None = None) -> list[tuple[str, str]]:
        """SPUBLISHes (channel, payload) whose payload names `event` (as JSON text or msgpack str)."""
        found = []
        for command in self.commands:
            parts = command.split(" ", 2)
            if parts[0].upper() == "SPUBLISH" and len(parts) == 3 and (event is None or event in parts[2]):
                found.append((parts[1], parts[2]))
        return found

    async def until_published(self, event: str, count: int = 1) -> list[tuple[str, str]]:
        await until(lambda: len(self.spublished(event)) >= count, what=f"{count} SPUBLISH of {event!r}")
        return self.spublished(event)


# -- a Python node on a Redis Cluster ------------------------------------------------------------------------
def python_cluster_node(urls: list[str], name: str) -> contextlib.AbstractContextManager[PythonNode]:
    return python_node(urls[0], "sharded", name=name, options={"cluster": urls})


# -- construction --------------------------------------------------------------------------------------------
def test_options_are_checked_at_construction() -> None:
    with pytest.raises(TypeError):
        ShardedRedisAdapter.from_url("redis://127.0.0.1:1/0", subscriptionMode="static")  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="subscription_mode"):
        ShardedRedisAdapter.from_url("redis://127.0.0.1:1/0", subscription_mode="private")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="channel_prefix"):
        ShardedRedisAdapter.from_url("redis://127.0.0.1:1/0", channel_prefix="")
    with pytest.raises(ValueError, match="requests_timeout"):
        ShardedRedisAdapter.from_url("redis://127.0.0.1:1/0", requests_timeout=0)
    with pytest.raises(ValueError, match="URL"):
        ShardedRedisAdapter.from_url("127.0.0.1:6379")
    with pytest.raises(ValueError, match="at least one node"):
        ShardedRedisAdapter.from_cluster([])
    factory = ShardedRedisAdapter.from_cluster(["redis://127.0.0.1:7000", "redis://127.0.0.1:7001"],
                                               subscription_mode="dynamic-private", requests_timeout=2)
    assert factory.options.subscription_mode == "dynamic-private" and factory.options.requests_timeout == 2
    # JavaScript's length: UTF-16 code units
    assert looks_like_socket_id("a" * 20) and not looks_like_socket_id("a" * 19)
    assert not looks_like_socket_id("\U0001f600" * 10 + "a") and looks_like_socket_id("\U0001f600" * 10)


def test_needs_async_ssubscribe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(redis.asyncio.client.PubSub, "ssubscribe")
    with pytest.raises(ImportError, match=r"redis-py >= 8\.0"):
        ShardedRedisAdapter.from_url("redis://127.0.0.1:1/0")


# -- two Python nodes on one Redis ----------------------------------------------------------------------------
def test_two_python_nodes(redis_server: RedisServer) -> None:
    shards = Shards([redis_server.port])
    with python_node(redis_server.url, "sharded", name="a") as a, python_node(redis_server.url, "sharded", name="b") as b:

        async def body() -> None:
            assert (await a.acontrol("serverCount"))["count"] == 2
            assert (await b.acontrol("serverCount"))["count"] == 2
            c1 = await Client(a.url).connect({"rooms": ["r1"]})
            c2 = await Client(b.url, transport="polling").connect({"rooms": ["r1"], "data": {"who": "c2"}})
            c3 = await Client(b.url).connect({"rooms": ["r3"]})
            try:
                # every node: the common channel and its own answer channel; a channel per public room
                # with a member, none for a socket's own room
                await shards.until_numsub("socket.io#/#r1#", 2)
                await shards.until_numsub("socket.io#/#r3#", 1)
                channels = shards.channels()
                assert shards.numsub(COMMON) == 2
                assert len([c for c in channels if UID_CHANNEL.match(c)]) == 2
                assert not any(c1.sid() in c or c3.sid() in c for c in channels)

                async with Monitor(redis_server.url).running() as monitor:
                    # one public room: through its own channel, JSON text, or msgpack with binary
                    await a.acontrol("emit", rooms=["r1"], event="hello", args=[1, {"$bin": "0102"}])
                    await a.acontrol("emit", rooms=["r1"], event="text", args=["x"])
                    await until(lambda: c1.got("hello") and c2.got("hello") and c2.got("text"), what="room")
                    assert c2.got("hello") == [[1, b"\x01\x02"]]
                    [(channel, payload)] = await monitor.until_published("hello")
                    assert channel == "socket.io#/#r1#" and not payload.startswith("{")
                    [(channel, payload)] = await monitor.until_published("text")
                    assert channel == "socket.io#/#r1#" and payload.startswith("{")
                    assert json.loads(payload)["type"] == 3

                    # everyone except a room: the common channel
                    await b.acontrol("emit", event="all", args=["x"], **{"except": ["r3"]})
                    await until(lambda: c1.got("all") and c2.got("all"), what="broadcast with except")
                    assert [c for c, _ in await monitor.until_published("all")] == [COMMON]

                    # a socket's id: the common channel (it looks like a socket id)
                    await a.acontrol("emit", rooms=[c3.sid()], event="direct", args=[])
                    await until(lambda: c3.got("direct"), what="emit to a socket id")
                    assert [c for c, _ in await monitor.until_published("direct")] == [COMMON]

                    # broadcast with acks, even to one room: the common channel; answers to A's own channel
                    res = await a.acontrol("emitWithAck", rooms=["r1"], event="ask", args=[7], timeout=3000)
                    assert "error" not in res, res
                    assert [r["args"] for r in res["responses"]] == [[7], [7]]
                    res = await a.acontrol("emitWithAck", event="ask-all", args=[], timeout=3000)
                    assert "error" not in res, res
                    assert len(res["responses"]) == 3
                    assert [c for c, _ in await monitor.until_published('"ask"')][:1] == [COMMON]
                    await until(lambda: any(UID_CHANNEL.match(c) for c, _ in monitor.spublished()), what="answers")
                    assert len({c for c, _ in monitor.spublished() if UID_CHANNEL.match(c)}) == 1  # A's only

                # `local` stays on its node
                await a.acontrol("emit", event="mine", args=[], local=True)
                await until(lambda: c1.got("mine"), what="local broadcast")
                assert not c2.got("mine") and not c3.got("mine")
                assert not c3.got("hello") and not c3.got("all")

                # fetch_sockets sees the other node's sockets, with rooms, data and handshake
                found = {s["id"]: s for s in await a.acontrol("fetchSockets", rooms=["r1"])}
                assert set(found) == {c1.sid(), c2.sid()}
                remote = found[c2.sid()]
                assert set(remote["rooms"]) == {c2.sid(), "r1"}
                assert remote["data"] == {"who": "c2"}
                assert remote["handshake"]["query"]["transport"] == "polling"
                assert len(await b.acontrol("fetchSockets")) == 3

                # sockets_join / sockets_leave on the other node's sockets: its room channel comes and goes
                await a.acontrol("socketsJoin", rooms=["r3"], target=["joined"])
                await shards.until_numsub("socket.io#/#joined#", 1)
                await a.acontrol("emit", rooms=["joined"], event="to-joined", args=[])
                await until(lambda: c3.got("to-joined"), what="broadcast to the joined room")
                await a.acontrol("socketsLeave", rooms=["joined"], target=["joined"])
                await until(lambda: "socket.io#/#joined#" not in shards.channels(), what="room channel gone")
                assert not any("joined" in s["rooms"] for s in await b.acontrol("localSockets"))

                # server-side emits, with and without answers
                res = await a.acontrol("serverSideEmit", event="ping-node", args=[1, "two"], ack=True)
                assert res == {"responses": [{"from": "b", "args": [1, "two"]}]}
                res = await b.acontrol("serverSideEmit", event="ping-node", args=[{"$bin": "ff"}], ack=True)
                assert res == {"responses": [{"from": "a", "args": [b"\xff"]}]}
                await b.acontrol("serverSideEmit", event="note", args=["n"])
                await until(lambda: a.control("received")[-1:] == [{"event": "note", "args": ["n"]}], what="note")
                assert all(r["event"] != "note" for r in b.control("received"))  # not to itself

                # disconnect_sockets reaches the other node's sockets; their rooms' channels go
                await a.acontrol("disconnectSockets", rooms=["r3"])
                await until(lambda: c3.disconnected == ["/"], what="remote disconnect")
                assert not c1.disconnected and not c2.disconnected
                await until(lambda: "socket.io#/#r3#" not in shards.channels(), what="r3 channel gone")

                # the last member of r1 on B leaves: B lets go of the channel, A keeps it
                await c2.close()
                await shards.until_numsub("socket.io#/#r1#", 1)
                await c1.close()
                await until(lambda: "socket.io#/#r1#" not in shards.channels(), what="r1 channel gone")
                assert shards.numsub(COMMON) == 2
            finally:
                for client in (c1, c2, c3):
                    await client.close()

        run(body)
    shards.close()


class Exploit:
    """Unpickling this would create a file: the proof that nobody unpickled it."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.path, "w"))


def test_static_and_dynamic_private_modes(redis_server: RedisServer, tmp_path: Path) -> None:
    shards = Shards([redis_server.port])
    marker = tmp_path / "unpickled"
    with python_node(redis_server.url, "sharded", name="s", options={"subscription_mode": "static"}) as s, \
            python_node(redis_server.url, "sharded", name="p", options={"subscription_mode": "dynamic-private"}) as p:

        async def body() -> None:
            cs = await Client(s.url).connect({"rooms": ["r1"]})
            cp = await Client(p.url).connect({"rooms": ["r1"]})
            try:
                # dynamic-private: a channel for the socket's own room too; static: none at all
                await shards.until_numsub(f"socket.io#/#{cp.sid()}#", 1)
                await shards.until_numsub("socket.io#/#r1#", 1)
                assert shards.numsub(f"socket.io#/#{cs.sid()}#") == 0
                async with Monitor(redis_server.url).running() as monitor:
                    await s.acontrol("emit", rooms=["r1"], event="from-static", args=[])
                    await until(lambda: cs.got("from-static") and cp.got("from-static"), what="static room emit")
                    assert [c for c, _ in await monitor.until_published("from-static")] == [COMMON]
                    await p.acontrol("emit", rooms=[cp.sid()], event="private", args=[])
                    await until(lambda: cp.got("private"), what="emit to a socket id")
                    assert [c for c, _ in await monitor.until_published("private")] == [f"socket.io#/#{cp.sid()}#"]
                # what no node would send, on every channel a node listens to, is dropped (never unpickled)
                raw = redis.Redis(host="127.0.0.1", port=redis_server.port)
                garbage = [pickle.dumps(Exploit(str(marker))), b"", b"\xc1", b"{not json", b'{"type": "x"}',
                           b"\x93\xa1a\xc0\xc0", b"\x91" * 5000 + b"\xc0", b'{"uid":"x","nsp":"/","type":6}',
                           b'{"uid":"x","nsp":"/","type":3,"data":{"packet":{"type":2,"data":["connect"]},"opts":{}}}',
                           b'{"uid":"x","nsp":"/","type":7,"data":{"requestId":"r","opts":7}}']
                try:
                    for channel in shards.channels():
                        for payload in garbage:
                            raw.execute_command("SPUBLISH", channel, payload)  # type: ignore[no-untyped-call]
                finally:
                    raw.close()
                await s.acontrol("emit", rooms=["r1"], event="after-garbage", args=[])
                await until(lambda: cs.got("after-garbage") and cp.got("after-garbage"), what="delivery after garbage")
                assert not marker.exists() and not cs.got("connect") and not cp.got("connect")

                await cp.close()
                await until(lambda: all(c == COMMON or UID_CHANNEL.match(c) for c in shards.channels()),
                            what="only the common and answer channels left")
            finally:
                await cs.close()
                await cp.close()

        run(body)
    shards.close()


# -- a Redis Cluster -------------------------------------------------------------------------------------------
@pytest.fixture
def redis_cluster(tmp_path: Path) -> Iterator[RedisCluster]:
    with RedisCluster(tmp_path / "cluster") as cluster:
        yield cluster


def test_redis_cluster(redis_cluster: RedisCluster) -> None:
    urls = redis_cluster.urls
    shards = Shards(redis_cluster.ports)
    with python_cluster_node(urls, "a") as a, python_cluster_node(urls, "b") as b, \
            node_cluster_node(urls[0], "sharded", {"cluster": urls}) as n:

        async def body() -> None:
            for node in (a, b):
                assert (await node.acontrol("serverCount"))["count"] == 3
            assert await asyncio.to_thread(n.control, "serverCount") == {"count": 3}
            rooms = [f"room-{i}" for i in range(6)]  # spread over the cluster's slots
            c1 = await Client(a.url).connect({"rooms": rooms})
            c2 = await Client(b.url).connect({"rooms": rooms[:3], "data": {"who": "c2"}})
            cn = await Client(n.url).connect({"rooms": rooms[3:]})
            try:
                for room in rooms:
                    await shards.until_numsub(f"socket.io#/#{room}#", 2)
                assert shards.numsub(COMMON) == 3
                owners = {redis_cluster.ports[i] for i, client in enumerate(shards.clients)
                          if any(c.startswith("socket.io#/#room-") for c in
                                 client.execute_command("PUBSUB", "SHARDCHANNELS"))}  # type: ignore[no-untyped-call]
                assert len(owners) >= 2, "the room channels all hashed to one node"

                for room in rooms:
                    await a.acontrol("emit", rooms=[room], event="hello", args=[room, {"$bin": "02"}])
                await until(lambda: len(c1.got("hello")) == 6, what="room broadcasts on A")
                await until(lambda: len(c2.got("hello")) == 3 and len(cn.got("hello")) == 3, what="room broadcasts")
                assert sorted(args[0] for args in c2.got("hello")) == rooms[:3]
                assert cn.got("hello")[0][1] == b"\x02"
                await asyncio.to_thread(n.control, "emit", rooms=[c2.sid()], event="direct", args=["n"])
                await b.acontrol("emit", event="all", args=[])
                await until(lambda: c2.got("direct") == [["n"]] and c1.got("all") and cn.got("all"), what="emits")

                found = {s["id"]: s for s in await a.acontrol("fetchSockets", rooms=["room-2", "room-3"])}
                assert set(found) == {c1.sid(), c2.sid(), cn.sid()}
                assert found[c2.sid()]["data"] == {"who": "c2"}
                node_found = await asyncio.to_thread(n.control, "fetchSockets")
                assert {s["id"] for s in node_found} == {c1.sid(), c2.sid(), cn.sid()}

                res = await a.acontrol("serverSideEmit", event="ping-node", args=[1], ack=True)
                assert sorted(r["from"] for r in res["responses"]) == ["b", "node"], res
                res = await a.acontrol("emitWithAck", event="ask", args=[], timeout=3000)
                assert "error" not in res and len(res["responses"]) == 3, res

                await c2.close()
                for room in rooms[:3]:
                    await shards.until_numsub(f"socket.io#/#{room}#", 1)
            finally:
                for client in (c1, c2, cn):
                    await client.close()

        run(body)
    shards.close()


# -- a Python node and a Node node -----------------------------------------------------------------------------
def test_python_and_node_nodes(redis_server: RedisServer) -> None:
    shards = Shards([redis_server.port])
    with python_node(redis_server.url, "sharded", name="py") as p, node_cluster_node(redis_server.url, "sharded") as n:

        async def nctl(name: str, **fields: Any) -> Any:
            return await asyncio.to_thread(n.control, name, **fields)

        async def body() -> None:
            assert (await p.acontrol("serverCount"))["count"] == 2
            assert await nctl("serverCount") == {"count": 2}
            cp = await Client(p.url).connect({"rooms": ["r1"], "data": {"who": "cp"}})
            cn = await Client(n.url).connect({"rooms": ["r1", "r2"]})
            try:
                await shards.until_numsub("socket.io#/#r1#", 2)
                assert shards.numsub("socket.io#/#r2#") == 1

                # one room (its channel) and everyone (the common channel), binary both ways
                await p.acontrol("emit", rooms=["r1"], event="py-room", args=["a", {"$bin": "0001ff"}])
                await nctl("emit", rooms=["r1"], event="node-room", args=["b", b"\x03\x04"])
                await p.acontrol("emit", event="py-all", args=[{"nested": {"$bin": "07"}}])
                await nctl("emit", event="node-all", args=[{"n": 1}], except_=["r2"])
                await nctl("emit", rooms=[cp.sid()], event="node-direct", args=[b"\x09"])
                await until(lambda: all((cp.got("py-room"), cn.got("py-room"), cp.got("node-room"),
                                         cn.got("node-room"), cp.got("py-all"), cn.got("py-all"),
                                         cp.got("node-all"), cp.got("node-direct"))), what="broadcasts both ways")
                assert cn.got("py-room") == [["a", b"\x00\x01\xff"]]
                assert cp.got("node-room") == [["b", b"\x03\x04"]]
                assert cn.got("py-all") == [[{"nested": b"\x07"}]]
                assert cp.got("node-direct") == [[b"\x09"]]
                assert not cn.got("node-all")  # except r2

                # broadcast with acks both ways
                res = await p.acontrol("emitWithAck", rooms=["r1"], event="ask", args=[1], timeout=3000)
                assert "error" not in res and len(res["responses"]) == 2, res
                res = await nctl("emitWithAck", event="ask", args=[b"\x05"], timeout=3000)
                assert "error" not in res and len(res["responses"]) == 2, res
                assert all(r["args"] == [b"\x05"] for r in res["responses"])

                # fetchSockets both ways, with rooms and data
                found = {s["id"]: s for s in await p.acontrol("fetchSockets", rooms=["r1"])}
                assert set(found) == {cp.sid(), cn.sid()}
                assert set(found[cn.sid()]["rooms"]) == {cn.sid(), "r1", "r2"}
                assert found[cn.sid()]["data"] == {"node": "node"}
                node_found = {s["id"]: s for s in await nctl("fetchSockets")}
                assert set(node_found) == {cp.sid(), cn.sid()}
                assert node_found[cp.sid()]["data"] == {"who": "cp"}
                assert set(node_found[cp.sid()]["rooms"]) == {cp.sid(), "r1"}
                assert node_found[cp.sid()]["handshake"]["query"]["EIO"] == "4"

                # serverSideEmit both ways, with answers and binary arguments
                res = await p.acontrol("serverSideEmit", event="ping-node", args=[1, {"$bin": "aa"}], ack=True)
                assert res == {"responses": [{"from": "node", "args": [1, b"\xaa"]}]}
                res = await nctl("serverSideEmit", event="ping-node", args=["x", b"\xbb"], ack=True)
                assert res == {"responses": [{"from": "py", "args": ["x", b"\xbb"]}]}
                await p.acontrol("serverSideEmit", event="note", args=[{"$bin": "cc"}])
                await until(lambda: [r["args"] for r in n.control("received") if r["event"] == "note"] == [[b"\xcc"]],
                            what="note on node")

                # sockets_join from Node onto the Python socket, then a room emit from Node reaches it
                await nctl("socketsJoin", rooms=["r1"], except_=["r2"], target=["together"])
                await shards.until_numsub("socket.io#/#together#", 1)
                await nctl("emit", rooms=["together"], event="joined", args=[])
                await until(lambda: cp.got("joined"), what="emit to the joined room")
                await p.acontrol("disconnectSockets", rooms=["r2"])
                await until(lambda: not n.control("localSockets"), what="remote disconnect on node")
            finally:
                await cp.close()
                await cn.close()

        run(body)
    shards.close()
