"""How handlers run, over WebSocket and over long-polling: one at a time in arrival order, each as if in a task of its
own (current_task, cancellation, timeouts, task groups, context variables), while the client's
acks are read meanwhile; over a long connection nothing piles up.

Real uvicorn, python-socketio's AsyncClient; every server log is checked for escaped exceptions.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import socketio

from tests.conftest import logged_uvicorn

APP = "tests.behaviour.dispatch_app:app"

pytestmark = pytest.mark.timeout(60)


TRANSPORTS = pytest.mark.parametrize("transport", ["websocket", "polling"])


async def _client(base: str, transport: str = "websocket") -> socketio.AsyncClient:
    client = socketio.AsyncClient()

    @client.on("question")
    async def answer(question: str) -> str:
        return question.upper()

    await client.connect(base, transports=[transport])
    return client


@TRANSPORTS
def test_handlers_behave_as_in_a_task(tmp_path: Path, transport: str) -> None:
    async def body(base: str) -> None:
        client = socketio.AsyncClient()

        @client.on("question")
        async def answer(question: str) -> str:
            return question.upper()

        await client.connect(base, transports=[transport])
        try:
            # Context variables: a handler's own changes stay its own.
            assert await client.call("set_var", "first", timeout=5) == "unset"
            assert await client.call("get_var", timeout=5) == "unset"
            # The client's ack reaches a handler that waits for it.
            assert await client.call("ask_back", "hello", timeout=5) == "HELLO"
            assert await client.call("timeout_inside", 0.05, timeout=5) == "timed out"
            assert await client.call("task_group", 5, timeout=5) == 10
            assert await client.call("failing_group", timeout=5) == "caught"
            # The connection is still fine after all that.
            assert await client.call("ask_back", "again", timeout=5) == "AGAIN"
        finally:
            await client.disconnect()

    with logged_uvicorn(APP, tmp_path) as (base, log):
        asyncio.run(asyncio.wait_for(body(base), 30))
    log.assert_clean()


@TRANSPORTS
def test_events_run_in_arrival_order_while_one_waits(tmp_path: Path, transport: str) -> None:
    async def body(base: str) -> None:
        client = await _client(base, transport)
        try:
            calls = [client.call("sleep_then", (0, 0.2), timeout=5)]
            calls += [client.call("now", i, timeout=5) for i in range(1, 6)]
            calls.append(client.call("sleep_then", (6, 0.05), timeout=5))
            calls += [client.call("now", i, timeout=5) for i in range(7, 10)]
            await asyncio.gather(*calls)
            assert await client.call("order", timeout=5) == list(range(10))
        finally:
            await client.disconnect()

    with logged_uvicorn(APP, tmp_path) as (base, log):
        asyncio.run(asyncio.wait_for(body(base), 30))
    log.assert_clean()


@TRANSPORTS
def test_waiting_handlers_leave_no_tasks_behind(tmp_path: Path, transport: str) -> None:
    """Every wait moves reading (over polling: the POST's answer) to a new task; the old ones
    end, so a long connection holds the same number of tasks after hundreds of waits."""
    async def body(base: str) -> None:
        client = await _client(base, transport)
        try:
            before = await client.call("tasks", timeout=5)
            for i in range(300):
                assert await client.call("ask_back", f"q{i}", timeout=5) == f"Q{i}"
            await asyncio.sleep(0.1)
            after = await client.call("tasks", timeout=5)
            assert after <= before + 1, (before, after)
        finally:
            await client.disconnect()

    with logged_uvicorn(APP, tmp_path) as (base, log):
        asyncio.run(asyncio.wait_for(body(base), 40))
    log.assert_clean()


@TRANSPORTS
def test_client_leaves_while_a_handler_waits(tmp_path: Path, transport: str) -> None:
    async def body(base: str) -> None:
        for _ in range(10):
            client = await _client(base, transport)
            await client.emit("sleep_then", (0, 0.3))
            await client.emit("ask_back", "never answered in time")
            await asyncio.sleep(0.05)
            await client.disconnect()
        observer = await _client(base, transport)
        try:
            # The handlers of the gone clients end: ask_back, queued before the client left,
            # still runs and waits out its 3 s ack timeout.
            await asyncio.sleep(3.5)
            assert await observer.call("ask_back", "still there", timeout=5) == "STILL THERE"
            # One connection's reader and nothing else is left.
            assert await observer.call("tasks", timeout=5) <= 6
        finally:
            await observer.disconnect()

    with logged_uvicorn(APP, tmp_path) as (base, log):
        asyncio.run(asyncio.wait_for(body(base), 40))
    log.assert_clean()
