"""The async test client, against a small app built with the public API, over both transports."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi import FastAPI

from fastapi_realtime import AckTimeoutError, DisconnectedError, Realtime, Socket
from fastapi_realtime.testing import ConnectionRefused, RealtimeTestClient
from tests.testing.chat import TRANSPORTS, Transport, eventually, make_chat

pytestmark = pytest.mark.timeout(30)


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
