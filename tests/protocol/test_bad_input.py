"""Malformed input and limits: the offending client is cut off, everyone else keeps being served.

Malformed Socket.IO packets run against the conformance server; the limits (payload size,
attachments, origins, allow_request, cookie) against tests/protocol/limits_app.py.
"""

from __future__ import annotations

import httpx
import pytest

from . import (
    SIO,
    Polling,
    assert_echo,
    assert_error,
    assert_ws_refused,
    b64,
    compact,
    http_client,
    limits_url,  # noqa: F401  (fixture)
    parse_open,
    run_async,
    sio_client,
    sio_sid,
    ws_open,
    ws_url,
)
from .limits_app import GOOD_ORIGIN, MAX_ATTACHMENTS, MAX_BUFFER, REFUSE_HEADER

pytestmark = pytest.mark.timeout(15)

PH0 = '{"_placeholder":true,"num":0}'
PH1 = '{"_placeholder":true,"num":1}'
PH2 = '{"_placeholder":true,"num":2}'

# Each entry: the WebSocket frames one client sends (protocol.md §2.1-§2.2 decoder rules).
MALFORMED: dict[str, list[str | bytes]] = {
    "unknown type": ["4abc"],
    "unknown type digit": ["49"],
    "event payload not an array": ["42{}"],
    "event payload a string": ['42"message"'],
    "event empty array": ["42[]"],
    "event name not a string": ['42[null,"x"]'],
    "event name an object": ['42[{},"x"]'],
    "junk ack id": ['42abc["message-with-ack",1,"2",{"3":[false]}]'],
    "truncated json": ['42["message",'],
    "reserved connect": ['42["connect"]'],
    "reserved connect_error": ['42["connect_error",1]'],
    "reserved disconnect": ['42["disconnect"]'],
    "reserved disconnecting": ['42["disconnecting"]'],
    "reserved newListener": ['42["newListener","x"]'],
    "reserved removeListener": ['42["removeListener","x"]'],
    "ack payload not an array": ["431{}"],
    "disconnect with payload": ["41{}"],
    "connect payload an array": ["40/custom,[1]"],
    "connect payload a string": ['40/custom,"token"'],
    "attachments not a number": ['45x-["message"]'],
    "attachments without dash": ['452["message",' + PH0 + "]"],
    "too many attachments": ['4511-["message"]'],
    "binary without reconstruction": [b"\x01\x02\x03"],
    "placeholder out of range": ['451-["message",{"_placeholder":true,"num":3}]', b"\x01"],
    "text while attachments pending": ['451-["message",' + PH0 + "]", '42["message"]'],
}


@pytest.mark.parametrize("frames", list(MALFORMED.values()), ids=list(MALFORMED))
@run_async
async def test_malformed_packet_closes_only_that_client(conformance_url: str, frames: list[str | bytes]) -> None:
    bystander, _ = await sio_client(conformance_url)
    culprit, _ = await sio_client(conformance_url)
    try:
        for frame in frames:
            await culprit.send(frame)
        seen = await culprit.assert_closed(1.5)
        # No echo, ack or namespace reply leaked out before the close.
        assert not any(isinstance(f, str) and f[:2] in ("42", "43", "40") for f in seen), seen
        await assert_echo(bystander)
    finally:
        await culprit.close()
        await bystander.close()


@run_async
async def test_malformed_polling_closes_session(conformance_url: str) -> None:
    """The same rule over polling: a stray binary record ends the session, the next GET says so."""
    async with http_client() as client:
        session = Polling(client, conformance_url, SIO)
        await session.handshake()
        await session.send("40")
        await session.packets(2)
        resp = await session.post(b64(b"\x01\x02"))
        assert resp.status_code in (200, 400)
        resp = await session.get()
        if resp.status_code == 200:  # the close packet may come on this GET first
            assert resp.text.split("\x1e")[-1] == "1", resp.text
            resp = await session.get()
        assert_error(resp, 400, 1, "Session ID unknown")


# --------------------------------------------------------------------------- limits app


@run_async
async def test_attachment_limit(limits_url: str) -> None:
    bystander, _ = await sio_client(limits_url, auth_event=False)
    culprit, _ = await sio_client(limits_url, auth_event=False)
    try:
        # At the limit: fine, and echoed with both attachments.
        header = f'452-["message",{PH0},{PH1}]'
        await culprit.send(header)
        await culprit.send(b"\x01")
        await culprit.send(b"\x02")
        assert await culprit.recv() == f'452-["message-back",{PH0},{PH1}]'
        assert await culprit.recv() == b"\x01"
        assert await culprit.recv() == b"\x02"
        # One over the limit: the header alone is an error, before any attachment arrives.
        assert MAX_ATTACHMENTS == 2
        await culprit.send(f'453-["message",{PH0},{PH1},{PH2}]')
        await culprit.assert_closed(1.5)
        await assert_echo(bystander)
    finally:
        await culprit.close()
        await bystander.close()


async def _polling_joined(client: httpx.AsyncClient, base: str) -> Polling:
    session = Polling(client, base, SIO)
    await session.handshake()
    await session.send("40")
    sio_sid((await session.packets(1))[0])
    return session


def _padded_event(total: int) -> str:
    """A `42["message","xx..."]` EIO packet of exactly `total` bytes."""
    bare = '42["message",""]'
    return bare[:-2] + "x" * (total - len(bare)) + bare[-2:]


@run_async
async def test_post_over_limit_is_413(limits_url: str) -> None:
    async with http_client() as client:
        session = await _polling_joined(client, limits_url)
        at_limit = _padded_event(MAX_BUFFER)
        assert len(at_limit.encode()) == MAX_BUFFER
        await session.send(at_limit)
        assert (await session.packets(1))[0].startswith('42["message-back","xxx')
        resp = await session.post(_padded_event(MAX_BUFFER + 1))
        assert resp.status_code == 413
        # Node keeps the session open after a 413.
        await session.send('42["message","after"]')
        assert await session.packets(1) == ['42["message-back","after"]']


@run_async
async def test_handshake_reports_max_payload(limits_url: str) -> None:
    async with http_client() as client:
        resp = await client.get(limits_url + SIO, params={"EIO": "4", "transport": "polling"})
        assert parse_open(resp.text)["maxPayload"] == MAX_BUFFER


@pytest.mark.parametrize("kind", ["text", "binary", "utf-8"])
@run_async
async def test_websocket_frame_over_limit_closes_1009(limits_url: str, kind: str) -> None:
    bystander, _ = await sio_client(limits_url, auth_event=False)
    culprit, _ = await sio_client(limits_url, auth_event=False)
    try:
        at_limit = _padded_event(MAX_BUFFER)
        await culprit.send(at_limit)
        assert (await culprit.recv_text()).startswith('42["message-back","xxx')
        if kind == "binary":
            await culprit.send('451-["message",' + PH0 + "]")
            await culprit.send(b"\x00" * (MAX_BUFFER + 1))
        elif kind == "utf-8":
            # Fewer characters than the limit, more bytes: the limit is in bytes.
            await culprit.send(_padded_event(MAX_BUFFER * 2 // 3).replace("x", "é"))
        else:
            await culprit.send(_padded_event(MAX_BUFFER + 1))
        await culprit.assert_closed(1.5)
        assert culprit.close_code == 1009
        await assert_echo(bystander)
    finally:
        await culprit.close()
        await bystander.close()


@run_async
async def test_cors_allowed_origin(limits_url: str) -> None:
    async with http_client() as client:
        resp = await client.get(limits_url + SIO, params={"EIO": "4", "transport": "polling"},
                                headers={"Origin": GOOD_ORIGIN})
        assert resp.status_code == 200
        assert resp.headers["access-control-allow-origin"] == GOOD_ORIGIN
        parse_open(resp.text)
        # Clients that are not browsers send no Origin; they are not refused.
        resp = await client.get(limits_url + SIO, params={"EIO": "4", "transport": "polling"})
        assert resp.status_code == 200
    ws, _ = await ws_open(limits_url, SIO, origin=GOOD_ORIGIN)
    await ws.close()


@run_async
async def test_cors_refused_origin_polling(limits_url: str) -> None:
    async with http_client() as client:
        resp = await client.get(limits_url + SIO, params={"EIO": "4", "transport": "polling"},
                                headers={"Origin": "http://evil.example"})
        assert resp.status_code in (400, 403), resp.text
        assert resp.headers.get("access-control-allow-origin") not in ("*", "http://evil.example")
        assert not resp.text.startswith("0")
        # A preflight from that origin gets no permission either.
        pre = await client.options(limits_url + SIO, params={"EIO": "4", "transport": "polling"},
                                   headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
        assert pre.headers.get("access-control-allow-origin") not in ("*", "http://evil.example")


@run_async
async def test_cors_refused_origin_websocket(limits_url: str) -> None:
    await assert_ws_refused(ws_url(limits_url, SIO, "EIO=4&transport=websocket"), origin="http://evil.example")


@run_async
async def test_cors_refused_origin_on_existing_session(limits_url: str) -> None:
    """The origin check is not only at the handshake: a POST from another origin is refused too."""
    async with http_client() as client:
        session = Polling(client, limits_url, SIO)
        await session.handshake(headers={"Origin": GOOD_ORIGIN})
        resp = await client.post(limits_url + SIO, params={"EIO": "4", "transport": "polling", "sid": session.sid},
                                 content="40", headers={"Origin": "http://evil.example"})
        assert resp.status_code in (400, 403), resp.text


@run_async
async def test_allow_request_refusal(limits_url: str) -> None:
    async with http_client() as client:
        resp = await client.get(limits_url + SIO, params={"EIO": "4", "transport": "polling"},
                                headers={REFUSE_HEADER: "1"})
        assert_error(resp, 403, 4, "Forbidden")
    # The same check guards the WebSocket upgrade request.
    await assert_ws_refused(ws_url(limits_url, SIO, "EIO=4&transport=websocket"), headers={REFUSE_HEADER: "1"})


@run_async
async def test_cookie(limits_url: str) -> None:
    async with http_client() as client:
        resp = await client.get(limits_url + SIO, params={"EIO": "4", "transport": "polling"})
        sid = parse_open(resp.text)["sid"]
        cookie = resp.headers.get("set-cookie", "")
        assert cookie.split(";")[0].strip() == f"io={sid}", cookie


def test_padded_event_helper() -> None:
    assert len(_padded_event(100)) == 100
    assert compact(["message", "x"]) == '["message","x"]'
