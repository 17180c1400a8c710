"""RedisEmitter / AsyncRedisEmitter: a process serving no clients emits into a cluster.

The emitter runs in a process of its own (tests/redis/emitter_script.py, the same commands as Node's
@socket.io/redis-emitter in tests/interop/emitter.mjs) against a real redis-server, and reaches
python-socketio clients on two Python nodes (uvicorn processes of cluster_app.py), on a Python and a
Node node, and Node's real emitter reaches the Python nodes the same way. What it publishes is
checked byte for byte: against bytes written out by hand (protocol.md §7) and against what Node's
emitter publishes for the same commands.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import msgpack
import pydantic
import pytest
import redis
import redis.asyncio

from fastapi_realtime.adapters import AsyncRedisEmitter, RedisEmitter, wire
from tests.conftest import ROOT
from tests.interop.node import unbin

from .conftest import RedisServer
from .node_cluster import node_cluster_node, run_node_emitter, tobin
from .nodes import Client, python_node, until

pytestmark = pytest.mark.timeout(60)

BIN = b"\x00\x01\xfe\xff"
NESTED = {"list": [1, -2, 2**40, 1.5, True, None, "é", {"deep": b"\x02\x03"}], "empty": {}, "none": []}


def run(body: Callable[[], Awaitable[None]], limit: float = 30.0) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(body(), limit)

    asyncio.run(bounded())


def run_emitter(kind: str, url: str, commands: list[dict[str, Any]], options: dict[str, Any] | None = None) -> list[int]:
    """Run `commands` through an emitter in another process: "sync" / "async" (ours, emitter_script.py)
    or "node" (@socket.io/redis-emitter). Returns what each PUBLISH answered (not known for Node)."""
    if kind == "node":
        run_node_emitter(url, commands, timeout=15, options=options)
        return []
    args = [sys.executable, "-m", "tests.redis.emitter_script", kind, url, json.dumps(tobin(commands)), json.dumps(options or {})]
    res = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=15, check=False)
    last = (res.stdout.strip().splitlines() or [""])[-1]
    report = json.loads(last) if last.startswith("{") else {}
    if res.returncode != 0 or not report.get("ok"):
        raise AssertionError(f"emitter script failed (exit {res.returncode}):\n{res.stdout}{res.stderr}")
    published: list[int] = report["published"]
    return published


async def emit_from(kind: str, url: str, commands: list[dict[str, Any]], nodes: int) -> None:
    published = await asyncio.to_thread(run_emitter, kind, url, commands)
    if kind != "node":
        # PUBLISH answers how many subscribers got it: one per node serving the namespace.
        assert published == [nodes] * len([c for c in commands if c["op"] != "sleep"])


# -- against real nodes -------------------------------------------------------------------------------
@contextlib.contextmanager
def two_nodes(redis_url: str, cluster: str) -> Iterator[tuple[Any, Any]]:
    """Node A is Python; node B is Python, or Node's socket.io with @socket.io/redis-adapter."""
    with python_node(redis_url, name="a", namespaces=["/chat"]) as a:
        if cluster == "python":
            with python_node(redis_url, name="b", namespaces=["/chat"]) as b:
                yield a, b
        else:
            with node_cluster_node(redis_url, "redis", {"namespaces": ["/chat"]}) as b:
                yield a, b


def notes(node: Any) -> list[list[Any]]:
    """The arguments of every `note` server-side event the node received."""
    received = unbin(node.control("received"))
    return [r["args"] for r in received if r["event"] == "note"]


def joined(node: Any, room: str) -> set[str]:
    return {s["id"] for s in node.control("localSockets") if room in s["rooms"]}


SCENARIOS = [
    pytest.param("sync", "python", id="sync-emitter-python-nodes"),
    pytest.param("async", "python", id="async-emitter-python-nodes"),
    pytest.param("node", "python", id="node-emitter-python-nodes"),
    pytest.param("sync", "mixed", id="sync-emitter-python-and-node-nodes"),
]


@pytest.mark.parametrize(("emitter", "cluster"), SCENARIOS)
def test_emitter_reaches_clients_on_two_nodes(redis_server: RedisServer, emitter: str, cluster: str) -> None:
    url = redis_server.url
    with two_nodes(url, cluster) as (a, b):

        async def body() -> None:
            both = ("/", "/chat")
            c1 = await Client(a.url, namespaces=both).connect({"rooms": ["r1"]})
            c2 = await Client(b.url, transport="polling").connect({"rooms": ["r1", "r2"]})
            c3 = await Client(b.url, namespaces=both).connect({"rooms": ["r3"]})
            c4 = await Client(a.url, namespaces=both).connect({"rooms": ["r4"]})
            clients = {"c1": c1, "c2": c2, "c3": c3, "c4": c4}
            chat = {"c1": c1, "c3": c3, "c4": c4}

            def who(event: str, nsp: str = "/") -> set[str]:
                return {name for name, c in clients.items() if c.got(event, nsp)}

            async def sentinel(event: str) -> None:
                # Published last, on one connection: once every client has it, nothing earlier is on its way.
                await until(lambda: who(event) == set(clients) and {n for n in chat if chat[n].got(event, "/chat")}
                            == set(chat), what=f"{event} everywhere")

            try:
                # broadcasts: everyone, one room, two rooms but one, another namespace, binary, flags
                await emit_from(emitter, url, [
                    {"op": "emit", "event": "all", "args": ["x"]},
                    {"op": "emit", "event": "one", "args": [1], "rooms": ["r1"]},
                    {"op": "emit", "event": "two", "args": [2], "rooms": ["r1", "r3"], "except": ["r2"]},
                    {"op": "emit", "event": "chat", "args": ["c"], "nsp": "/chat"},
                    {"op": "emit", "event": "chat-r3", "args": [], "nsp": "chat", "rooms": ["r3"]},
                    {"op": "emit", "event": "bin", "args": [BIN, NESTED]},
                    # volatile: dropped for a client whose transport is busy (Node: a websocket write still
                    # in flight; a polling client between two polls), so give every one time to be ready
                    {"op": "sleep", "ms": 150},
                    {"op": "emit", "event": "vol", "args": ["v"], "volatile": True},
                    {"op": "emit", "event": "cmp", "args": [], "rooms": ["r4"], "compress": False},
                    {"op": "emit", "event": "end1", "args": []},
                    {"op": "emit", "event": "end1", "args": [], "nsp": "/chat"},
                    # sockets_join across both nodes (c2 is in r1, and in r2 too)
                    {"op": "socketsJoin", "rooms": ["r3", "r1"], "except": ["r2"], "target": ["joined"]},
                ], nodes=2)
                await sentinel("end1")
                assert who("all") == set(clients) and c2.got("all") == [["x"]]
                assert who("one") == {"c1", "c2"}
                assert who("two") == {"c1", "c3"}
                assert who("chat") == set() and {n for n, c in chat.items() if c.got("chat", "/chat")} == set(chat)
                assert c3.got("chat-r3", "/chat") == [[]] and not c1.got("chat-r3", "/chat")
                for c in clients.values():
                    assert c.got("bin") == [[BIN, NESTED]]
                assert who("vol") == set(clients)
                assert who("cmp") == {"c4"}

                await until(lambda: joined(a, "joined") == {c1.sid()} and joined(b, "joined") == {c3.sid()},
                            what="sockets_join on both nodes")
                # an emit to the joined room, then sockets_leave (in this order on each node: one connection)
                await emit_from(emitter, url, [
                    {"op": "emit", "event": "to-joined", "args": [], "rooms": ["joined"]},
                    {"op": "socketsLeave", "rooms": ["joined"], "target": ["joined"]},
                ], nodes=2)
                await until(lambda: not joined(a, "joined") and not joined(b, "joined"), what="sockets_leave")
                await emit_from(emitter, url, [
                    {"op": "emit", "event": "after-leave", "args": [], "rooms": ["joined"]},
                    {"op": "emit", "event": "end2", "args": []},
                    {"op": "emit", "event": "end2", "args": [], "nsp": "/chat"},
                    # server_side_emit reaches the handlers of both nodes; disconnect_sockets without and
                    # with close (after end2, so every client has it first)
                    {"op": "serverSideEmit", "event": "note", "args": ["n", {"k": [1, "two"]}]},
                    {"op": "disconnectSockets", "rooms": ["r3"]},
                    {"op": "disconnectSockets", "rooms": ["r4"], "close": True},
                    {"op": "emit", "event": "chat-after", "args": [], "nsp": "/chat"},
                ], nodes=2)
                await sentinel("end2")
                assert who("to-joined") == {"c1", "c3"} and not who("after-leave")
                for node in (a, b):
                    await until(lambda node=node: notes(node) == [["n", {"k": [1, "two"]}]], what="the note on each node")
                # close=False: only "/" goes, the client's connection (and its /chat) stays
                await until(lambda: c3.disconnected == ["/"] and bool(c3.got("chat-after", "/chat")),
                            what="c3 leaves / only")
                # close=True: the whole connection goes, with every namespace on it
                await until(lambda: sorted(c4.disconnected) == ["/", "/chat"], what="c4's connection closed")
                await until(lambda: bool(c1.got("chat-after", "/chat")), what="chat-after")
                assert not c1.disconnected and not c2.disconnected and not c4.got("chat-after", "/chat")
            finally:
                for c in clients.values():
                    await c.close()

        run(body)


# -- the bytes ---------------------------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def recorder(url: str) -> AsyncIterator[Callable[[int], Awaitable[list[tuple[bytes, bytes]]]]]:
    """A plain Redis subscriber to every channel; `take(n)` waits for the next n messages."""
    client = redis.asyncio.Redis.from_url(url)
    pubsub = client.pubsub()
    await pubsub.psubscribe("*")
    await pubsub.get_message(timeout=2)  # the psubscribe confirmation: from here on, nothing is missed

    async def take(count: int) -> list[tuple[bytes, bytes]]:
        got: list[tuple[bytes, bytes]] = []
        deadline = time.monotonic() + 10
        while len(got) < count:
            assert time.monotonic() < deadline, f"only {len(got)} of {count} messages: {got}"
            message = await pubsub.get_message(timeout=0.5)
            if message is not None and message["type"] == "pmessage":
                got.append((message["channel"], message["data"]))
        return got

    try:
        yield take
    finally:
        await pubsub.aclose()
        await client.aclose()


def h(text: str) -> bytes:
    """Bytes written as in protocol.md: hex pairs, and "quoted" or bare words as their UTF-8 text."""
    out = b""
    for token in text.split():
        token = token.strip('"')
        if len(token) == 2 and all(ch in "0123456789abcdef" for ch in token):
            out += bytes.fromhex(token)
        else:
            out += token.encode()
    return out


EXPECTED = [
    # protocol.md §7's sample broadcast, as Node's emitter writes it: uid "emitter", opts keys rooms, flags, except
    (b"socket.io#/#room1#", h('93 a7 "emitter" 83 a4 type 02 a4 data 93 a5 hello a5 world c4 02 01 02 a3 nsp a1 2f'
                              " 83 a5 rooms 91 a5 room1 a5 flags 81 a8 compress c3 a6 except 90")),
    (b"socket.io#/chat#", h('93 a7 "emitter" 83 a4 type 02 a4 data 91 a1 e a3 nsp a5 /chat'
                            " 83 a5 rooms 92 a1 a a1 b a5 flags 82 a8 volatile c3 a8 compress c2 a6 except 91 a1 c")),
    (b"socket.io-request#/#", b'{"type":2,"opts":{"rooms":["r"],"except":["x"]},"rooms":["j1","j2"]}'),
    (b"socket.io-request#/#", b'{"type":3,"opts":{"rooms":[],"except":[]},"rooms":["j1"]}'),
    (b"socket.io-request#/#", b'{"type":4,"opts":{"rooms":["r"],"except":[]},"close":true}'),
    (b"socket.io-request#/#", b'{"type":4,"opts":{"rooms":[],"except":[]},"close":false}'),
    (b"socket.io-request#/#",
     '{"uid":"emitter","type":6,"data":["note","é",{"type":"Buffer","data":[1,2]},[1.5]]}'.encode()),
]


def test_published_bytes_are_what_node_emitter_sends(redis_server: RedisServer) -> None:
    """The sync and the async emitter, in this process, against bytes written out by hand."""

    async def body() -> None:
        async with recorder(redis_server.url) as take:
            with RedisEmitter.from_url(redis_server.url) as sync:
                assert sync.to("room1").compress(True).emit("hello", "world", b"\x01\x02") == 1  # the recorder
                sync.of("chat").to("a", "b").to(["a"]).except_("c").volatile.compress(False).emit("e")
                sync.to("r").except_("x").sockets_join("j1", ["j2"])
                sync.sockets_leave("j1")
                sync.in_("r").disconnect_sockets(close=True)
                sync.disconnect_sockets()
                sync.server_side_emit("note", "é", b"\x01\x02", (1.5,))
            assert await take(len(EXPECTED)) == EXPECTED

            async with AsyncRedisEmitter.from_url(redis_server.url) as emitter:
                await emitter.to("room1").compress(True).emit("hello", "world", b"\x01\x02")
                await emitter.of("/chat").in_(("a", "b")).except_("c").volatile.compress(False).emit("e")
                await emitter.to("r").except_("x").sockets_join("j1", "j2")
                await emitter.sockets_leave(["j1"])
                await emitter.to("r").disconnect_sockets(True)
                await emitter.disconnect_sockets()
                await emitter.server_side_emit("note", "é", bytearray(b"\x01\x02"), [1.5])
            assert await take(len(EXPECTED)) == EXPECTED

    run(body)


COMMANDS: list[dict[str, Any]] = [
    {"op": "emit", "event": "hello", "args": ["world", BIN], "rooms": ["room1"], "compress": True},
    {"op": "emit", "event": "e", "args": [0, 1, -1, 127, 128, 255, 256, -32, -33, -129, 65535, 65536, 2**32, -2**31 - 1,
                                          2**40, 1.5, -0.25, True, False, None, "", "é", "x" * 40, "y" * 300, NESTED],
     "rooms": ["a", "b"], "except": ["c", "d"], "volatile": True, "compress": False},
    {"op": "emit", "event": "f", "args": [{"a": 1}], "compress": True, "volatile": True},
    {"op": "emit", "event": "chat", "args": [], "nsp": "chat", "except": ["x"]},
    {"op": "socketsJoin", "rooms": ["r"], "except": ["x"], "target": ["j1", "j2"]},
    {"op": "socketsLeave", "nsp": "/chat", "target": ["j1"]},
    {"op": "disconnectSockets", "close": True, "rooms": ["r", "s"]},
    {"op": "disconnectSockets"},
    {"op": "serverSideEmit", "event": "note", "args": ["n", BIN, {"k": [1.5, "é", None]}]},
    {"op": "serverSideEmit", "event": "bare", "nsp": "/chat"},
]


@pytest.mark.parametrize("key", ["socket.io", "my-app"])
def test_same_bytes_as_node_emitter(redis_server: RedisServer, key: str) -> None:
    """One command list through Node's real @socket.io/redis-emitter, then through ours (sync and async,
    each in a process of its own): the same messages on the same channels, byte for byte."""

    async def body() -> None:
        async with recorder(redis_server.url) as take:
            runs: dict[str, list[tuple[bytes, bytes]]] = {}
            for kind in ("node", "sync", "async"):
                await asyncio.to_thread(run_emitter, kind, redis_server.url, COMMANDS, {"key": key, "client": kind == "async"})
                runs[kind] = await take(len(COMMANDS))
            assert {channel.split(b"#")[0] for channel, _ in runs["node"]} == {key.encode(), f"{key}-request".encode()}
            assert runs["sync"] == runs["node"]
            assert runs["async"] == runs["node"]

    run(body)


# -- the API ---------------------------------------------------------------------------------------------
class FakeClient:
    """Records what would be published (no Redis: encoding and argument checks only)."""

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes]] = []

    def publish(self, channel: str, payload: bytes) -> int:
        self.published.append((channel, payload))
        return 3


class Point(pydantic.BaseModel):
    x: int
    at: dt.datetime


@dataclasses.dataclass
class Tag:
    name: str
    id: uuid.UUID


def test_arguments_are_converted_as_the_server_converts_them() -> None:
    fake = FakeClient()
    emitter = RedisEmitter.from_client(fake)
    when = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC)
    tag = Tag("t", uuid.UUID(int=1))
    assert emitter.emit("e", Point(x=1, at=when), tag, when, {1: "a", None: 0, 2.5: "f", False: "b"}, (1, 2), {3}) == 3
    channel, raw = fake.published[0]
    assert channel == "socket.io#/#"
    uid, packet, opts = wire.unpack(raw)  # what a Python node decodes (a non-str map key would be refused)
    assert uid == "emitter" and opts == {"rooms": [], "flags": {}, "except": []}
    assert packet["data"] == [
        "e", {"x": 1, "at": "2024-05-06T07:08:09Z"}, {"name": "t", "id": str(uuid.UUID(int=1))},
        "2024-05-06T07:08:09+00:00", {"1": "a", "null": 0, "2.5": "f", "false": "b"}, [1, 2], [3],
    ]
    emitter.server_side_emit("s", Point(x=2, at=when), {1: b"\x05"})
    assert json.loads(fake.published[1][1]) == {
        "uid": "emitter", "type": 6, "data": ["s", {"x": 2, "at": "2024-05-06T07:08:09Z"},
                                              {"1": {"type": "Buffer", "data": [5]}}],
    }


def test_builder_is_immutable_and_checks_its_arguments() -> None:
    fake = FakeClient()
    emitter = RedisEmitter.from_client(fake, key="k")
    room = emitter.to("a")
    both = room.to("b")
    assert (room.rooms, both.rooms, emitter.to("a", ["b", "a"]).rooms) == (("a",), ("a", "b"), ("a", "b"))
    assert both.except_("c").except_rooms == ("c",) and both.except_rooms == ()
    chat = emitter.of("chat")
    assert (chat.namespace, emitter.namespace, chat.key) == ("/chat", "/", "k")
    assert repr(chat) == "RedisEmitter(key='k', namespace='/chat')"
    room.volatile.emit("e")
    room.emit("e")
    (_, first), (_, second) = fake.published
    assert msgpack.unpackb(first)[2]["flags"] == {"volatile": True}
    assert msgpack.unpackb(second)[2]["flags"] == {}

    with pytest.raises(ValueError, match="reserved"):
        emitter.emit("disconnect")
    with pytest.raises(ValueError, match="reserved"):
        emitter.server_side_emit("connection")
    with pytest.raises(ValueError, match="empty"):
        emitter.server_side_emit("")
    with pytest.raises(TypeError, match="event name"):
        emitter.emit(1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="room"):
        emitter.to(["a", 1])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="room"):
        emitter.except_(b"ab")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        emitter.compress(1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        emitter.disconnect_sockets(close="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="nan"):
        emitter.emit("e", float("nan"))
    with pytest.raises(ValueError):
        emitter.of("")
    # acks cannot come back to an emitter
    with pytest.raises(TypeError, match="acknowledgements"):
        emitter.emit("e", 1, lambda *a: None)
    with pytest.raises(TypeError, match="acknowledgements"):
        emitter.server_side_emit("e", lambda *a: None)
    with pytest.raises(TypeError, match="acknowledgements"):
        emitter.emit("e", {"cb": print})
    with pytest.raises(NotImplementedError, match="acknowledgements"):
        emitter.to("a").emit_with_ack("e")
    with pytest.raises(NotImplementedError, match="acknowledgements"):
        emitter.server_side_emit_with_ack("e")
    assert len(fake.published) == 2  # nothing was sent by the refused calls


def test_options_are_checked_when_the_emitter_is_made(redis_server: RedisServer) -> None:
    url = redis_server.url
    with pytest.raises(TypeError):
        RedisEmitter.from_url(url, kye="x")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="redis_options"):
        RedisEmitter.from_url(url, redis_options={"socket_timout": 1})
    with pytest.raises(TypeError, match="redis_options"):
        AsyncRedisEmitter.from_url(url, redis_options={"pasword": "x"})
    with pytest.raises(ValueError, match="URL"):
        RedisEmitter.from_url("127.0.0.1:6379")
    with pytest.raises(ValueError, match="key"):
        RedisEmitter.from_url(url, key="")
    with pytest.raises(TypeError, match="AsyncRedisEmitter"):
        RedisEmitter.from_client(redis.asyncio.Redis.from_url(url))
    with pytest.raises(TypeError, match="RedisEmitter"):
        AsyncRedisEmitter.from_client(redis.Redis.from_url(url))
    with pytest.raises(TypeError, match="publish"):
        RedisEmitter.from_client(object())


def test_close(redis_server: RedisServer) -> None:
    url = redis_server.url
    emitter = RedisEmitter.from_url(url, redis_options={"socket_timeout": 2})
    chat = emitter.of("/chat")
    assert emitter.emit("e") == 0 and not chat.closed
    emitter.close()
    emitter.close()  # twice is fine
    assert chat.closed
    with pytest.raises(RuntimeError, match="closed"):
        chat.to("r").emit("e")

    # a client of yours stays open
    client = redis.Redis.from_url(url)
    with RedisEmitter.from_client(client) as mine:
        mine.emit("e")
    assert client.ping()
    client.close()

    async def body() -> None:
        aclient = redis.asyncio.Redis.from_url(url)
        async with AsyncRedisEmitter.from_client(aclient) as theirs:
            assert await theirs.of("x").to("r").emit("e") == 0
        assert await aclient.ping()
        await aclient.aclose()
        emitter = AsyncRedisEmitter.from_url(url)
        await emitter.emit("e")
        await emitter.aclose()
        with pytest.raises(RuntimeError, match="closed"):
            await emitter.sockets_join("r")

    run(body)


def test_redis_away_raises(tmp_path: Path) -> None:
    """A worker learns that its message was not sent (no hang, no silent drop)."""
    server = RedisServer(tmp_path / "gone")  # never started: nothing listens on its port
    with (
        RedisEmitter.from_url(server.url, redis_options={"socket_connect_timeout": 0.5}) as emitter,
        pytest.raises(redis.exceptions.ConnectionError),
    ):
        emitter.emit("e")
