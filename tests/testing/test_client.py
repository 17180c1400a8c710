"""The public test client, against small apps built with the public API, over both transports."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest
from fastapi import FastAPI

from fastapi_realtime import (
    AckTimeoutError,
    ConnectionRejected,
    DisconnectedError,
    Realtime,
    RealtimeRouter,
    RecoveryOptions,
    Socket,
)
from fastapi_realtime.testing import ConnectionRefused, RealtimeTestClient

pytestmark = pytest.mark.timeout(30)

Transport = Literal["websocket", "polling"]
TRANSPORTS = pytest.mark.parametrize("transport", ["websocket", "polling"])


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Chat:
    """A small app: rooms, echo, server-to-client acks, kicks; it records disconnect reasons."""

    rt: Realtime
    app: FastAPI
    reasons: list[str] = field(default_factory=list)


def make_chat(prefix: str = "", **options: Any) -> Chat:
    rt = Realtime(**options)
    router = RealtimeRouter()
    chat = Chat(rt, FastAPI())

    @router.on("connect")
    async def connect(socket: Socket, auth: dict[str, Any] | None) -> None:
        if auth and auth.get("token") == "bad":
            raise ConnectionRejected("not authorized", data={"reason": "bad token"})
        if not socket.recovered:
            await socket.join("lobby")
            await socket.emit("welcome", socket.id)

    @router.on("disconnect")
    async def disconnect(socket: Socket, reason: str) -> None:
        chat.reasons.append(reason)

    @router.on("echo")
    async def echo(socket: Socket, *args: Any) -> tuple[Any, ...]:
        return args

    @router.on("join")
    async def join(socket: Socket, room: str) -> None:
        await socket.join(room)

    @router.on("say")
    async def say(socket: Socket, room: str, text: str) -> None:
        await socket.to(room).emit("said", text)

    @router.on("ask")
    async def ask(socket: Socket, *args: Any) -> Any:
        return await socket.emit_with_ack("question", *args, timeout=2.0)

    @router.on("kick")
    async def kick(socket: Socket) -> None:
        await socket.disconnect()

    @router.on("slow")
    async def slow(socket: Socket, seconds: float) -> str:
        await asyncio.sleep(seconds)
        return "late"

    @router.on("binary")
    async def binary(socket: Socket) -> None:
        await socket.emit("blob", b"\x00\xff", {"nested": [b"abc"]})

    rt.include_router(router)
    chat.app.include_router(rt.router, prefix=prefix)
    return chat


async def eventually(predicate: Callable[[], bool], timeout: float = 2.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def eventually_sync(predicate: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


# --------------------------------------------------------------------------- async usage


@pytest.mark.anyio
@TRANSPORTS
async def test_connect_emit_and_ack(transport: Transport) -> None:
    chat = make_chat()
    async with RealtimeTestClient(chat.app) as client:
        sio = await client.connect(transport=transport)
        assert sio.connected and sio.id is not None and len(sio.id) == 20
        assert not sio.recovered and sio.pid is None
        assert await sio.wait_for("welcome") == sio.id
        assert await sio.call("echo") is None
        assert await sio.call("echo", "hi") == "hi"
        assert await sio.call("echo", 1, [2], {"3": None}) == (1, [2], {"3": None})
        await sio.emit("join", "extra")
        assert sio.received == [("welcome", (sio.id,))]


@pytest.mark.anyio
@TRANSPORTS
async def test_server_ack_answered_by_handler(transport: Transport) -> None:
    chat = make_chat()
    async with RealtimeTestClient(chat.app) as client:
        sio = await client.connect(transport=transport)
        sio.on("question", lambda x: x * 2)
        assert await sio.call("ask", 21) == 42
        assert sio.received[-1] == ("question", (21,))

        async def several(*args: Any) -> tuple[Any, ...]:
            await asyncio.sleep(0)
            return ("got", *args)

        sio.on("question", several)
        assert await sio.call("ask", b"\x01", "x") == ("got", b"\x01", "x")
        sio.on("question", lambda *args: None)
        assert await sio.call("ask") is None


@pytest.mark.anyio
async def test_timeouts() -> None:
    chat = make_chat()
    async with RealtimeTestClient(chat.app) as client:
        sio = await client.connect()
        with pytest.raises(TimeoutError):
            await sio.wait_for("never", timeout=0.1)
        with pytest.raises(AckTimeoutError):
            await sio.call("slow", 0.3, timeout=0.1)
        # the socket is still fine afterwards
        assert await sio.call("echo", "ok") == "ok"


@pytest.mark.anyio
@TRANSPORTS
async def test_room_broadcast_between_clients(transport: Transport) -> None:
    chat = make_chat()
    async with RealtimeTestClient(chat.app) as client:
        alice, bob, carol = [await client.connect(transport=transport) for _ in range(3)]
        for member in (alice, bob):
            await member.call("join", "room")  # the ack means the server has handled it
        await alice.call("say", "room", "hello")
        assert await bob.wait_for("said") == "hello"
        await alice.call("say", "lobby", "everyone")
        assert await bob.wait_for("said") == "everyone"
        assert await carol.wait_for("said") == "everyone"
        assert [event for event, _ in alice.received] == ["welcome"]  # never to the sender
        assert [args for event, args in carol.received if event == "said"] == [("everyone",)]


@pytest.mark.anyio
@TRANSPORTS
async def test_binary_both_ways(transport: Transport) -> None:
    chat = make_chat()
    async with RealtimeTestClient(chat.app) as client:
        sio = await client.connect(transport=transport)
        payload = {"data": b"\x00\x01\xfe", "list": [b"", b"x" * 1000]}
        assert await sio.call("echo", payload, b"tail") == (payload, b"tail")
        await sio.emit("binary")
        assert await sio.wait_for("blob") == (b"\x00\xff", {"nested": [b"abc"]})


@pytest.mark.anyio
@TRANSPORTS
async def test_refused_connection(transport: Transport) -> None:
    async def allow(conn: Any) -> bool | str:
        return conn.query_params.get("key") != "blocked" or "go away"

    chat = make_chat(allow_request=allow)
    async with RealtimeTestClient(chat.app) as client:
        with pytest.raises(ConnectionRefused) as refused:
            await client.connect(auth={"token": "bad"}, transport=transport)
        assert refused.value.message == "not authorized"
        assert refused.value.data == {"reason": "bad token"}
        assert isinstance(refused.value, ConnectionRefusedError)

        with pytest.raises(ConnectionRefused) as refused:
            await client.connect("/nowhere", transport=transport)
        assert refused.value.message == "Invalid namespace" and refused.value.data is None

        with pytest.raises(ConnectionRefused):  # refused at the HTTP / WebSocket handshake
            await client.connect(query={"key": "blocked"}, transport=transport)

        sio = await client.connect(auth={"token": "good"}, transport=transport)
        assert sio.connected
    assert chat.reasons == ["server shutting down"]  # the refused ones never connected


@pytest.mark.anyio
@TRANSPORTS
async def test_server_and_client_disconnect(transport: Transport) -> None:
    chat = make_chat()
    async with RealtimeTestClient(chat.app) as client:
        kicked = await client.connect(transport=transport)
        await kicked.emit("kick")
        await eventually(lambda: not kicked.connected)
        assert kicked.disconnect_reason == "io server disconnect"
        with pytest.raises(DisconnectedError):
            await kicked.emit("echo")
        with pytest.raises(DisconnectedError):
            await kicked.wait_for("never")

        leaving = await client.connect(transport=transport)
        await leaving.disconnect()
        assert not leaving.connected and leaving.disconnect_reason == "io client disconnect"
        await eventually(lambda: len(chat.reasons) == 2)
        assert chat.reasons == ["server namespace disconnect", "client namespace disconnect"]


@pytest.mark.anyio
@TRANSPORTS
async def test_drop_is_a_transport_loss(transport: Transport) -> None:
    chat = make_chat()
    async with RealtimeTestClient(chat.app) as client:
        sio = await client.connect(transport=transport)
        await sio.drop()
        assert not sio.connected
        await eventually(lambda: bool(chat.reasons))
        # A closed WebSocket is "transport close"; a long-poll cut off mid-request is "transport error".
        assert chat.reasons == ["transport close" if transport == "websocket" else "transport error"]


@pytest.mark.anyio
@TRANSPORTS
async def test_lifespan_shutdown_disconnects_clients(transport: Transport) -> None:
    chat = make_chat()
    async with RealtimeTestClient(chat.app) as client:
        first = await client.connect(transport=transport)
        second = await client.connect(transport=transport)
    assert chat.reasons == ["server shutting down"] * 2
    assert not first.connected and not second.connected
    assert first.disconnect_reason == "transport close"


@pytest.mark.anyio
@TRANSPORTS
async def test_heartbeats_are_answered(transport: Transport) -> None:
    chat = make_chat(ping_interval=0.05, ping_timeout=0.1)
    async with RealtimeTestClient(chat.app) as client:
        sio = await client.connect(transport=transport)
        await asyncio.sleep(0.5)  # several ping intervals, each longer than the timeout
        assert sio.connected and chat.reasons == []
        assert await sio.call("echo", 1) == 1


@pytest.mark.anyio
async def test_prefix_mount_and_bare_realtime() -> None:
    chat = make_chat(prefix="/api")
    async with RealtimeTestClient(chat.app, path="/api/socket.io") as client:
        assert await (await client.connect(transport="polling")).call("echo", 1) == 1

    mounted = make_chat()
    app = FastAPI()
    app.mount("/realtime", mounted.rt)
    async with RealtimeTestClient(app, path="/realtime") as client:
        assert await (await client.connect()).call("echo", 2) == 2

    bare = make_chat()
    async with RealtimeTestClient(bare.rt) as client:
        assert await (await client.connect(transport="polling")).call("echo", 3) == 3
    assert bare.reasons == ["server shutting down"]


@pytest.mark.anyio
async def test_headers_and_query_reach_the_handshake() -> None:
    rt = Realtime()
    seen: list[tuple[str | None, str | None, Any]] = []

    @rt.on("connect")
    async def connect(socket: Socket, auth: Any) -> None:
        handshake = socket.handshake
        seen.append((handshake.headers.get("x-user"), handshake.query.get("room"), handshake.auth))

    app = FastAPI()
    app.include_router(rt.router)
    async with RealtimeTestClient(app, headers={"X-User": "ann"}) as client:
        await client.connect(auth={"a": 1}, query={"room": "r1"}, transport="polling")
        await client.connect(headers={"X-User": "bob"})
    assert seen == [("ann", "r1", {"a": 1}), ("bob", None, {})]


@pytest.mark.anyio
async def test_handler_errors_are_raised_on_exit() -> None:
    chat = make_chat()
    with pytest.raises(ZeroDivisionError):
        async with RealtimeTestClient(chat.app) as client:
            sio = await client.connect()
            sio.on("question", lambda: 1 / 0)
            with pytest.raises(AckTimeoutError):
                await sio.call("ask", timeout=0.2)


# --------------------------------------------------------------------------- sync usage


@TRANSPORTS
def test_sync_usage(transport: Transport) -> None:
    chat = make_chat()
    with RealtimeTestClient(chat.app) as client:
        sio = client.connect(transport=transport)
        other = client.connect(transport=transport)
        assert sio.wait_for("welcome") == sio.id
        assert sio.call("echo", b"\x00", "x") == (b"\x00", "x")
        sio.on("question", lambda q: q + 1)
        assert sio.call("ask", 1) == 2
        client.run(chat.rt.to("lobby").emit, "news", {"n": 1})
        assert other.wait_for("news") == {"n": 1}
        assert sio.wait_for("news") == {"n": 1}
        with pytest.raises(TimeoutError):
            sio.wait_for("news", timeout=0.05)
        assert ("news", ({"n": 1},)) in sio.received
        sio.drop()
        eventually_sync(lambda: len(chat.reasons) == 1)
        other.disconnect()
        eventually_sync(lambda: len(chat.reasons) == 2)
    assert chat.reasons[1] == "client namespace disconnect"


def test_sync_refusal() -> None:
    chat = make_chat()
    with RealtimeTestClient(chat.app) as client:
        with pytest.raises(ConnectionRefused) as refused:
            client.connect(auth={"token": "bad"})
        assert refused.value.data == {"reason": "bad token"}


# --------------------------------------------------------------------------- recovery


@pytest.mark.anyio
@TRANSPORTS
async def test_drop_and_recover_missed_events(transport: Transport) -> None:
    chat = make_chat(recovery=RecoveryOptions(max_disconnection_duration=10.0))
    async with RealtimeTestClient(chat.app) as client:
        sio = await client.connect(transport=transport)
        other = await client.connect(transport=transport)
        assert sio.pid is not None
        first_id = sio.id
        await chat.rt.to("lobby").emit("tick", 0)
        tick, offset = await sio.wait_for("tick")  # stored events carry their offset last
        assert tick == 0 and sio.offset == offset

        await sio.drop()
        await eventually(lambda: chat.reasons == ["transport close" if transport == "websocket" else "transport error"])
        for n in range(1, 4):
            await chat.rt.to("lobby").emit("tick", n)
        await sio.reconnect()

        assert sio.connected and sio.recovered and sio.id == first_id
        assert [(await sio.wait_for("tick"))[0] for _ in range(3)] == [1, 2, 3]
        # The rooms came back too: the socket still gets lobby broadcasts.
        await other.call("say", "lobby", "still here")
        assert await sio.wait_for("said") == ("still here", sio.offset)


@pytest.mark.anyio
async def test_no_recovery_after_a_client_disconnect() -> None:
    chat = make_chat(recovery=True)
    async with RealtimeTestClient(chat.app) as client:
        sio = await client.connect()
        first_id, first_pid = sio.id, sio.pid
        await sio.disconnect()
        await sio.reconnect()
        assert sio.connected and not sio.recovered
        assert sio.id != first_id and sio.pid not in (None, first_pid)
        # An ordinary new connection: the connect handler ran again.
        assert (await sio.wait_for("welcome"))[0] == first_id
        assert (await sio.wait_for("welcome"))[0] == sio.id


@pytest.mark.anyio
@TRANSPORTS
async def test_connect_handler_event_keeps_its_offset(transport: Transport) -> None:
    # The connect handler's "welcome" is stored with an offset and reaches the client only
    # after the CONNECT reply; as socket.io-client, the client records that offset, so a
    # reconnection right after it recovers with exactly the events emitted while away.
    chat = make_chat(recovery=True)
    async with RealtimeTestClient(chat.app) as client:
        sio = await client.connect(transport=transport)
        first_id = sio.id
        welcome_id, welcome_offset = await sio.wait_for("welcome")
        assert welcome_id == first_id and sio.offset == welcome_offset

        await sio.drop()
        await eventually(lambda: len(chat.reasons) == 1)
        await chat.rt.to("lobby").emit("news", 1)
        await chat.rt.emit("news", 2)
        await sio.reconnect()

        assert sio.recovered and sio.id == first_id
        # Delivered before the CONNECT reply, so already recorded when reconnect() returns.
        assert [name for name, _ in sio.received] == ["welcome", "news", "news"]
        assert [args[0] for _, args in sio.received[1:]] == [1, 2]
        assert sio.offset == sio.received[-1][1][-1]


@pytest.mark.anyio
@TRANSPORTS
async def test_events_replayed_before_connect_move_the_offset(transport: Transport) -> None:
    # Missed events arrive before the CONNECT reply: their offsets count, so a second drop
    # recovers from the last of them and nothing is delivered twice.
    chat = make_chat(recovery=True)
    async with RealtimeTestClient(chat.app) as client:
        sio = await client.connect(transport=transport)
        for round_ in (1, 2):
            await sio.drop()
            await eventually(lambda: len(chat.reasons) == round_)
            await chat.rt.to("lobby").emit("news", round_)
            await sio.reconnect()
            assert sio.recovered
        assert [(name, args[0]) for name, args in sio.received] == [("welcome", sio.id), ("news", 1), ("news", 2)]


@pytest.mark.anyio
async def test_server_ack_request_from_the_connect_handler_is_answered() -> None:
    # An emit_with_ack in the connect handler arrives right after the CONNECT reply; the
    # client answers it with its handler once connected, as socket.io-client does.
    rt = Realtime()
    app = FastAPI()
    answers: list[Any] = []

    @rt.on("connect")
    async def connect(socket: Socket) -> None:
        async def ask() -> None:
            answers.append(await socket.emit_with_ack("ping?", timeout=2.0))

        socket.data["task"] = asyncio.get_running_loop().create_task(ask())

    app.include_router(rt.router)
    async with RealtimeTestClient(app) as client:
        sio = await client.connect()
        await sio.wait_for("ping?")
        await eventually(lambda: answers == [None])
