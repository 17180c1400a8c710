"""Socket.IO v5 packets over raw Engine.IO (protocol.md §2), against the conformance server.

The conformance server mirrors Node's socket.io-protocol test-suite server: on connection every
namespace emits `auth` with the handshake auth; `message` comes back as `message-back`, and
`message-with-ack` acks with its arguments.
"""

from __future__ import annotations

import json
import time

import pytest

from . import (
    CONNECT_TIMEOUT,
    SEP,
    SIO,
    Polling,
    assert_echo,
    b64,
    compact,
    http_client,
    run_async,
    sio_client,
    sio_sid,
    ws_open,
)

pytestmark = pytest.mark.timeout(15)


# --------------------------------------------------------------------------- connect


@run_async
async def test_connect_main_namespace(conformance_url: str) -> None:
    ws, handshake = await ws_open(conformance_url, SIO)
    try:
        await ws.send("40")
        reply = await ws.recv()
        sid = sio_sid(reply)  # exactly {"sid"}: no pid key when recovery is off
        assert sid != handshake["sid"]  # the Socket.IO id is not the Engine.IO id
        assert await ws.recv() == '42["auth",{}]'
    finally:
        await ws.close()


@run_async
async def test_connect_with_auth_payload(conformance_url: str) -> None:
    ws, _ = await sio_client(conformance_url, "/", {"token": "123"})  # checks 42["auth",{"token":"123"}]
    await ws.close()


@pytest.mark.parametrize("packet", ["40/custom,", "40/custom"])
@run_async
async def test_connect_custom_namespace(conformance_url: str, packet: str) -> None:
    """The decoder accepts the namespace without a trailing comma; the reply always has it."""
    ws, _ = await ws_open(conformance_url, SIO)
    try:
        await ws.send(packet)
        sio_sid(await ws.recv(), "/custom")
        assert await ws.recv() == '42/custom,["auth",{}]'
    finally:
        await ws.close()


@run_async
async def test_connect_custom_namespace_with_auth(conformance_url: str) -> None:
    ws, _ = await sio_client(conformance_url, "/custom", {"token": "abc"})
    await ws.close()


@run_async
async def test_sids_differ_per_namespace(conformance_url: str) -> None:
    ws, main_sid = await sio_client(conformance_url)
    try:
        await ws.send("40/custom,")
        custom_sid = sio_sid(await ws.recv(), "/custom")
        assert await ws.recv() == '42/custom,["auth",{}]'
        assert custom_sid != main_sid
    finally:
        await ws.close()


@pytest.mark.parametrize("packet", ["40/random", "40/random,", '40/random,{"token":"x"}'])
@run_async
async def test_unknown_namespace(conformance_url: str, packet: str) -> None:
    ws, _ = await ws_open(conformance_url, SIO)
    try:
        await ws.send(packet)
        assert await ws.recv() == '44/random,{"message":"Invalid namespace"}'
        # The Engine.IO connection stays open and the client may still join a real namespace.
        await ws.send("40")
        sio_sid(await ws.recv())
        assert await ws.recv() == '42["auth",{}]'
    finally:
        await ws.close()


@run_async
async def test_connect_over_polling(conformance_url: str) -> None:
    async with http_client() as client:
        session = Polling(client, conformance_url, SIO)
        await session.handshake()
        await session.send('40{"token":"p"}')
        packets = await session.packets(2)
        assert sio_sid(packets[0]) != session.sid
        assert packets[1] == '42["auth",{"token":"p"}]'
        await session.send('42["message","over polling"]')
        assert await session.packets(1) == ['42["message-back","over polling"]']


@run_async
async def test_connect_timeout_closes_connection(conformance_url: str) -> None:
    ws, _ = await ws_open(conformance_url, SIO)
    try:
        start = time.monotonic()
        await ws.assert_closed(CONNECT_TIMEOUT + 1.5)  # pings are answered: only the connect timer can fire
        elapsed = time.monotonic() - start
        assert CONNECT_TIMEOUT * 0.8 <= elapsed <= CONNECT_TIMEOUT + 1.0, elapsed
    finally:
        await ws.close()


@run_async
async def test_connect_timeout_polling(conformance_url: str) -> None:
    async with http_client() as client:
        session = Polling(client, conformance_url, SIO)
        await session.handshake()
        start = time.monotonic()
        body = ""
        for _ in range(10):  # answer pings until the server gives up on the missing CONNECT
            resp = await session.get()
            if resp.status_code != 200:
                break
            body = resp.text
            if "1" in body.split(SEP):
                break
            assert set(body.split(SEP)) <= {"2"}, body
            await session.post("3")
        elapsed = time.monotonic() - start
        assert CONNECT_TIMEOUT * 0.8 <= elapsed <= CONNECT_TIMEOUT + 1.0, elapsed
        await session.assert_closed()


@run_async
async def test_no_connect_timeout_once_joined(conformance_url: str) -> None:
    """The timer only covers the first CONNECT: leaving every namespace does not re-arm it."""
    ws, _ = await sio_client(conformance_url)
    try:
        await ws.send("41")
        await ws.assert_quiet(CONNECT_TIMEOUT + 0.3)
        await ws.send("40")
        sio_sid(await ws.recv())
        assert await ws.recv() == '42["auth",{}]'
    finally:
        await ws.close()


# --------------------------------------------------------------------------- invalid state


@run_async
async def test_second_connect_closes(conformance_url: str) -> None:
    ws, _ = await sio_client(conformance_url)
    try:
        await ws.send("40")
        await ws.assert_closed(1.0)
    finally:
        await ws.close()


@pytest.mark.parametrize("packet", ['42/custom,["message","x"]', '42/custom,1["message-with-ack"]', "41/custom,",
                                    "43/custom,1[]"])
@run_async
async def test_packet_for_unjoined_namespace_closes(conformance_url: str, packet: str) -> None:
    ws, _ = await sio_client(conformance_url)
    try:
        await ws.send(packet)
        await ws.assert_closed(1.0)
    finally:
        await ws.close()


@run_async
async def test_event_before_any_connect_closes(conformance_url: str) -> None:
    ws, _ = await ws_open(conformance_url, SIO)
    try:
        await ws.send('42["message","too early"]')
        frames = await ws.assert_closed(0.9)  # well before the 1 s connect timeout would fire
        assert not any(isinstance(f, str) and f.startswith("42") for f in frames), frames
    finally:
        await ws.close()


# --------------------------------------------------------------------------- disconnect


@run_async
async def test_client_disconnect_main(conformance_url: str) -> None:
    ws, _ = await sio_client(conformance_url)
    try:
        ws.autopong = False
        await ws.send("41")
        # Nothing comes back for a client DISCONNECT; the next frame is the next heartbeat.
        assert await ws.recv(1.0) == "2"
        await ws.send("3")
    finally:
        await ws.close()


@pytest.mark.parametrize("packet", ["41/custom,", "41/custom"])
@run_async
async def test_client_disconnect_custom(conformance_url: str, packet: str) -> None:
    ws, _ = await sio_client(conformance_url)
    try:
        await ws.send("40/custom,")
        sio_sid(await ws.recv(), "/custom")
        assert await ws.recv() == '42/custom,["auth",{}]'
        await ws.send(packet)
        await assert_echo(ws, "message to main namespace")  # "/" is unaffected
        # Leaving /custom makes /custom packets invalid again.
        await ws.send('42/custom,["message"]')
        await ws.assert_closed(1.0)
    finally:
        await ws.close()


# --------------------------------------------------------------------------- events and acks


@run_async
async def test_plain_event(conformance_url: str) -> None:
    ws, _ = await sio_client(conformance_url)
    try:
        await ws.send('42["message",1,"2",{"3":[true]}]')
        assert await ws.recv() == '42["message-back",1,"2",{"3":[true]}]'
        await ws.send('42["message","ünïcødé ✓",null,-1.5]')
        assert await ws.recv() == '42["message-back","ünïcødé ✓",null,-1.5]'
    finally:
        await ws.close()


@run_async
async def test_event_with_ack(conformance_url: str) -> None:
    ws, _ = await sio_client(conformance_url)
    try:
        await ws.send('42456["message-with-ack",1,"2",{"3":[false]}]')
        assert await ws.recv() == '43456[1,"2",{"3":[false]}]'
        await ws.send('420["message-with-ack"]')
        assert await ws.recv() == "430[]"
    finally:
        await ws.close()


@run_async
async def test_binary_event_websocket(conformance_url: str) -> None:
    ws, _ = await sio_client(conformance_url)
    try:
        await ws.send('452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]')
        await ws.send(b"\x01\x02\x03")
        await ws.send(b"\x04\x05\x06")
        assert await ws.recv() == '452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]'
        assert await ws.recv() == b"\x01\x02\x03"
        assert await ws.recv() == b"\x04\x05\x06"
    finally:
        await ws.close()


@run_async
async def test_binary_event_with_ack(conformance_url: str) -> None:
    ws, _ = await sio_client(conformance_url)
    try:
        await ws.send('452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]')
        await ws.send(b"\x01\x02\x03")
        await ws.send(b"\x04\x05\x06")
        assert await ws.recv() == '462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]'
        assert await ws.recv() == b"\x01\x02\x03"
        assert await ws.recv() == b"\x04\x05\x06"
    finally:
        await ws.close()


@run_async
async def test_binary_event_polling(conformance_url: str) -> None:
    async with http_client() as client:
        session = Polling(client, conformance_url, SIO)
        await session.handshake()
        await session.send("40")
        assert (await session.packets(2))[1] == '42["auth",{}]'
        header = '451-["message",{"_placeholder":true,"num":0}]'
        await session.send(SEP.join([header, b64(b"\x00\xff\x10")]))
        assert await session.packets(2) == ['451-["message-back",{"_placeholder":true,"num":0}]', b64(b"\x00\xff\x10")]


@run_async
async def test_unknown_ack_id_ignored(conformance_url: str) -> None:
    ws, _ = await sio_client(conformance_url)
    try:
        await ws.send('43999["nobody asked"]')
        await ws.send('461-999[{"_placeholder":true,"num":0}]')  # a binary ack nobody waits for
        await ws.send(b"\x01")
        await assert_echo(ws)
    finally:
        await ws.close()


@run_async
async def test_many_events_keep_order(conformance_url: str) -> None:
    ws, _ = await sio_client(conformance_url)
    try:
        for i in range(50):
            await ws.send(f'42["message",{i}]')
        got = [await ws.recv() for _ in range(50)]
        assert got == [f'42["message-back",{i}]' for i in range(50)]
    finally:
        await ws.close()


def test_compact_matches_javascript() -> None:
    """Guard for the helper the expected bytes are built with."""
    assert compact({"a": [1, "é"]}) == '{"a":[1,"é"]}'
    assert json.loads(compact({"token": "x"})) == {"token": "x"}
