"""The example chat as several processes: two (or three) uvicorn processes of the app with
REDIS_URL set, on one real redis-server, and clients on each of them (python-socketio, and
socket.io-client under node for recovery, which python-socketio cannot do).

The processes serve `cluster_app` below: the example app with a short recovery window and
frequent checks for members of a killed process, so the tests need not wait a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from example_app.main import create_app
from tests.conftest import NODE_DIR, WS_IMPL, free_port, run_server
from tests.interop.node import NodeRun
from tests.redis.conftest import RedisServer
from tests.redis.nodes import Client, until

pytestmark = pytest.mark.timeout(60)

WINDOW = 2.0  # the processes' recovery window; a dropped member is let go 1 s after it
RECONCILE = 0.5  # how often the processes look for members of a killed process
SCRIPT = NODE_DIR / "chat_cluster.mjs"


def cluster_app() -> FastAPI:
    """What the test processes serve (`uvicorn --factory`); REDIS_URL comes from the environment."""
    return create_app(recovery_window=WINDOW, reconcile_every=RECONCILE, redis_url=os.environ["REDIS_URL"])


@contextlib.contextmanager
def chat_process(redis_url: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """One process of the chat on a free port (its log is checked for exceptions as it stops)."""
    port = free_port()
    args = ["-m", "uvicorn", "tests.example_app.test_cluster:cluster_app", "--factory", "--host", "127.0.0.1",
            "--port", str(port), "--ws", WS_IMPL, "--log-level", "warning"]
    with run_server(args, port, {"REDIS_URL": redis_url}) as proc:
        yield f"http://127.0.0.1:{port}", proc


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def processes(redis_url: str) -> Iterator[tuple[str, str]]:
    """Processes A and B of one chat (each test uses rooms of its own)."""
    with chat_process(redis_url) as (a, _), chat_process(redis_url) as (b, _):
        yield a, b


def run(body: Callable[[], Awaitable[None]], limit: float = 30.0) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(body(), limit)

    asyncio.run(bounded())


def payload(args: list[Any]) -> Any:
    """An event's payload: stored events carry their offset as a last argument."""
    assert 1 <= len(args) <= 2, args
    return args[0]


def got(client: Client, event: str) -> list[Any]:
    return [payload(args) for args in client.got(event)]


def system(client: Client) -> list[str]:
    return [line["text"] for line in got(client, "system")]


async def enter(url: str, nickname: str, room: str) -> tuple[Client, dict[str, Any]]:
    """A member: connected with its nickname in the auth (as the page does), in `room`."""
    client = await Client(url).connect({"nickname": nickname})
    await until(lambda: got(client, "welcome"), what=f"{nickname}'s welcome")
    joined = await client.sio.call("join", {"room": room}, timeout=5)
    assert joined["room"] == room, joined
    return client, joined


async def get(url: str, path: str) -> Any:
    async with httpx.AsyncClient(base_url=url, timeout=5) as http:
        response = await http.get(path)
        response.raise_for_status()
        return response.json()


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5.0, what: str = "condition") -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def held_gone(redis: Redis, pid: str) -> bool:
    return await redis.zscore("chat:away", pid) is None and not await redis.hexists("chat:away-info", pid)


async def room_gone(url: str, room: str) -> bool:
    return room_in(await get(url, "/api/rooms"), room) is None


def room_in(rooms: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((r for r in rooms if r["name"] == name), None)


async def lists_agree(urls: tuple[str, ...], room: str, nicknames: list[str] | None, *clients: Client) -> None:
    """Every process lists `room` with these members (None: not at all), and so does the last
    room list each client got."""
    expected = None if nicknames is None else {"name": room, "members": len(nicknames), "nicknames": nicknames}
    for client in clients:
        await until(lambda c=client: got(c, "rooms") and room_in(got(c, "rooms")[-1], room) == expected,
                    what=f"the room list of {client.url} showing {expected}")
    for url in urls:
        rooms = await get(url, "/api/rooms")
        assert room_in(rooms, room) == expected, (url, rooms)
        assert [r["name"] for r in rooms][:3] == ["general", "random", "help"]


def test_one_chat_across_two_processes(processes: tuple[str, str]) -> None:
    a, b = processes

    async def body() -> None:
        alice, joined = await enter(a, "alice", "lab")
        assert joined["members"] == ["alice"] and joined["history"] == []
        bob, joined = await enter(b, "bob", "lab")
        try:
            # Members and history come from the other process too.
            assert joined["members"] == ["alice", "bob"]
            assert [h["text"] for h in joined["history"]] == ["alice joined"]
            await until(lambda: "bob joined" in system(alice), what="alice sees bob join")
            await lists_agree((a, b), "lab", ["alice", "bob"], alice, bob)

            # Typing and messages cross in both directions.
            await alice.sio.emit("typing", {"typing": True})
            await until(lambda: got(bob, "typing"), what="bob sees alice typing")
            assert got(bob, "typing") == [{"room": "lab", "id": alice.sid(), "nickname": "alice", "typing": True}]
            receipt = await alice.sio.call("message", {"room": "lab", "text": "hello from A"}, timeout=5)
            await until(lambda: got(bob, "message"), what="alice's message on B")
            assert got(bob, "message") == [{"id": receipt["id"], "room": "lab", "kind": "chat", "text": "hello from A",
                                             "ts": receipt["ts"], "author": "alice", "sid": alice.sid()}]
            assert "id" in await bob.sio.call("message", {"room": "lab", "text": "hi from B"}, timeout=5)
            await until(lambda: [m["text"] for m in got(alice, "message")] == ["hi from B"], what="bob's message on A")

            # A newcomer on A and one on B get the same history, lines of both processes included.
            carol, joined = await enter(b, "carol", "lab")
            dave, joined_a = await enter(a, "dave", "lab")
            try:
                assert [(h["kind"], h["text"]) for h in joined["history"]] == [
                    ("system", "alice joined"), ("system", "bob joined"), ("chat", "hello from A"), ("chat", "hi from B")]
                assert joined["history"][2]["id"] == receipt["id"]
                assert joined_a["history"] == [*joined["history"], *joined_a["history"][4:]]
                assert [h["text"] for h in joined_a["history"][4:]] == ["carol joined"]
                assert joined_a["members"] == ["alice", "bob", "carol", "dave"]
                await lists_agree((a, b), "lab", ["alice", "bob", "carol", "dave"], alice, bob, carol, dave)

                # A new nickname shows everywhere.
                assert await alice.sio.call("set-nickname", {"nickname": "ally"}, timeout=5) == {"nickname": "ally"}
                for other in (bob, carol, dave):
                    await until(lambda o=other: "alice is now known as ally" in system(o), what="the rename")
                await lists_agree((a, b), "lab", ["ally", "bob", "carol", "dave"], alice, bob, carol, dave)
                assert "id" in await alice.sio.call("message", {"room": "lab", "text": "renamed"}, timeout=5)
                await until(lambda: any(m["text"] == "renamed" for m in got(carol, "message")), what="renamed line")
                assert [m["author"] for m in got(carol, "message") if m["text"] == "renamed"] == ["ally"]

                # Leaving is announced once, on both processes; so is a disconnection. (Whether
                # python-socketio's goodbye reaches the server before its transport closes depends
                # on its scheduling: if not, bob and dave dropped, may come back, and are let go
                # once their grace period is over.)
                assert await carol.sio.call("leave", timeout=5) is None
                for other in (alice, bob, dave):
                    await until(lambda o=other: "carol left" in system(o), what="carol's leave")
                await lists_agree((a, b), "lab", ["ally", "bob", "dave"], alice, bob, dave)
                assert (await get(a, "/api/health"))["online"] == 2  # this process's own connections
                assert (await get(b, "/api/health"))["online"] == 2
                await bob.close()
                await dave.close()
                await until(lambda: {"bob left", "dave left"} <= set(system(alice)), timeout=WINDOW + 4,
                            what="bob and dave let go")
                await lists_agree((a, b), "lab", ["ally"], alice)
            finally:
                await carol.close()
                await dave.close()
            await asyncio.sleep(2 * RECONCILE)
            # Each departure was announced exactly once (not once per process).
            assert system(alice)[:4] == ["bob joined", "carol joined", "dave joined", "carol left"]
            assert sorted(system(alice)[4:]) == ["bob left", "dave left"]
            # The room, emptied, is gone from every process's list.
            assert await alice.sio.call("leave", timeout=5) is None
            for url in (a, b):
                await eventually(functools.partial(room_gone, url, "lab"), what=f"lab gone from {url}")
        finally:
            await alice.close()
            await bob.close()

    run(body)


def test_dropped_member_recovers_on_the_other_process(processes: tuple[str, str], redis_url: str) -> None:
    """dora drops from A and recovers on B: same id, the missed message, still in the room,
    and no "dora left" from A once its grace period is over; fred, who never comes back, is
    let go once."""
    a, b = processes
    hold_ms = int((WINDOW + 1.0 + 1.5) * 1000)  # past the grace period (window + 1 s), with a margin

    async def body() -> None:
        bob, _ = await enter(b, "bob", "den")
        # The hold the old process writes when the client has already recovered elsewhere (a
        # race): due at once, it is dropped without a word, as bob is connected (to B).
        redis = Redis.from_url(redis_url, decode_responses=True)
        try:
            await redis.hset("chat:away-info", "late-pid", json.dumps({"sid": bob.sid(), "nickname": "bob", "room": "den"}))
            await redis.zadd("chat:away", {"late-pid": 0})
            await eventually(lambda: held_gone(redis, "late-pid"), what="the late hold dropped")
        finally:
            await redis.aclose()
        node = NodeRun(SCRIPT, "recover", a, b, "den", str(hold_ms), limit=25)
        try:
            report = await asyncio.to_thread(node.next_json, 25)
            assert report.get("step") == "report", report
            bob_system = system(bob)  # before the script's clients leave
            bob_messages = [m["text"] for m in got(bob, "message")]
            await asyncio.to_thread(node.result)
        finally:
            node.kill()
            await bob.close()
        assert report["sameId"] is True and report["recovered"] == 1, report
        assert report["missed"] == 1, report
        assert report["erinSystem"] == ["fred left"], report
        assert "dora left" not in report["doraSystem"] and report["doraSystem"].count("fred left") == 1, report
        assert bob_system == ["dora joined", "fred joined", "erin joined", "fred left"], bob_system
        assert bob_messages == ["said while dora was away", "dora is back"]
        for rooms in (report["roomsA"], report["roomsB"]):
            assert room_in(rooms, "den") == {"name": "den", "members": 3, "nicknames": ["bob", "dora", "erin"]}

    run(body)


def test_members_of_a_killed_process_are_let_go(processes: tuple[str, str], redis_url: str) -> None:
    """A process killed outright says goodbye for nobody: the others notice its members are
    connected nowhere and let them go (once)."""
    a, b = processes

    async def body() -> None:
        with chat_process(redis_url) as (c, proc):
            bob, _ = await enter(b, "bob", "crash")
            gus, _ = await enter(c, "gus", "crash")
            try:
                await until(lambda: "gus joined" in system(bob), what="gus joins")
                await lists_agree((a, b, c), "crash", ["bob", "gus"], bob, gus)
                proc.kill()
                proc.wait(5)
                await until(lambda: "gus left" in system(bob), timeout=10, what="gus let go")
                await lists_agree((a, b), "crash", ["bob"], bob)
                await asyncio.sleep(2 * RECONCILE)
                assert system(bob) == ["gus joined", "gus left"]
            finally:
                await gus.close()
                await bob.close()

    run(body)
