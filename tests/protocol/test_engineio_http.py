"""Engine.IO v4 over HTTP long-polling, raw bytes (protocol.md §1), against the conformance server."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from . import (
    MAX_PAYLOAD,
    PING_INTERVAL,
    PING_TIMEOUT,
    SEP,
    Polling,
    assert_error,
    b64,
    error_json,
    http_client,
    parse_open,
    run_async,
)

pytestmark = pytest.mark.timeout(15)

EIO = "/engine.io/"


# --------------------------------------------------------------------------- handshake


@pytest.mark.parametrize("path", ["/engine.io/", "/socket.io/"])
@run_async
async def test_handshake_polling(conformance_url: str, path: str) -> None:
    async with http_client() as client:
        resp = await client.get(conformance_url + path, params={"EIO": "4", "transport": "polling"})
        assert resp.status_code == 200
        assert resp.headers["content-type"].lower().startswith("text/plain")
        data = parse_open(resp.text)  # exactly the five keys, sid of 20 url-safe chars
        assert data["upgrades"] == ["websocket"]
        assert data["pingInterval"] == int(PING_INTERVAL * 1000)
        assert data["pingTimeout"] == int(PING_TIMEOUT * 1000)
        assert data["maxPayload"] == MAX_PAYLOAD
        assert len(data["sid"]) == 20
        # The cache-buster `t` is ignored, and every session gets its own id.
        resp2 = await client.get(conformance_url + path, params={"EIO": "4", "transport": "polling", "t": "Nx1"})
        assert parse_open(resp2.text)["sid"] != data["sid"]


@pytest.mark.parametrize("query", [{"transport": "polling"}, {"EIO": "abc", "transport": "polling"},
                                   {"EIO": "3", "transport": "polling"}, {"EIO": "5", "transport": "polling"}])
@run_async
async def test_bad_eio_version(conformance_url: str, query: dict[str, str]) -> None:
    async with http_client() as client:
        resp = await client.get(conformance_url + EIO, params=query)
        assert_error(resp, 400, 5, "Unsupported protocol version")


@pytest.mark.parametrize("query", [{"EIO": "4"}, {"EIO": "4", "transport": "abc"}])
@run_async
async def test_unknown_transport(conformance_url: str, query: dict[str, str]) -> None:
    async with http_client() as client:
        resp = await client.get(conformance_url + EIO, params=query)
        assert_error(resp, 400, 0, "Transport unknown")


@pytest.mark.parametrize("method", ["POST", "PUT"])
@run_async
async def test_bad_handshake_method(conformance_url: str, method: str) -> None:
    async with http_client() as client:
        resp = await client.request(method, conformance_url + EIO, params={"EIO": "4", "transport": "polling"},
                                    content="4hello")
        assert_error(resp, 400, 2, "Bad handshake method")


@pytest.mark.parametrize("method", ["GET", "POST"])
@run_async
async def test_unknown_sid(conformance_url: str, method: str) -> None:
    async with http_client() as client:
        resp = await client.request(method, conformance_url + EIO,
                                    params={"EIO": "4", "transport": "polling", "sid": "A" * 20}, content="4x")
        assert_error(resp, 400, 1, "Session ID unknown")


@run_async
async def test_transport_mismatch_is_bad_request(conformance_url: str) -> None:
    async with http_client() as client:
        session = Polling(client, conformance_url, EIO)
        await session.handshake()
        url = conformance_url + EIO
        ws_params = {"EIO": "4", "transport": "websocket", "sid": session.sid}
        # A POST, or a plain (non-upgrade) GET, naming the websocket transport for a polling session.
        assert_error(await client.post(url, params=ws_params, content="4x"), 400, 3, "Bad request")
        assert_error(await client.get(url, params=ws_params), 400, 3, "Bad request")
        # A plain HTTP GET with transport=websocket and no sid is no handshake either.
        assert_error(await client.get(url, params={"EIO": "4", "transport": "websocket"}), 400, 3, "Bad request")


# --------------------------------------------------------------------------- messages


@run_async
async def test_post_ok_and_echo(conformance_url: str) -> None:
    async with http_client() as client:
        session = Polling(client, conformance_url, EIO)
        await session.handshake()
        resp = await session.post("4hello")
        assert resp.status_code == 200
        assert resp.text == "ok"
        assert resp.headers["content-type"].lower().startswith("text/html")
        get = await session.get()
        assert get.status_code == 200
        assert get.headers["content-type"].lower().startswith("text/plain")
        assert get.text == "4hello"


@run_async
async def test_binary_is_base64_on_polling(conformance_url: str) -> None:
    async with http_client() as client:
        session = Polling(client, conformance_url, EIO)
        await session.handshake()
        await session.send(b64(b"\x01\x02\x03\x04"))
        assert await session.packets(1) == ["bAQIDBA=="]


@run_async
async def test_payload_joined_with_record_separator(conformance_url: str) -> None:
    async with http_client() as client:
        session = Polling(client, conformance_url, EIO)
        await session.handshake()
        await session.send(SEP.join(["4test1", "4tëst2", "bAQIDBA==", "4"]))
        await asyncio.sleep(0.05)  # let the echo land in the buffer so one GET carries all of it
        resp = await session.get()
        assert resp.status_code == 200
        packets = [p for p in resp.text.split(SEP) if p != "2"]
        assert packets == ["4test1", "4tëst2", "bAQIDBA==", "4"], resp.text


@run_async
async def test_get_waits_for_data(conformance_url: str) -> None:
    """A GET with nothing buffered stays open until a packet arrives (long-polling)."""
    async with http_client() as client:
        session = Polling(client, conformance_url, EIO)
        await session.handshake()
        pending = asyncio.create_task(session.get())
        await asyncio.sleep(0.05)
        assert not pending.done()
        await session.send("4late")
        resp = await asyncio.wait_for(pending, 2)
        assert resp.text == "4late"


# --------------------------------------------------------------------------- heartbeat


@run_async
async def test_ping_pong(conformance_url: str) -> None:
    async with http_client() as client:
        session = Polling(client, conformance_url, EIO)
        await session.handshake()
        start = time.monotonic()
        for _ in range(3):
            resp = await session.get()
            assert resp.status_code == 200
            assert resp.text == "2"
            await session.send("3")
        # Three pings, each re-armed by the pong: roughly three intervals, well past interval+timeout.
        assert time.monotonic() - start >= 3 * PING_INTERVAL * 0.8
        await session.send("4alive")
        assert await session.packets(1) == ["4alive"]


@run_async
async def test_first_ping_after_interval(conformance_url: str) -> None:
    async with http_client() as client:
        session = Polling(client, conformance_url, EIO)
        await session.handshake()
        start = time.monotonic()
        resp = await session.get()
        elapsed = time.monotonic() - start
        assert resp.text == "2"
        assert PING_INTERVAL * 0.8 <= elapsed <= PING_INTERVAL + 0.25, elapsed


@run_async
async def test_ping_timeout_closes_session(conformance_url: str) -> None:
    async with http_client() as client:
        session = Polling(client, conformance_url, EIO)
        await session.handshake()
        # Exactly pingInterval + pingTimeout, as the Node suite does: the timer must not be late.
        await asyncio.sleep(PING_INTERVAL + PING_TIMEOUT)
        await session.assert_closed()


@run_async
async def test_client_ping_closes_session(conformance_url: str) -> None:
    """In v4 the server pings; a ping from the client is a heartbeat in the wrong direction."""
    async with http_client() as client:
        session = Polling(client, conformance_url, EIO)
        await session.handshake()
        resp = await session.post("2")
        assert resp.status_code in (200, 400)
        await session.assert_closed()


# --------------------------------------------------------------------------- close


@run_async
async def test_client_close_packet(conformance_url: str) -> None:
    async with http_client() as client:
        session = Polling(client, conformance_url, EIO)
        await session.handshake()
        pending = asyncio.create_task(session.get())
        await asyncio.sleep(0.05)
        await session.send("1")
        resp = await asyncio.wait_for(pending, 2)
        assert resp.status_code == 200
        assert resp.text == "6"  # the pending GET is released with a noop
        await session.assert_closed()
        assert_error(await session.post("4x"), 400, 1, "Session ID unknown")


@run_async
async def test_overlapping_get_closes_session(conformance_url: str) -> None:
    async with http_client() as client:
        session = Polling(client, conformance_url, EIO)
        await session.handshake()

        async def later(delay: float) -> httpx.Response:
            await asyncio.sleep(delay)
            return await session.get()

        first, second, third = await asyncio.gather(later(0), later(0.02), later(0.04))
        assert second.status_code == 400, second.text
        assert third.status_code == 400, third.text
        assert first.status_code == 200
        assert first.text == "1"  # the server closes the session and says so on the pending GET
        await session.assert_closed()


@run_async
async def test_invalid_packet_closes_session(conformance_url: str) -> None:
    async with http_client() as client:
        session = Polling(client, conformance_url, EIO)
        await session.handshake()
        resp = await session.post("abc")
        assert resp.status_code in (200, 400)  # Node answers 200 ok; either is accepted
        await session.assert_closed()


@run_async
async def test_octet_stream_post_closes_session(conformance_url: str) -> None:
    async with http_client() as client:
        session = Polling(client, conformance_url, EIO)
        await session.handshake()
        resp = await session.post(b"\x01\x02\x03", content_type="application/octet-stream")
        assert resp.status_code == 400
        await session.assert_closed()


# --------------------------------------------------------------------------- CORS


@run_async
async def test_cors_star(conformance_url: str) -> None:
    async with http_client() as client:
        origin = {"Origin": "http://anywhere.example"}
        resp = await client.get(conformance_url + EIO, params={"EIO": "4", "transport": "polling"}, headers=origin)
        assert resp.status_code == 200
        assert resp.headers["access-control-allow-origin"] == "*"
        sid = parse_open(resp.text)["sid"]
        params = {"EIO": "4", "transport": "polling", "sid": sid}
        post = await client.post(conformance_url + EIO, params=params, content="4x", headers=origin)
        assert post.text == "ok"
        assert post.headers["access-control-allow-origin"] == "*"
        # Errors carry the header too, or a browser could not read the JSON.
        err = await client.get(conformance_url + EIO, params={"EIO": "4"}, headers=origin)
        assert error_json(err)["code"] == 0
        assert err.headers["access-control-allow-origin"] == "*"


@run_async
async def test_cors_preflight(conformance_url: str) -> None:
    async with http_client() as client:
        resp = await client.options(
            conformance_url + EIO,
            params={"EIO": "4", "transport": "polling"},
            headers={"Origin": "http://anywhere.example", "Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "content-type"},
        )
        assert resp.status_code == 204
        assert resp.headers["access-control-allow-origin"] == "*"
        methods = {m.strip().upper() for m in resp.headers["access-control-allow-methods"].split(",")}
        assert {"GET", "POST"} <= methods
