"""Acks are always answered: a return value JSON cannot carry gives the documented error ack."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from fastapi_realtime import Realtime, Socket
from fastapi_realtime.testing import RealtimeTestClient

INTERNAL_ERROR = {"error": "internal_error", "message": "Internal server error"}


def make_app() -> Realtime:
    rt = Realtime()

    @rt.on("infinite")
    async def infinite(socket: Socket) -> Any:
        return float("inf")

    @rt.on("opaque")
    async def opaque(socket: Socket) -> Any:
        return object()

    @rt.on("fine")
    async def fine(socket: Socket) -> Any:
        return 1

    @rt.on("emit_bad")
    async def emit_bad(socket: Socket) -> str:
        try:
            await socket.emit("x", float("nan"))
        except ValueError as exc:
            return f"refused: {exc}"
        return "sent"

    return rt


@pytest.mark.parametrize("event", ["infinite", "opaque"])
def test_unencodable_ack_gives_internal_error(event: str, caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        async with RealtimeTestClient(make_app()) as client:
            sio = await client.connect()
            with caplog.at_level(logging.ERROR, logger="fastapi_realtime"):
                assert await sio.call(event) == INTERNAL_ERROR
            assert await sio.call("fine") == 1  # the connection goes on

    asyncio.run(scenario())
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("fastapi_realtime")]
    assert any(event in m and f"make_app.<locals>.{event}" in m for m in messages), messages


def test_emitting_a_value_json_cannot_carry_is_an_error_for_the_caller() -> None:
    async def scenario() -> None:
        async with RealtimeTestClient(make_app()) as client:
            sio = await client.connect()
            answer = await sio.call("emit_bad")
            assert isinstance(answer, str) and answer.startswith("refused: "), answer
            assert await sio.call("fine") == 1

    asyncio.run(scenario())


@pytest.mark.parametrize("transports", ["websocket", "polling"])
def test_a_transport_name_is_one_transport(transports: Any) -> None:
    rt = Realtime(transports=transports)
    assert rt.engine_options.transports == (transports,)


def test_misspelt_transport_is_refused() -> None:
    with pytest.raises(ValueError, match="transports"):
        Realtime(transports="websockets")  # type: ignore[arg-type]
