"""Engine.IO v4 over WebSocket and the polling -> websocket upgrade, raw frames (protocol.md §1.3-§1.7)."""

from __future__ import annotations

import asyncio
import time

import pytest

from . import (
    MAX_PAYLOAD,
    PING_INTERVAL,
    PING_TIMEOUT,
    SEP,
    Polling,
    RawWS,
    assert_error,
    assert_ws_refused,
    http_client,
    open_ws,
    parse_open,
    run_async,
    ws_connect,
    ws_open,
    ws_url,
)

pytestmark = pytest.mark.timeout(15)

EIO = "/engine.io/"


@pytest.mark.parametrize("path", ["/engine.io/", "/socket.io/"])
@run_async
async def test_handshake_websocket(conformance_url: str, path: str) -> None:
    async with open_ws(ws_url(conformance_url, path, "EIO=4&transport=websocket")) as ws:
        frame = await ws.recv()
        assert isinstance(frame, str)  # the open packet is a text frame
        data = parse_open(frame)
        assert data["upgrades"] == []  # already on the best transport
        assert data["pingInterval"] == int(PING_INTERVAL * 1000)
        assert data["pingTimeout"] == int(PING_TIMEOUT * 1000)
        assert data["maxPayload"] == MAX_PAYLOAD


@pytest.mark.parametrize("query", ["transport=websocket", "EIO=abc&transport=websocket",
                                   "EIO=3&transport=websocket", "EIO=4&transport=abc",
                                   "EIO=4&transport=websocket&sid=AAAAAAAAAAAAAAAAAAAA"])
@run_async
async def test_bad_websocket_handshake(conformance_url: str, query: str) -> None:
    await assert_ws_refused(ws_url(conformance_url, EIO, query))


@run_async
async def test_text_and_binary_frames(conformance_url: str) -> None:
    ws, _ = await ws_open(conformance_url, EIO)
    try:
        await ws.send("4hello")
        assert await ws.recv() == "4hello"
        await ws.send("4tëst")
        assert await ws.recv() == "4tëst"
        # Binary travels raw, with no type byte and no base64.
        await ws.send(b"\x01\x02\x03\x04")
        assert await ws.recv() == b"\x01\x02\x03\x04"
        await ws.send(b"")
        assert await ws.recv() == b""
    finally:
        await ws.close()


@run_async
async def test_websocket_ping_pong(conformance_url: str) -> None:
    ws, _ = await ws_open(conformance_url, EIO)
    ws.autopong = False
    try:
        start = time.monotonic()
        for i in range(3):
            assert await ws.recv(1.0) == "2"
            if i == 0:
                elapsed = time.monotonic() - start
                assert PING_INTERVAL * 0.8 <= elapsed <= PING_INTERVAL + 0.25, elapsed
            await ws.send("3")
        await ws.send("4alive")
        assert await ws.recv() == "4alive"
    finally:
        await ws.close()


@run_async
async def test_websocket_ping_timeout(conformance_url: str) -> None:
    ws, _ = await ws_open(conformance_url, EIO)
    ws.autopong = False
    try:
        start = time.monotonic()
        assert await ws.recv(1.0) == "2"
        await ws.assert_closed(1.0)  # no pong: closed pingTimeout after the ping
        elapsed = time.monotonic() - start
        assert elapsed >= (PING_INTERVAL + PING_TIMEOUT) * 0.8, elapsed
    finally:
        await ws.close()


@run_async
async def test_websocket_client_ping_closes(conformance_url: str) -> None:
    ws, _ = await ws_open(conformance_url, EIO)
    try:
        await ws.send("2")
        await ws.assert_closed(1.0)
    finally:
        await ws.close()


@run_async
async def test_websocket_close_packet(conformance_url: str) -> None:
    # protocol.md §1.7: a `1` frame closes the session. (Node's ws transport ignores it and relies on
    # its client closing the socket; closing from the server side is the documented behaviour.)
    ws, _ = await ws_open(conformance_url, EIO)
    try:
        await ws.send("1")
        await ws.assert_closed(1.0)
    finally:
        await ws.close()


@run_async
async def test_websocket_invalid_packet_closes(conformance_url: str) -> None:
    ws, _ = await ws_open(conformance_url, EIO)
    try:
        await ws.send("abc")
        await ws.assert_closed(1.0)
    finally:
        await ws.close()


# --------------------------------------------------------------------------- upgrade


def _upgrade_url(conformance_url: str, sid: str) -> str:
    return ws_url(conformance_url, EIO, f"EIO=4&transport=websocket&sid={sid}")


async def _probe(conformance_url: str, session: Polling) -> RawWS:
    ws = await ws_connect(_upgrade_url(conformance_url, session.sid))
    await ws.send("2probe")
    assert await ws.recv() == "3probe"
    return ws


@run_async
async def test_upgrade_full_sequence(conformance_url: str) -> None:
    async with http_client() as client:
        session = Polling(client, conformance_url, EIO)
        await session.handshake()
        ws = await _probe(conformance_url, session)
        try:
            # A GET opened after the probe is released at once with a noop.
            resp = await session.get(timeout=2)
            assert resp.status_code == 200
            assert resp.text.split(SEP)[-1] == "6", resp.text
            assert set(resp.text.split(SEP)) <= {"2", "6"}, resp.text
            # Polling still carries data until the upgrade completes; the echo waits in the buffer.
            await session.send("4buffered")
            await asyncio.sleep(0.05)
            await ws.send("5")
            # The buffered packet is flushed on the new transport, then the WS carries everything.
            assert await ws.recv() == "4buffered"
            await ws.send("4hello")
            assert await ws.recv() == "4hello"
            await ws.send(b"\xff\x00")
            assert await ws.recv() == b"\xff\x00"
            # Polling with that sid is now a transport mismatch.
            assert_error(await session.get(), 400, 3, "Bad request")
            assert_error(await session.post("4x"), 400, 3, "Bad request")
            # A second WebSocket for the same sid is closed; the first one keeps working.
            await assert_ws_refused(_upgrade_url(conformance_url, session.sid))
            await ws.send("4still")
            assert await ws.recv() == "4still"
            # Heartbeat now runs over the WebSocket.
            ws.autopong = False
            assert await ws.recv(1.0) == "2"
            await ws.send("3")
        finally:
            await ws.close()


@run_async
async def test_upgrade_releases_pending_get(conformance_url: str) -> None:
    """The real client's order: a GET is pending while the probe runs; the server releases it with noop."""
    async with http_client() as client:
        session = Polling(client, conformance_url, EIO)
        await session.handshake()
        pending = asyncio.create_task(session.get())
        await asyncio.sleep(0.05)
        ws = await _probe(conformance_url, session)
        try:
            resp = await asyncio.wait_for(pending, 1.0)
            assert resp.status_code == 200
            assert resp.text == "6", resp.text
            await ws.send("5")
            await ws.send("4after")
            assert await ws.recv() == "4after"
        finally:
            await ws.close()


@run_async
async def test_upgrade_keeps_order(conformance_url: str) -> None:
    """Packets sent over polling before the upgrade come out before packets sent after it."""
    async with http_client() as client:
        session = Polling(client, conformance_url, EIO)
        await session.handshake()
        ws = await _probe(conformance_url, session)
        try:
            assert (await session.get(timeout=2)).text.split(SEP)[-1] == "6"
            await session.send(SEP.join(f"4m{i}" for i in range(5)))
            await ws.send("5")
            for i in range(5, 10):
                await ws.send(f"4m{i}")
            assert [await ws.recv() for _ in range(10)] == [f"4m{i}" for i in range(10)]
        finally:
            await ws.close()


@run_async
async def test_unexpected_packet_during_probe_aborts_upgrade(conformance_url: str) -> None:
    """Anything but 2probe / 5 on the probing WebSocket aborts the upgrade; polling keeps working."""
    async with http_client() as client:
        session = Polling(client, conformance_url, EIO)
        await session.handshake()
        ws = await ws_connect(_upgrade_url(conformance_url, session.sid))
        try:
            await ws.send("4nope")
            await ws.assert_closed(1.0)
        finally:
            await ws.close()
        await session.send("4polling")
        assert await session.packets(1) == ["4polling"]


@run_async
async def test_websocket_session_rejects_polling(conformance_url: str) -> None:
    ws, data = await ws_open(conformance_url, EIO)
    try:
        async with http_client() as client:
            resp = await client.get(conformance_url + EIO,
                                    params={"EIO": "4", "transport": "polling", "sid": data["sid"]})
            assert_error(resp, 400, 3, "Bad request")
        await ws.send("4ok")
        assert await ws.recv() == "4ok"
    finally:
        await ws.close()


def test_parse_open_rejects_extra_keys() -> None:
    """Guard for the helper itself: the handshake must hold exactly the five keys."""
    with pytest.raises(AssertionError):
        parse_open('0{"sid":"AAAAAAAAAAAAAAAAAAAA","upgrades":[],"pingInterval":1,"pingTimeout":1,'
                   '"maxPayload":1,"extra":1}')
