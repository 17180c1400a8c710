"""What the Redis adapters do when Redis fails: unreachable at start, restarted in mid-traffic,
slow, or sending what no node would send. Local delivery never stops; the link comes back by
itself; requests to other nodes end with partial results and a clear error."""

from __future__ import annotations

import asyncio
import base64
import pickle
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import redis

from tests.conftest import free_port

from .conftest import RedisServer
from .nodes import Client, python_node, until

pytestmark = pytest.mark.timeout(90)


def run(body: Callable[[], Awaitable[None]], limit: float = 60.0) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(body(), limit)

    asyncio.run(bounded())


class Exploit:
    """Unpickling this would create a file: the proof that nobody unpickled it."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.path, "w"))


@pytest.mark.parametrize("adapter", ["redis", "streams"])
def test_redis_unreachable_at_start_then_back(tmp_path: Path, adapter: str) -> None:
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    server = RedisServer(tmp_path / "redis", port=port)
    with python_node(url, adapter, name="a") as a, python_node(url, adapter, name="b") as b:

        async def body() -> None:
            c1 = await Client(a.url).connect({"rooms": ["r"]})
            c2 = await Client(b.url).connect({"rooms": ["r"]})
            try:
                # no Redis: each node still serves its own clients
                await a.acontrol("emit", rooms=["r"], event="local", args=[1])
                await until(lambda: c1.got("local"), what="local delivery without Redis")
                res = await a.acontrol("fetchSockets")
                assert "error" in res and "Redis" in res["error"]
                await asyncio.to_thread(server.start)
                # the nodes reconnect and subscribe by themselves
                async def both_counted() -> None:
                    while (await a.acontrol("serverCount")).get("count") != 2:
                        await asyncio.sleep(0.1)
                await asyncio.wait_for(both_counted(), 20)
                await asyncio.sleep(0.3)
                await a.acontrol("emit", rooms=["r"], event="shared", args=[2])
                await until(lambda: c2.got("shared"), timeout=10, what="cross-node delivery after Redis came")
            finally:
                await c1.close()
                await c2.close()

        try:
            run(body)
        finally:
            server.stop()


@pytest.mark.parametrize("adapter", ["redis", "streams"])
def test_redis_restart_in_mid_traffic(redis_server: RedisServer, adapter: str) -> None:
    with python_node(redis_server.url, adapter, name="a") as a, python_node(redis_server.url, adapter, name="b") as b:

        async def body() -> None:
            local = await Client(a.url).connect({"rooms": ["r"]})
            remote = await Client(b.url).connect({"rooms": ["r"]})
            try:
                await a.acontrol("ticker", tag="t", room="r", interval=0.01, max_seconds=30)
                await until(lambda: len(remote.got("tick")) > 5, what="ticks across nodes")
                await asyncio.to_thread(redis_server.restart, 1.0)
                # the local client missed nothing while Redis was away and coming back
                seen = len(local.got("tick"))
                await until(lambda: len(local.got("tick")) > seen + 20, timeout=5, what="local ticks")
                before = len(remote.got("tick"))
                await until(lambda: len(remote.got("tick")) > before + 10, timeout=20, what="ticks across nodes again")
                ticks = (await a.acontrol("stopTicker", tag="t"))["ticks"]
                await asyncio.sleep(0.3)
                numbers = [args[2] for args in local.got("tick")]
                assert numbers == list(range(ticks)), "the local client lost or reordered events"
                # both nodes subscribe again by themselves
                async def counted() -> None:
                    while (await b.acontrol("serverCount")).get("count") != 2:
                        await asyncio.sleep(0.1)

                await asyncio.wait_for(counted(), 15)
            finally:
                await local.close()
                await remote.close()

        run(body)


def test_requests_end_with_partial_results_when_a_node_does_not_answer(redis_server: RedisServer) -> None:
    # A subscriber that counts as a node but never answers (a hung process).
    silent = redis.Redis.from_url(redis_server.url).pubsub()
    silent.subscribe("socket.io-request#/#")
    silent.get_message(timeout=1)
    options = {"requests_timeout": 1.0}
    try:
        with python_node(redis_server.url, name="a", options=options) as a, python_node(
            redis_server.url, name="b", options=options
        ) as b:

            async def body() -> None:
                c = await Client(b.url).connect()
                try:
                    assert (await a.acontrol("serverCount"))["count"] == 3
                    res = await a.acontrol("fetchSockets")
                    assert "1 of 2 nodes answered" in res["error"]
                    res = await a.acontrol("serverSideEmit", event="ping-node", args=[], ack=True, timeout=1000)
                    assert "1 of 2 nodes answered" in res["error"]
                    assert res["responses"] == [{"from": "b", "args": []}]
                finally:
                    await c.close()

            run(body)
    finally:
        silent.close()


@pytest.mark.parametrize("adapter", ["redis", "streams"])
def test_malformed_and_pickled_messages_are_dropped(redis_server: RedisServer, tmp_path: Path, adapter: str) -> None:
    marker = tmp_path / "unpickled"
    evil = pickle.dumps(Exploit(str(marker)))
    garbage = [evil, b"", b"\xc1", b"{not json", b'{"type": "x"}', b"\x93\xa1a\xc0\xc0", b"\x91" * 5000 + b"\xc0",
               b'{"uid":"x","type":6,"data":[1,2]}', b'{"uid":"x","type":5,"requestId":"r","opts":7}']
    with python_node(redis_server.url, adapter, name="a") as a, python_node(redis_server.url, adapter, name="b") as b:

        async def body() -> None:
            c1 = await Client(a.url).connect({"rooms": ["r"]})
            c2 = await Client(b.url).connect({"rooms": ["r"]})
            raw = redis.Redis.from_url(redis_server.url)
            try:
                channels = ["socket.io#/#", "socket.io#/#r#", "socket.io-request#/#", "socket.io-response#/#"]
                for channel in channels:
                    for payload in garbage:
                        raw.publish(channel, payload)
                if adapter == "streams":
                    for payload in garbage:
                        raw.xadd("socket.io", {"uid": "x", "nsp": "/", "type": "3", "data": payload})
                        raw.xadd("socket.io", {"uid": "x", "nsp": "/", "type": "3",
                                               "data": base64.b64encode(payload)})
                    raw.xadd("socket.io", {"nsp": "/", "type": "nine"})
                # the nodes still work, and nobody unpickled anything
                await a.acontrol("emit", rooms=["r"], event="after", args=[])
                await until(lambda: c1.got("after") and c2.got("after"), what="delivery after garbage")
                assert not marker.exists()
            finally:
                raw.close()
                await c1.close()
                await c2.close()

        run(body)


@pytest.mark.parametrize("adapter", ["redis", "streams"])
def test_a_slow_redis_does_not_hold_up_local_clients(tmp_path: Path, adapter: str) -> None:
    redis_server = RedisServer(tmp_path / "redis", extra=("--enable-debug-command", "yes"))
    redis_server.start()
    with python_node(redis_server.url, adapter, name="a") as a:

        async def body() -> None:
            c = await Client(a.url).connect({"rooms": ["r"]})
            slow = redis.Redis.from_url(redis_server.url, socket_timeout=10)
            try:
                sleeping = asyncio.ensure_future(asyncio.to_thread(slow.execute_command, "DEBUG", "SLEEP", "2"))
                await asyncio.sleep(0.2)
                # an event from the client and its ack, while Redis answers nothing
                answer = await c.sio.call("echo", "while-slow", timeout=5)
                assert answer == "while-slow"
                assert not sleeping.done(), "Redis answered before the client did"
                await sleeping
            finally:
                slow.close()
                await c.close()

        try:
            run(body)
        finally:
            redis_server.stop()
