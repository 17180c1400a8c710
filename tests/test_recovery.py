"""Connection state recovery: the store's caps (table-driven, injected clock) and restores that
must not lose, leak or overflow, through the public test client."""

from __future__ import annotations

import asyncio
import tracemalloc
from typing import Any, Literal

import pytest
from fastapi import FastAPI

from fastapi_realtime import ConnectionRejected, Realtime, RealtimeRouter, RecoveryOptions, Socket
from fastapi_realtime.adapters.base import BroadcastOptions
from fastapi_realtime.recovery import MemoryRecoveryStore, SessionSnapshot
from fastapi_realtime.socketio.packet import Packet, PacketType
from fastapi_realtime.testing import ConnectionRefused, RealtimeTestClient

pytestmark = pytest.mark.timeout(60)

Transport = Literal["websocket", "polling"]
TRANSPORTS = pytest.mark.parametrize("transport", ["websocket", "polling"])
TO_ALL = BroadcastOptions(rooms=frozenset(), except_rooms=frozenset())


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def encode(packet: Packet) -> list[Any]:
    return ["4" + repr(packet.data)]


async def fill(store: MemoryRecoveryStore, count: int, text: str = "x") -> list[str]:
    """Store `count` events to everyone; returns their offsets."""
    offsets = []
    for n in range(count):
        frames = await store.store(Packet(PacketType.EVENT, "/", ["tick", n, text]), TO_ALL, encode)
        offsets.append(frames[0].rsplit("'", 2)[-2])
    return offsets


def snapshot(pid: str = "p" * 20) -> SessionSnapshot:
    return SessionSnapshot("s" * 20, pid, ["s" * 20], {"k": 1})


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("options", "events", "text", "kept"),
    [
        ({"max_packets": 5}, 12, "x", 5),
        ({"max_bytes": 1_000}, 40, "x" * 40, None),
        ({"max_bytes": 1_000}, 40, "é" * 20, None),  # counted in UTF-8 bytes, not characters
        ({}, 30, "x", 30),
    ],
)
async def test_buffer_caps(options: dict[str, Any], events: int, text: str, kept: int | None) -> None:
    store = MemoryRecoveryStore(RecoveryOptions(**options), clock=Clock())
    offsets = await fill(store, events, text)
    buffer = store._buffer
    if kept is not None:
        assert len(buffer) == kept
    assert store._bytes == sum(len(f.encode()) for entry in buffer for f in entry.frames)
    assert store._bytes <= RecoveryOptions(**options).max_bytes
    # A trimmed offset cannot restore; the newest one can (nothing missed after it).
    await store.persist(snapshot())
    if len(buffer) < events:
        assert await store.restore("p" * 20, offsets[0]) is None
    restored = await store.restore("p" * 20, offsets[-1])
    assert restored is not None and restored.missed == []


@pytest.mark.anyio
async def test_age_cap_and_session_expiry() -> None:
    clock = Clock()
    store = MemoryRecoveryStore(RecoveryOptions(max_disconnection_duration=10.0), clock=clock)
    [first] = await fill(store, 1)
    await store.persist(snapshot("a" * 20))
    clock.now = 5.0
    [second] = await fill(store, 1)
    await store.persist(snapshot("b" * 20))
    clock.now = 10.5  # the first event and the first session are older than the window
    assert await store.restore("a" * 20, second) is None
    restored = await store.restore("b" * 20, first)
    assert restored is None  # its offset is gone, so what followed it cannot be proven complete
    restored = await store.restore("b" * 20, second)
    assert restored is not None and restored.missed == []
    assert await store.restore("b" * 20, second) is None  # at most once


@pytest.mark.anyio
async def test_memory_stays_under_the_cap_under_sustained_broadcast() -> None:
    cap = 200_000
    store = MemoryRecoveryStore(RecoveryOptions(max_bytes=cap, max_packets=1_000_000), clock=Clock())
    tracemalloc.start()
    try:
        await fill(store, 10_000, "y" * 100)  # five times what fits
        full, _ = tracemalloc.get_traced_memory()
        await fill(store, 10_000, "y" * 100)
        later, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert store._bytes <= cap
    # The encoded frames plus the bookkeeping of each entry, and no growth once full.
    assert full < 3 * cap
    assert later - full < cap // 10


def recovery_app(*, skip_middlewares: bool = True, max_queue: int = 1024) -> tuple[Realtime, FastAPI, dict[str, Any]]:
    rt = Realtime(
        recovery=RecoveryOptions(max_disconnection_duration=30.0, skip_middlewares=skip_middlewares),
        max_queue=max_queue,
    )
    router = RealtimeRouter()
    state: dict[str, Any] = {"banned": set(), "reasons": []}

    @router.use
    async def ban(socket: Socket) -> None:
        if socket.id in state["banned"]:
            raise ConnectionRejected("banned")

    @router.on("connect")
    async def connect(socket: Socket, auth: Any) -> None:
        if not socket.recovered:
            await socket.join("feed")

    @router.on("disconnect")
    async def disconnect(socket: Socket, reason: str) -> None:
        state["reasons"].append(reason)

    rt.include_router(router)
    app = FastAPI()
    app.include_router(rt.router)
    return rt, app, state


async def until(predicate: Any, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


@pytest.mark.anyio
@TRANSPORTS
async def test_a_replay_longer_than_the_queue_limit_recovers(transport: Transport) -> None:
    """The missed events are one deliberate burst: they do not trip the slow-client limit."""
    rt, app, state = recovery_app(max_queue=64)
    async with RealtimeTestClient(app) as client:
        sio = await client.connect(transport=transport)
        await rt.to("feed").emit("tick", -1)
        await sio.wait_for("tick")
        await sio.drop()
        await until(lambda: len(state["reasons"]) == 1)
        for n in range(300):
            await rt.to("feed").emit("tick", n)
        await sio.reconnect()
        assert sio.recovered
        await until(lambda: len([e for e, _ in sio.received if e == "tick"]) == 301)
        ticks = [args[0] for event, args in sio.received if event == "tick"]
        assert ticks == [-1, *range(300)]
        # Live traffic after the burst is bounded as usual and still flows.
        await rt.to("feed").emit("tick", 300)
        await until(lambda: sio.received[-1][1][0] == 300)
        assert sio.connected


@pytest.mark.anyio
async def test_a_refused_recovery_leaks_no_missed_event() -> None:
    """Middlewares that run again on recovery see the client before any missed event goes out."""
    rt, app, state = recovery_app(skip_middlewares=False)
    async with RealtimeTestClient(app) as client:
        sio = await client.connect()
        await rt.to("feed").emit("tick", 0)
        await sio.wait_for("tick")
        await sio.drop()
        await until(lambda: len(state["reasons"]) == 1)
        state["banned"].add(sio.id)
        await rt.to("feed").emit("secret", 1)
        with pytest.raises(ConnectionRefused):
            await sio.reconnect()
        assert [event for event, _ in sio.received] == ["tick"]
