"""The client socket's connection state recovery: pid and offset in the auth, missed events, rooms."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi import FastAPI

from fastapi_realtime import Realtime, RecoveryOptions, Socket
from fastapi_realtime.testing import RealtimeTestClient
from tests.testing.chat import TRANSPORTS, Transport, eventually, make_chat

pytestmark = pytest.mark.timeout(30)


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
