"""The coalescing protocol inside an in-process uvicorn.Server (uvicorn.Config(ws=<class>), as
uvicorn.run(app, ws=CoalescingWebSocketProtocol) does), under raw ASGI apps and a WebSocket
client written by hand on a plain socket, so that what reaches the transport can be counted:
one write per loop iteration, order kept around closes and large frames, and backpressure
from a client that does not read.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import uvicorn
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from fastapi_realtime.uvicorn_ws import FLUSH_BYTES, READ_PAUSE_BYTES, READ_PAUSE_MESSAGES, CoalescingWebSocketProtocol
from tests.conftest import free_port

pytestmark = pytest.mark.timeout(30)

App = Callable[[dict[str, Any], Callable[[], Awaitable[dict[str, Any]]], Callable[[dict[str, Any]], Awaitable[None]]],
               Awaitable[None]]


@contextlib.asynccontextmanager
async def serve(app: App, ws: type[Any] = CoalescingWebSocketProtocol,
                **options: Any) -> AsyncIterator[tuple[uvicorn.Server, int]]:
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, ws=ws, log_level="warning", lifespan="off",
                            **options)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield server, port
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


HANDSHAKE = (
    "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
).encode()


async def ws_open(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(HANDSHAKE)
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    return reader, writer


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """(opcode, payload) of the server's next frame (unmasked, unfragmented)."""
    b0, b1 = await reader.readexactly(2)
    size = b1 & 0x7F
    if size == 126:
        size = struct.unpack("!H", await reader.readexactly(2))[0]
    elif size == 127:
        size = struct.unpack("!Q", await reader.readexactly(8))[0]
    return b0 & 0x0F, await reader.readexactly(size)


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A short masked frame (the zero mask leaves the payload as is)."""
    assert len(payload) < 126
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + b"\0\0\0\0" + payload


class CountingTransport:
    """Stands between the coalescer and the socket transport, counting the writes it makes."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.writes: list[int] = []

    def write(self, data: bytes) -> None:
        self.writes.append(len(data))
        self.real.write(data)

    def writelines(self, chunks: list[bytes]) -> None:
        self.writes.append(sum(map(len, chunks)))
        self.real.write(b"".join(chunks))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def the_protocol(server: uvicorn.Server) -> Any:
    found = [c for c in server.server_state.connections if isinstance(c, WebSocketsSansIOProtocol)]
    assert len(found) == 1, found
    return found[0]


def burst_app(then: str) -> App:
    """Accepts, waits for a text message `n`, sends n frames in one go, then `then`:
    "close" (a close frame) or "return" (the app ends without one)."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "websocket"
        await receive()
        await send({"type": "websocket.accept"})
        n = int((await receive())["text"])
        for i in range(n):
            await send({"type": "websocket.send", "text": str(i)})
        if then == "close":
            await send({"type": "websocket.close", "code": 1000})
            await receive()

    return app


def test_one_write_per_iteration_and_the_close_frame_last() -> None:
    async def main() -> None:
        async with serve(burst_app("close")) as (server, port):
            reader, writer = await ws_open(port)
            await asyncio.sleep(0.05)  # the accept's write has gone out
            proto = the_protocol(server)
            counting = CountingTransport(proto.coalescer._transport)
            proto.coalescer._transport = counting
            writer.write(client_frame(1, b"300"))
            frames = [await read_frame(reader) for _ in range(301)]
            assert frames[:300] == [(1, str(i).encode()) for i in range(300)]
            assert frames[300][0] == 8 and frames[300][1][:2] == struct.pack("!H", 1000)
            # 300 frames and the close frame, sent in one loop iteration: one write.
            assert counting.writes == [sum(2 + len(str(i)) for i in range(300)) + 4]
            writer.write(client_frame(8, struct.pack("!H", 1000)))
            assert await reader.read() == b""  # the server closes after the close handshake
            writer.close()

    asyncio.run(main())


def test_a_fan_out_writes_once_per_connection() -> None:
    """Frames for many connections sent in one iteration: each connection gets one write of
    its own frames, in order (one callback per iteration flushes them all)."""
    clients, frames = 20, 50
    sends: list[Any] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        sends.append(send)
        await receive()  # "go", from one client: a broadcast to every connection
        for i in range(frames):
            for each in sends:
                await each({"type": "websocket.send", "text": str(i)})
        for each in sends:
            await each({"type": "websocket.close", "code": 1000})
        await receive()

    async def main() -> None:
        async with serve(app) as (server, port):
            opened = [await ws_open(port) for _ in range(clients)]
            await asyncio.sleep(0.05)
            protocols = [c for c in server.server_state.connections if isinstance(c, CoalescingWebSocketProtocol)]
            assert len(protocols) == clients
            counting = []
            for proto in protocols:
                counting.append(CountingTransport(proto.coalescer._transport))
                proto.coalescer._transport = counting[-1]
            opened[0][1].write(client_frame(1, b"go"))
            for reader, writer in opened:
                got = [await read_frame(reader) for _ in range(frames + 1)]
                assert got[:frames] == [(1, str(i).encode()) for i in range(frames)]
                assert got[frames][0] == 8
                writer.close()
            assert [len(c.writes) for c in counting] == [1] * clients

    asyncio.run(main())


def test_frames_pending_when_the_app_returns_still_go_out() -> None:
    """The app ends without a close frame: uvicorn closes the transport, which first writes
    the frames still held for the iteration."""

    async def main() -> None:
        async with serve(burst_app("return")) as (_server, port):
            reader, writer = await ws_open(port)
            writer.write(client_frame(1, b"200"))
            frames = [await read_frame(reader) for _ in range(200)]
            assert frames == [(1, str(i).encode()) for i in range(200)]
            assert await reader.read() == b""
            writer.close()

    asyncio.run(main())


def test_large_frames_between_small_ones_keep_their_order() -> None:
    big = bytes(range(256)) * (5 * 4096)  # 5 MiB

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await receive()
        await send({"type": "websocket.send", "text": "a"})
        await send({"type": "websocket.send", "bytes": big})
        await send({"type": "websocket.send", "text": "b"})
        await send({"type": "websocket.send", "bytes": big[:FLUSH_BYTES - 100]})
        await send({"type": "websocket.send", "text": "c"})
        await send({"type": "websocket.close", "code": 1000})
        await receive()

    async def main() -> None:
        async with serve(app) as (_server, port):
            reader, writer = await ws_open(port)
            writer.write(client_frame(1, b"go"))
            frames = [await read_frame(reader) for _ in range(6)]
            assert frames[:5] == [(1, b"a"), (2, big), (1, b"b"), (2, big[:FLUSH_BYTES - 100]), (1, b"c")]
            assert frames[5][0] == 8
            writer.close()

    asyncio.run(main())


@pytest.mark.parametrize("ws", [WebSocketsSansIOProtocol, CoalescingWebSocketProtocol], ids=["stock", "coalescing"])
def test_a_client_that_does_not_read_holds_the_sender(ws: type[Any]) -> None:
    """The app sends as fast as it can to a client that reads nothing: its sends must stop
    (uvicorn's pause_writing) with little held in memory, then resume in order once the client
    reads. Run with uvicorn's own protocol too: the coalescing one must behave the same."""
    payload = bytes(60_000)
    state = {"sent": 0}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await receive()
        try:
            while True:
                await send({"type": "websocket.send", "bytes": struct.pack("!I", state["sent"]) + payload})
                state["sent"] += 1
                if state["sent"] % 8 == 0:
                    # Yield now and then, as real apps do: a loop that never does starves the
                    # event loop once the peer is gone (asyncio then drops writes silently and
                    # uvicorn's send only learns of the loss in connection_lost, a callback).
                    await asyncio.sleep(0)
        except Exception:  # the client went away (uvicorn's ClientDisconnected)
            pass

    async def main() -> None:
        async with serve(app, ws) as (server, port):
            reader, writer = await ws_open(port)
            proto = the_protocol(server)
            writer.write(client_frame(1, b"go"))
            await asyncio.sleep(0.5)
            held = state["sent"]
            await asyncio.sleep(0.3)
            assert state["sent"] == held, "the sender was not held back"
            assert not proto.writable.is_set()
            # Kernel socket buffers take some MB; without backpressure this would be GBs.
            assert held * len(payload) < 64 * 2**20, held
            # What the server holds in user space: the transport's buffer past its high-water
            # mark by at most one write, plus (coalescing) at most FLUSH_BYTES not yet written.
            assert proto.transport.get_write_buffer_size() < 4 * FLUSH_BYTES + len(payload)
            seq = 0
            while seq < held + 200:  # past the held point: sending resumed
                opcode, data = await read_frame(reader)
                assert opcode == 2 and struct.unpack("!I", data[:4])[0] == seq
                seq += 1
            writer.close()

    asyncio.run(main())


def masked_frame(first: int, payload: bytes, mask: bytes = b"\x37\xfa\x21\x3d") -> bytes:
    """A client frame of any size with a real mask."""
    n = len(payload)
    if n < 126:
        head = bytes([first, 0x80 | n])
    elif n < 65536:
        head = struct.pack("!BBH", first, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", first, 0x80 | 127, n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


SIZES = [0, 1, 125, 126, 127, 65535, 65536, 70_000]


def echo_app() -> App:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] != "websocket.receive":
                return
            if message.get("text") is not None:
                await send({"type": "websocket.send", "text": message["text"]})
            else:
                await send({"type": "websocket.send", "bytes": message["bytes"]})

    return app


async def _echo_bytes(ws: type[Any]) -> bytes:
    """Every byte the server writes back for text and binary messages of every size class."""
    async with serve(echo_app(), ws) as (_server, port):
        reader, writer = await ws_open(port)
        expected = 0
        for size in SIZES:
            text = ("é" * size)[: size // 2] if size else ""
            writer.write(masked_frame(0x81, text.encode()))
            writer.write(masked_frame(0x82, bytes(range(256)) * (size // 256) + bytes(size % 256)))
            expected += 2
        got = b""
        for _ in range(expected):
            first, second = await reader.readexactly(2)
            size = second & 0x7F
            extra = b""
            if size == 126:
                extra = await reader.readexactly(2)
                size = struct.unpack("!H", extra)[0]
            elif size == 127:
                extra = await reader.readexactly(8)
                size = struct.unpack("!Q", extra)[0]
            got += bytes([first, second]) + extra + await reader.readexactly(size)
        writer.close()
        return got


def test_data_frames_are_byte_identical_to_uvicorns() -> None:
    """The frames this protocol builds itself match websockets' serialization, for text and
    binary at every length encoding (7-bit, 16-bit, 64-bit)."""

    async def main() -> None:
        assert await _echo_bytes(CoalescingWebSocketProtocol) == await _echo_bytes(WebSocketsSansIOProtocol)

    asyncio.run(main())


def test_a_flood_pauses_reading_with_little_held_and_loses_nothing() -> None:
    """A client sends faster than the app reads: reading pauses once the queued messages pass
    READ_PAUSE_BYTES, so what waits in memory stays bounded; then every message arrives in order."""
    gate = asyncio.Event()
    got: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await gate.wait()
        while True:
            message = await receive()
            if message["type"] != "websocket.receive":
                return
            got.append(message["text"])
            if message["text"].startswith("last"):
                await send({"type": "websocket.send", "text": "done"})

    async def main() -> None:
        async with serve(app) as (server, port):
            reader, writer = await ws_open(port)
            proto = the_protocol(server)
            pad = "x" * 1000
            count = 3000  # 3 MB: far past the pause mark
            for i in range(count - 1):
                writer.write(masked_frame(0x81, f"{i} {pad}".encode()))
            writer.write(masked_frame(0x81, b"last"))
            await asyncio.sleep(0.5)
            assert proto.read_paused
            # One read of the socket (at most 256 KiB) past the mark, at most.
            assert proto.inbox.size < READ_PAUSE_BYTES + 256 * 1024, proto.inbox.size
            assert len(proto.inbox) <= READ_PAUSE_MESSAGES + 300
            gate.set()
            assert await read_frame(reader) == (1, b"done")
            assert got == [f"{i} {pad}" for i in range(count - 1)] + ["last"]
            assert not proto.read_paused
            writer.close()

    asyncio.run(main())


def test_invalid_utf8_text_is_closed_with_1007() -> None:
    async def main() -> None:
        async with serve(echo_app()) as (_server, port):
            reader, writer = await ws_open(port)
            writer.write(masked_frame(0x81, b"ok"))
            assert await read_frame(reader) == (1, b"ok")
            writer.write(masked_frame(0x81, b"\xff\xfe"))
            opcode, payload = await read_frame(reader)
            assert opcode == 8 and struct.unpack("!H", payload[:2])[0] == 1007
            writer.close()

    asyncio.run(main())


def test_messages_in_one_segment_and_split_across_segments() -> None:
    """Several frames in one TCP write, and one frame dribbled a byte at a time."""

    async def main() -> None:
        async with serve(echo_app()) as (_server, port):
            reader, writer = await ws_open(port)
            writer.write(b"".join(masked_frame(0x81, str(i).encode()) for i in range(50)))
            assert [await read_frame(reader) for _ in range(50)] == [(1, str(i).encode()) for i in range(50)]
            frame = masked_frame(0x82, bytes(300))
            for i in range(len(frame)):
                writer.write(frame[i : i + 1])
                await writer.drain()
                await asyncio.sleep(0)
            assert await read_frame(reader) == (2, bytes(300))
            # A fragmented message and a ping between its fragments.
            writer.write(masked_frame(0x01, b"frag"))
            writer.write(masked_frame(0x89, b"p"))
            writer.write(masked_frame(0x80, b"ment"))
            assert await read_frame(reader) == (0xA, b"p")
            assert await read_frame(reader) == (1, b"fragment")
            writer.close()

    asyncio.run(main())


def test_permessage_deflate_still_works() -> None:
    """With compression negotiated, frames go through websockets (which compresses them)."""
    from websockets.asyncio.client import connect

    async def main() -> None:
        async with serve(echo_app()) as (_server, port):
            async with connect(f"ws://127.0.0.1:{port}/", compression="deflate") as client:
                assert client.protocol.extensions, "deflate was not negotiated"
                for message in ["a" * 5000, b"\x00" * 3000, "é"]:
                    await client.send(message)
                    assert await client.recv() == message

    asyncio.run(main())


def recording_echo_app(seen: list[Any]) -> App:
    """Echoes text, and records every text and the disconnect's code in `seen`."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            seen.append(message.get("text", message.get("code")))
            if message["type"] != "websocket.receive":
                return
            # Closed meanwhile (a message read before a close went out): uvicorn refuses the send
            # (RuntimeError, or ClientDisconnected, an OSError, once the peer is gone).
            with contextlib.suppress(RuntimeError, OSError):
                await send({"type": "websocket.send", "text": message["text"]})

    return app


async def _close_code(reader: asyncio.StreamReader) -> int:
    while True:
        opcode, payload = await read_frame(reader)
        if opcode == 8:
            return int(struct.unpack("!H", payload[:2])[0])


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (bytes([0x81, 2]) + b"hi", 1002),  # not masked
        (masked_frame(0xC1, b"hi"), 1002),  # RSV1 without an extension
        (masked_frame(0x83, b"hi"), 1002),  # reserved opcode
        (masked_frame(0x80, b"hi"), 1002),  # a continuation with nothing to continue
        (masked_frame(0x81, b"x" * 2000), 1009),  # past ws_max_size
        (masked_frame(0x82, bytes(70_000)), 1009),  # 64-bit length, past ws_max_size
    ],
    ids=["unmasked", "rsv1", "opcode", "continuation", "too-big", "too-big-64"],
)
def test_bad_frames_after_good_ones_get_websockets_answer(frame: bytes, code: int) -> None:
    """Frames this protocol does not take itself go to websockets, which closes as it always did."""

    seen: list[Any] = []
    app = recording_echo_app(seen)

    async def main() -> None:
        async with serve(app, ws_max_size=1000, ws_per_message_deflate=False) as (server, port):
            reader, writer = await ws_open(port)
            writer.write(masked_frame(0x81, b"one"))
            assert await read_frame(reader) == (1, b"one")
            writer.write(masked_frame(0x81, b"two"))
            assert await read_frame(reader) == (1, b"two")
            assert the_protocol(server)._direct  # the good frames were parsed here
            writer.write(masked_frame(0x81, b"three") + frame)  # one segment: a good one, then the bad one
            assert await _close_code(reader) == code
            writer.close()
            await asyncio.sleep(0.1)
        # The good frame before the bad one reached the app (uvicorn's own protocol drops it).
        assert seen[:3] == ["one", "two", "three"]
        assert len(seen) == 4 and seen[3] == code

    asyncio.run(main())


def test_control_frames_between_data_frames_in_one_segment() -> None:
    """A ping and then a close after data frames in the same segment: websockets answers the
    ping, the app sees every message before the disconnect, and the close handshake completes."""
    seen: list[Any] = []
    app = recording_echo_app(seen)

    async def main() -> None:
        async with serve(app) as (server, port):
            reader, writer = await ws_open(port)
            writer.write(masked_frame(0x81, b"a"))
            assert await read_frame(reader) == (1, b"a")
            writer.write(masked_frame(0x81, b"b") + masked_frame(0x89, b"pp") + masked_frame(0x81, b"c"))
            got = [await read_frame(reader) for _ in range(3)]
            assert sorted(got) == sorted([(1, b"b"), (0xA, b"pp"), (1, b"c")])
            writer.write(masked_frame(0x81, b"x"))
            assert await read_frame(reader) == (1, b"x")
            assert the_protocol(server)._direct  # back to parsing here after the ping
            # The close is answered at once (as uvicorn's own protocol does), before "d" is echoed.
            writer.write(masked_frame(0x81, b"d") + masked_frame(0x88, struct.pack("!H", 1000)))
            assert await _close_code(reader) == 1000
            assert await reader.read() == b""
            writer.close()
        assert seen == ["a", "b", "c", "x", "d", 1000]

    asyncio.run(main())


def test_tens_of_thousands_of_tiny_frames_in_one_write_arrive_in_order() -> None:
    """One socket read can queue tens of thousands of messages at once: they reach the app in
    order (the queue is read from a moving head, compacted as it goes, never popped from the front)."""
    count = 100_000
    got: list[Any] = []

    async def main() -> None:
        async with serve(recording_echo_app(got)) as (server, port):
            reader, writer = await ws_open(port)
            writer.write(b"".join(masked_frame(0x81, str(i).encode()) for i in range(count)))
            for i in range(count):
                assert await read_frame(reader) == (1, str(i).encode())
            assert got == [str(i) for i in range(count)]
            inbox = the_protocol(server).inbox
            assert len(inbox) == 0 and inbox.size == 0
            writer.close()

    asyncio.run(main())
