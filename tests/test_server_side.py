"""Server-side emits and the node count on a single node (the cluster tests are in tests/redis)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from fastapi_realtime import Realtime, RealtimeRouter
from fastapi_realtime.adapters.base import NO_ANSWER


def test_a_single_node_has_no_other_nodes() -> None:
    rt = Realtime()
    router = RealtimeRouter()
    seen: list[Any] = []

    @router.on_server_side("hello")
    async def hello(*args: Any) -> str:
        seen.append(args)
        return "hi"

    rt.include_router(router)

    async def scenario() -> None:
        assert await rt.server_count() == 1
        await rt.server_side_emit("hello", 1)
        assert await rt.server_side_emit_with_ack("hello", 1, timeout=0.1) == []
        # The node itself is not one of the receivers (as in Node); its handler is there for others.
        assert seen == []
        nsp = rt.of("/")
        assert await nsp.on_server_side(["hello", 1, 2]) == "hi"
        assert await nsp.on_server_side(["nobody"]) is NO_ANSWER
        assert seen == [(1, 2)]

    asyncio.run(scenario())


def test_server_side_registration_errors() -> None:
    router = RealtimeRouter()

    @router.on_server_side("x")
    def plain(*args: Any) -> None: ...

    with pytest.raises(ValueError, match="two server-side handlers"):
        router.on_server_side("x")(plain)
    with pytest.raises(TypeError):
        router.on_server_side("")
    with pytest.raises(TypeError, match="generator"):

        @router.on_server_side("y")
        async def gen() -> Any:
            yield 1
    with pytest.raises(ValueError, match="timeout"):
        asyncio.run(Realtime().server_side_emit_with_ack("x", timeout=0))
