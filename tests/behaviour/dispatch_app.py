"""Handlers that wait in the ways real ones do, for the dispatch tests (tests/behaviour/test_dispatch.py).

Served by `logged_uvicorn("tests.behaviour.dispatch_app:app", ...)`.
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

from fastapi_realtime import AckTimeoutError, Realtime, Socket

rt = Realtime(ping_interval=5.0, ping_timeout=5.0)
app = rt

# Set by one handler, read by the next: each handler call has a context of its own, as a task does.
seen: contextvars.ContextVar[str] = contextvars.ContextVar("seen", default="unset")
order: list[int] = []


@rt.on("set_var")
async def set_var(socket: Socket, value: str) -> str:
    before = seen.get()
    seen.set(value)
    return before


@rt.on("get_var")
async def get_var(socket: Socket) -> str:
    return seen.get()


@rt.on("ask_back")
async def ask_back(socket: Socket, question: str) -> Any:
    # Waits for the same client's answer: reading must go on while this handler waits.
    try:
        return await socket.emit_with_ack("question", question, timeout=3)
    except AckTimeoutError:
        return None  # the client left


@rt.on("timeout_inside")
async def timeout_inside(socket: Socket, seconds: float) -> str:
    # asyncio.timeout cancels the task running it: that must be this handler's, nothing else.
    try:
        async with asyncio.timeout(seconds):
            await asyncio.sleep(10)
    except TimeoutError:
        return "timed out"
    return "slept"


@rt.on("task_group")
async def task_group(socket: Socket, n: int) -> int:
    async def child(i: int) -> int:
        await asyncio.sleep(0.01 * i)
        return i

    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(child(i)) for i in range(n)]
    return sum(t.result() for t in tasks)


@rt.on("failing_group")
async def failing_group(socket: Socket) -> str:
    async def boom() -> None:
        await asyncio.sleep(0.01)
        raise ValueError("boom")

    outcome = "not caught"
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(boom())
            group.create_task(asyncio.sleep(5))
    except* ValueError:
        outcome = "caught"
    return outcome


@rt.on("sleep_then")
async def sleep_then(socket: Socket, n: int, seconds: float) -> int:
    await asyncio.sleep(seconds)
    order.append(n)
    return n


@rt.on("now")
async def now(socket: Socket, n: int) -> int:
    order.append(n)
    return n


@rt.on("order")
async def get_order(socket: Socket) -> list[int]:
    result = list(order)
    order.clear()
    return result


@rt.on("tasks")
async def tasks(socket: Socket) -> int:
    return len(asyncio.all_tasks())


@rt.on("task_names")
async def task_names(socket: Socket) -> list[str]:
    return sorted(str(t.get_coro()) for t in asyncio.all_tasks())
