"""Hostile input to the codecs over real sockets (issue 7, items 1 and 3a).

Ack ids and attachment counts of thousands of digits, numbers JSON has no room for, deep
nesting, and every way to get a placeholder wrong. Each must close the offending client as a
parse error and nothing else: another client on the same server keeps being served, and the
server's own output never shows "Exception in ASGI application" or a traceback. The server is
the conformance app under uvicorn, started here so its output can be read.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from tests.conftest import ServerLog, logged_uvicorn

from . import (
    SEP,
    SIO,
    Polling,
    RawWS,
    assert_echo,
    b64,
    http_client,
    run_async,
    sio_client,
    sio_sid,
)

pytestmark = pytest.mark.timeout(30)

MAX_PAYLOAD = 1_000_000  # the conformance server's max_http_buffer_size

PH0 = '{"_placeholder":true,"num":0}'
PH1 = '{"_placeholder":true,"num":1}'


def _ph(num: str) -> str:
    return '{"_placeholder":true,"num":' + num + "}"


def _nested(depth: int, leaf: str) -> str:
    return "[" * depth + leaf + "]" * depth


# Each entry: the WebSocket frames one client sends (text frames: Engine.IO "4" + Socket.IO).
HOSTILE: dict[str, list[str | bytes]] = {
    "ack id of 5000 digits": ["42" + "1" * 5000 + '["message-with-ack",1]'],
    "ack id of 5000 digits, no payload": ["43" + "7" * 5000],
    "ack id 2**53": ['429007199254740992["message-with-ack",1]'],
    "ack id 17 digits": ['4210000000000000000["message-with-ack",1]'],
    "ack reply id of 5000 digits": ["43" + "1" * 5000 + "[1]"],
    "attachment count of 5000 digits": ["45" + "1" * 5000 + '-["message",' + PH0 + "]", b"\x01"],
    "attachment count of 5000 zeros": ["45" + "0" * 5000 + '-["message"]'],
    "binary ack count of 5000 digits": ["46" + "1" * 5000 + "-1[" + PH0 + "]", b"\x01"],
    "binary event nested 5000 deep": ['451-["message",' + _nested(5000, PH0) + "]", b"\x01"],
    "overflow 1e999": ['42["message",1e999]'],
    "overflow -1e999": ['42["message",-1e999]'],
    "overflow in an object": ['42["message",{"a":[1,2,1E400]}]'],
    "overflow with no exponent": ['42["message",1' + "0" * 400 + ".5]"],
    "overflow in an ack": ["431[1e999]"],
    "NaN literal": ['42["message",NaN]'],
    "Infinity literal": ['42["message",Infinity]'],
    "-Infinity literal": ['42["message",{"x":-Infinity}]'],
    "NaN in a binary event": ['451-["message",NaN,' + PH0 + "]", b"\x01"],
    "_placeholder 1": ['451-["message",{"_placeholder":1,"num":0}]', b"\x01"],
    '_placeholder "true"': ['451-["message",{"_placeholder":"true","num":0}]', b"\x01"],
    'num "0"': ['451-["message",' + _ph('"0"') + "]", b"\x01"],
    "num 0.0": ['451-["message",' + _ph("0.0") + "]", b"\x01"],
    "num true": ['451-["message",' + _ph("true") + "]", b"\x01"],
    "num -1": ['451-["message",' + _ph("-1") + "]", b"\x01"],
    "num out of range": ['451-["message",' + _ph("1") + "]", b"\x01"],
    "num huge": ['451-["message",' + _ph("1" * 5000) + "]", b"\x01"],
    "num missing": ['451-["message",{"_placeholder":true}]', b"\x01"],
    "attachment referenced twice": ['451-["message",' + PH0 + "," + PH0 + "]", b"\x01"],
    "attachment referenced twice, one nested": ['452-["message",{"a":[' + PH0 + "]}," + PH0 + "]", b"\x01", b"\x02"],
    "attachment never referenced": ['452-["message",' + PH0 + "]", b"\x01", b"\x02"],
    "no placeholder at all": ['451-["message","x"]', b"\x01"],
    "placeholder with 0 attachments": ['450-["message",' + PH0 + "]"],
    "binary ack placeholder with 0 attachments": ["460-3[" + PH0 + "]"],
    "1 MB of [": ["42" + "[" * (MAX_PAYLOAD - 2)],
    "1 MB of [ in a binary event": ["451-" + "[" * (MAX_PAYLOAD - 4)],
    "1 MB of digits": ["42" + "9" * (MAX_PAYLOAD - 2)],
    "1 MB of dashes": ["45" + "-" * (MAX_PAYLOAD - 2)],
    "1 MB namespace": ["42/" + "n" * (MAX_PAYLOAD - 3)],
}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, ServerLog]]:
    with logged_uvicorn("fastapi_realtime.conformance:app", tmp_path_factory.mktemp("hostile")) as served:
        yield served
    served[1].assert_clean()


@pytest.fixture
def url(served: tuple[str, ServerLog]) -> Iterator[str]:
    yield served[0]
    served[1].assert_clean()


async def _send_all(ws: RawWS, frames: list[str | bytes]) -> None:
    """Send the frames in turn; the server may hang up before the last (a bad header)."""
    try:
        for frame in frames:
            await ws.send(frame)
    except ConnectionClosed:
        pass


def _leaked(seen: list[str | bytes]) -> list[str | bytes]:
    """Frames that should not reach a client whose packet was invalid: events, acks, binary."""
    return [f for f in seen if isinstance(f, bytes) or f[:2] in ("42", "43", "45", "46")]


@pytest.mark.parametrize("frames", list(HOSTILE.values()), ids=list(HOSTILE))
@run_async
async def test_hostile_packet_closes_only_that_client(url: str, frames: list[str | bytes]) -> None:
    bystander, _ = await sio_client(url)
    culprit, _ = await sio_client(url)
    try:
        await _send_all(culprit, frames)
        seen = await culprit.assert_closed(3)
        assert not _leaked(seen), seen
        await assert_echo(bystander)
    finally:
        await culprit.close()
        await bystander.close()


# --------------------------------------------------------------------------- still served


@run_async
async def test_largest_safe_ack_id_is_answered(url: str) -> None:
    """The boundary: 2**53-1 is a valid ack id, one more is not (above)."""
    ws, _ = await sio_client(url)
    try:
        await ws.send('429007199254740991["message-with-ack",1]')
        assert await ws.recv() == "439007199254740991[1]"
        await assert_echo(ws)
    finally:
        await ws.close()


@run_async
async def test_binary_event_nested_500_deep_is_echoed(url: str) -> None:
    """Deeper than a recursive walk could go: the placeholder is found and put back, and the
    echo carries it (and its attachment) back."""
    ws, _ = await sio_client(url)
    try:
        await ws.send('451-["message",' + _nested(500, PH0) + "]")
        await ws.send(b"\x01\x02")
        assert await ws.recv() == '451-["message-back",' + _nested(500, PH0) + "]"
        assert await ws.recv() == b"\x01\x02"
        # The same depth as a plain event, and one with an extra-keyed placeholder (Node's rule).
        await ws.send('42["message",' + _nested(500, '"x"') + "]")
        assert await ws.recv() == '42["message-back",' + _nested(500, '"x"') + "]"
        await ws.send('451-["message",{"_placeholder":true,"num":0,"extra":1}]')
        await ws.send(b"\x03")
        assert await ws.recv() == '451-["message-back",' + PH0 + "]"
        assert await ws.recv() == b"\x03"
    finally:
        await ws.close()


@run_async
async def test_attachments_out_of_order_are_fine(url: str) -> None:
    ws, _ = await sio_client(url)
    try:
        await ws.send('452-["message",{"k":[' + PH1 + "]}," + PH0 + "]")
        await ws.send(b"zero")
        await ws.send(b"one")
        # Re-encoded depth first: "one" comes first now.
        assert await ws.recv() == '452-["message-back",{"k":[' + PH0 + "]}," + PH1 + "]"
        assert await ws.recv() == b"one"
        assert await ws.recv() == b"zero"
    finally:
        await ws.close()


@run_async
async def test_large_finite_numbers_are_echoed(url: str) -> None:
    ws, _ = await sio_client(url)
    try:
        await ws.send('42["message",1e308,-1.5e-999,' + "1" * 400 + "]")
        assert await ws.recv() == '42["message-back",1e+308,-0.0,' + "1" * 400 + "]"
    finally:
        await ws.close()


@run_async
async def test_lone_surrogate_is_echoed_as_an_escape(url: str) -> None:
    """`"\\ud800"` is valid JSON; echoed raw it could not be written as UTF-8 (it was a 500 and
    a traceback over polling). JSON.stringify writes the escape, and so does the server."""
    ws, _ = await sio_client(url)
    try:
        await ws.send('42["message","\\ud800x\\uDFFF"]')
        assert await ws.recv() == '42["message-back","\\ud800x\\udfff"]'
        await assert_echo(ws)
    finally:
        await ws.close()
    async with http_client() as client:
        session = await _polling_joined(client, url)
        await session.send('42["message","\\ud800"]')
        assert await session.packets(1) == ['42["message-back","\\ud800"]']


# --------------------------------------------------------------------------- polling


async def _polling_joined(client: httpx.AsyncClient, base: str) -> Polling:
    session = Polling(client, base, SIO)
    await session.handshake()
    await session.send("40")
    packets = await session.packets(2)  # the CONNECT reply and the `auth` greeting
    sio_sid(packets[0])
    return session


async def _assert_polling_closed(session: Polling) -> None:
    """The session ends: a GET may first deliver the close packet, then the sid is unknown."""
    for _ in range(3):
        resp = await session.get()
        if resp.status_code == 400:
            assert resp.json() == {"code": 1, "message": "Session ID unknown"}
            return
        assert resp.status_code == 200, (resp.status_code, resp.text)
        packets = resp.text.split(SEP)
        assert not [p for p in packets if p[:2] in ("42", "43", "45", "46") or p[:1] == "b"], packets
    raise AssertionError("the session is still open")


POLLING_HOSTILE: dict[str, list[str]] = {
    "ack id of 5000 digits": ["42" + "1" * 5000 + '["message-with-ack",1]'],
    "ack id 2**53": ['429007199254740992["message-with-ack",1]'],
    "attachment count of 5000 digits": ["45" + "1" * 5000 + '-["message",' + PH0 + "]", b64(b"\x01")],
    "overflow 1e999": ['42["message",1e999]'],
    "NaN literal": ['42["message",NaN]'],
    "num 0.0": ['451-["message",' + _ph("0.0") + "]", b64(b"\x01")],
    "attachment referenced twice": ['451-["message",' + PH0 + "," + PH0 + "]", b64(b"\x01")],
    "attachment never referenced": ['452-["message",' + PH0 + "]", b64(b"\x01"), b64(b"\x02")],
    "1 MB of [": ["42" + "[" * (MAX_PAYLOAD - 2)],
}


@pytest.mark.parametrize("records", list(POLLING_HOSTILE.values()), ids=list(POLLING_HOSTILE))
@run_async
async def test_hostile_polling_payload_closes_only_that_session(url: str, records: list[str]) -> None:
    bystander, _ = await sio_client(url)
    try:
        async with http_client() as client:
            session = await _polling_joined(client, url)
            resp = await session.post(SEP.join(records))
            assert resp.status_code in (200, 400), (resp.status_code, resp.text)
            await _assert_polling_closed(session)
        await assert_echo(bystander)
    finally:
        await bystander.close()


def test_tables_are_within_the_payload_limit() -> None:
    """Every hostile frame must reach the decoder, not the size limit (that is another test)."""
    for frames in HOSTILE.values():
        assert all(len(frame) <= MAX_PAYLOAD for frame in frames)
    for records in POLLING_HOSTILE.values():
        assert len(SEP.join(records).encode()) <= MAX_PAYLOAD
