"""Connection state recovery: the store's caps (table-driven, injected clock) and restores that
must not lose, leak or overflow, through the public test client."""

from __future__ import annotations

import asyncio
import gc
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
    assert store._bytes == sum(len(f.encode()) for entry in buffer for f in [entry[4]])  # (at, size, rooms, except, frame)
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


STORED_EVENTS = [
    Packet(PacketType.EVENT, "/", ["tick", 1, {"v": [1.5, None, True], "s": "hello"}]),
    Packet(PacketType.EVENT, "/", ["tick", "é ☃ \u2028 \"quoted\" \\ </script>", {"é": "x"}]),
    Packet(PacketType.EVENT, "/chat", ["tick"]),
    Packet(PacketType.EVENT, "/chat", ["bin", b"\x00\x01", {"nested": [b"\xff"]}, 3]),
    Packet(PacketType.EVENT, "/", ["big", 2**70, 1e-07, "x" * 5000]),
]


@pytest.mark.anyio
@pytest.mark.parametrize("parser", ["default", "msgpack"])
async def test_stored_frames_are_the_packet_encoded_with_its_offset(parser: Literal["default", "msgpack"]) -> None:
    """Whatever way the store adds the offset, the frames are exactly the packet encoded with the
    offset as its last argument, live and replayed."""
    rt = Realtime(parser=parser)
    nsp = rt.of("/")
    store = MemoryRecoveryStore(RecoveryOptions(), clock=Clock())
    await store.persist(snapshot())
    first = await store.store(Packet(PacketType.EVENT, "/", ["first"]), TO_ALL, nsp.encode)
    expected: list[Any] = []
    for n, packet in enumerate(STORED_EVENTS * 2, start=2):
        frames = await store.store(packet, TO_ALL, nsp.encode)
        offset = f"{store._instance}-{n}"
        want = nsp.encode(Packet(packet.type, packet.namespace, [*packet.data, offset], packet.id))
        assert frames == want
        expected.extend(want)
    assert first == nsp.encode(Packet(PacketType.EVENT, "/", ["first", f"{store._instance}-1"]))
    assert store._splice is (parser == "default")  # the text parser's offsets were appended
    restored = await store.restore("p" * 20, f"{store._instance}-1")
    assert restored is not None and restored.missed == expected


@pytest.mark.anyio
async def test_replay_filters_rooms_and_buffered_events_leave_the_collector() -> None:
    rt = Realtime()
    nsp = rt.of("/")
    store = MemoryRecoveryStore(RecoveryOptions(), clock=Clock())
    await store.persist(SessionSnapshot("s" * 20, "p" * 20, ["s" * 20, "a", "b"], {}))
    [start] = await fill(store, 1)
    sent = {
        "to all": TO_ALL,
        "to a": BroadcastOptions(rooms=frozenset({"a"}), except_rooms=frozenset()),
        "to c": BroadcastOptions(rooms=frozenset({"c"}), except_rooms=frozenset()),
        "to c, d or b": BroadcastOptions(rooms=frozenset({"c", "d", "b"}), except_rooms=frozenset()),
        "to all but b": BroadcastOptions(rooms=frozenset(), except_rooms=frozenset({"b"})),
        "to a but c": BroadcastOptions(rooms=frozenset({"a"}), except_rooms=frozenset({"c", "d"})),
    }
    frames = {name: await store.store(Packet(PacketType.EVENT, "/", [name, b"\x01"]), opts, nsp.encode) for name, opts in sent.items()}
    # Entries hold no object the collector tracks, so it stops tracking them (the rooms' tuples
    # first, then the entry): a full buffer costs nothing in the full collections of a big heap.
    gc.collect()
    gc.collect()
    assert not any(gc.is_tracked(entry) for entry in store._buffer)
    restored = await store.restore("p" * 20, start)
    assert restored is not None
    assert restored.missed == [f for name in ("to all", "to a", "to c, d or b", "to a but c") for f in frames[name]]
