"""Engine.IO answers, connect races and operator limits, over real sockets (issue 7, items 2-4).

The server is tests/protocol/hardening_app.py under uvicorn, its output kept: no test may leave
"Exception in ASGI application" (or any traceback) in it.
"""

from __future__ import annotations

import asyncio
import json
import socket as stdsocket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ServerLog, logged_uvicorn

from . import (
    SEP,
    SIO,
    Polling,
    RawWS,
    assert_error,
    compact,
    connect_packet,
    http_client,
    parse_open,
    run_async,
    ws_connect,
    ws_open,
    ws_url,
)
from .hardening_app import MAX_BUFFER

pytestmark = pytest.mark.timeout(30)

APP = "tests.protocol.hardening_app:app"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, ServerLog]]:
    with logged_uvicorn(APP, tmp_path_factory.mktemp("hardening")) as served:
        yield served
    served[1].assert_clean()


@pytest.fixture
def url(served: tuple[str, ServerLog]) -> Iterator[str]:
    yield served[0]
    served[1].assert_clean()


async def _joined(client: httpx.AsyncClient, base: str) -> Polling:
    """A polling client joined to "/" (its welcome event consumed)."""
    poll = Polling(client, base, SIO)
    await poll.handshake()
    await poll.send(connect_packet())
    got = await poll.packets(2)
    assert got[0].startswith("40"), got
    assert got[1].startswith('42["welcome"'), got
    return poll


async def _ws_joined(base: str, auth: dict[str, Any] | None = None) -> tuple[RawWS, dict[str, Any]]:
    """A WebSocket client joined to "/": its CONNECT reply body (sid, pid) and the welcome seen."""
    ws, _ = await ws_open(base, SIO)
    await ws.send(connect_packet("/", auth))
    reply = await ws.recv_text()
    assert reply.startswith("40{"), reply
    welcome = await ws.recv_text()
    assert welcome.startswith('42["welcome"'), welcome
    return ws, {**json.loads(reply[2:]), "offset": json.loads(welcome[2:])[-1]}


def _events(packets: list[str]) -> list[list[Any]]:
    """Socket.IO EVENT packets as argument lists, the recovery offset (last argument) dropped."""
    out = []
    for packet in packets:
        assert packet.startswith("42["), packet
        out.append(json.loads(packet[2:])[:-1])
    return out


async def _state(client: httpx.AsyncClient, base: str) -> dict[str, Any]:
    resp = await client.get(base + "/state")
    assert resp.status_code == 200
    body: dict[str, Any] = resp.json()
    return body


# --------------------------------------------------------------------------- polling POST bodies


@pytest.mark.parametrize("body", ["abc", "9", "4hello\x1e9", "b!!!not-base64", "", "\x1e\x1e"])
@run_async
async def test_undecodable_post_is_400_and_closes(url: str, body: str) -> None:
    async with http_client() as client:
        poll = Polling(client, url, SIO)
        await poll.handshake()
        assert_error(await poll.post(body), 400, 3, "Bad request")
        await poll.assert_closed()


@pytest.mark.parametrize("packet", ["0", "5", "6"])
@run_async
async def test_server_only_packet_types_from_a_polling_client_are_400(url: str, packet: str) -> None:
    async with http_client() as client:
        poll = Polling(client, url, SIO)
        await poll.handshake()
        assert_error(await poll.post(packet), 400, 3, "Bad request")
        await poll.assert_closed()


def _raw_http(port: int) -> stdsocket.socket:
    sock = stdsocket.create_connection(("127.0.0.1", port), timeout=5)
    return sock


def _read_status(sock: stdsocket.socket) -> int:
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise AssertionError(f"connection closed with no response: {data!r}")
        data += chunk
    return int(data.split(b" ", 2)[1])


def test_chunked_post_past_the_limit_is_413_at_the_limit(url: str) -> None:
    """The answer comes while the body is still streaming (the rest is never sent), and the
    session is over."""
    sid = httpx.get(url + SIO, params={"EIO": "4", "transport": "polling"}).text
    sid = parse_open(sid)["sid"]
    port = int(url.rsplit(":", 1)[1])
    sock = _raw_http(port)
    try:
        sock.sendall(
            f"POST {SIO}?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: text/plain;charset=UTF-8\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        )
        chunk = b"4" + b"x" * 399
        for _ in range(3):  # 1200 bytes: past the 1000-byte limit, and the body never ends
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            time.sleep(0.05)
        assert _read_status(sock) == 413
    finally:
        sock.close()
    resp = httpx.get(url + SIO, params={"EIO": "4", "transport": "polling", "sid": sid})
    assert_error(resp, 400, 1, "Session ID unknown")


@run_async
async def test_declared_oversized_post_is_413_and_session_stays(url: str) -> None:
    """With a Content-Length over the limit, Node answers 413 and keeps the session."""
    async with http_client() as client:
        poll = await _joined(client, url)
        resp = await poll.post("4" + "x" * MAX_BUFFER)
        assert resp.status_code == 413
        await poll.send('42["message","still here"]')
        assert _events(await poll.packets(1)) == [["message-back", "still here"]]


# --------------------------------------------------------------------------- heartbeat


@run_async
async def test_pong_without_ping_closes_websocket(url: str) -> None:
    ws, _ = await ws_open(url, SIO)
    try:
        await ws.send("3")
        await ws.assert_closed()
    finally:
        await ws.close()


@run_async
async def test_pong_without_ping_closes_polling(url: str) -> None:
    async with http_client() as client:
        poll = Polling(client, url, SIO)
        await poll.handshake()
        await poll.send("3")
        await poll.assert_closed()


# --------------------------------------------------------------------------- upgrade rules


async def _upgraded(client: httpx.AsyncClient, base: str) -> tuple[Polling, RawWS]:
    poll = await _joined(client, base)
    ws = await ws_connect(ws_url(base, SIO, f"EIO=4&transport=websocket&sid={poll.sid}"))
    await ws.send("2probe")
    assert await ws.recv_text() == "3probe"
    await ws.send("5")
    return poll, ws


@run_async
async def test_polling_after_upgrade_is_400_and_websocket_goes_on(url: str) -> None:
    async with http_client() as client:
        poll, ws = await _upgraded(client, url)
        try:
            await asyncio.sleep(0.1)
            assert_error(await poll.get(), 400, 3, "Bad request")
            assert_error(await poll.post('42["message","x"]'), 400, 3, "Bad request")
            await ws.send('42["message","over ws"]')
            assert _events([await ws.recv_text()]) == [["message-back", "over ws"]]
        finally:
            await ws.close()


@run_async
async def test_second_websocket_after_upgrade_is_accepted_then_closed(url: str) -> None:
    async with http_client() as client:
        poll, ws = await _upgraded(client, url)
        try:
            await asyncio.sleep(0.1)
            second = await ws_connect(ws_url(url, SIO, f"EIO=4&transport=websocket&sid={poll.sid}"))
            try:
                assert await second.assert_closed() == []
            finally:
                await second.close()
            await ws.send('42["message","first"]')
            assert _events([await ws.recv_text()]) == [["message-back", "first"]]
        finally:
            await ws.close()


@run_async
async def test_second_websocket_while_upgrading_is_closed_and_first_completes(url: str) -> None:
    async with http_client() as client:
        poll = await _joined(client, url)
        first = await ws_connect(ws_url(url, SIO, f"EIO=4&transport=websocket&sid={poll.sid}"))
        try:
            await first.send("2probe")
            assert await first.recv_text() == "3probe"
            second = await ws_connect(ws_url(url, SIO, f"EIO=4&transport=websocket&sid={poll.sid}"))
            try:
                assert await second.assert_closed() == []
            finally:
                await second.close()
            await first.send("5")
            await first.send('42["message","upgraded"]')
            assert _events([await first.recv_text()]) == [["message-back", "upgraded"]]
        finally:
            await first.close()


# --------------------------------------------------------------------------- GET size


@run_async
async def test_get_responses_hold_at_most_max_http_buffer_size(url: str) -> None:
    """A backlog larger than the limit is spread over several GETs, in order, none over it."""
    async with http_client() as client:
        poll = await _joined(client, url)
        texts = [f"{i:03d}" + "y" * 380 for i in range(8)]  # ~8 x 400 bytes queued
        for text in texts:
            await poll.send(f'42["message","{text}"]')
        got: list[str] = []
        while len(got) < len(texts):
            resp = await poll.get()
            assert resp.status_code == 200
            assert len(resp.content) <= MAX_BUFFER, len(resp.content)
            got.extend(p for p in resp.text.split(SEP) if p != "2")
        assert _events(got) == [["message-back", text] for text in texts]


@run_async
async def test_a_packet_larger_than_the_limit_goes_alone(url: str) -> None:
    async with http_client() as client:
        poll = await _joined(client, url)
        big = "z" * 980  # the POST fits the 1000-byte limit; the reply (with its offset) does not
        await poll.send(f'42["message","{big}"]')
        await poll.send('42["message","small"]')
        first = await poll.get()
        assert _events([first.text]) == [["message-back", big]]
        assert _events(await poll.packets(1)) == [["message-back", "small"]]


# --------------------------------------------------------------------------- connect races


@run_async
async def test_client_gone_during_slow_middleware_never_reaches_connect_handler(url: str) -> None:
    async with http_client() as client:
        before = await _state(client, url)
        ws, _ = await ws_open(url, SIO)
        await ws.send(connect_packet("/", {"slow": 0.5, "join_early": True}))
        await ws.close()
        await asyncio.sleep(1.0)
        after = await _state(client, url)
        assert after["connect_calls"] == before["connect_calls"]
        assert after["sockets"] == before["sockets"]
        assert after["adapter_sids"] == before["adapter_sids"]


@run_async
async def test_client_gone_during_connect_handler_gets_its_disconnect_handler(url: str) -> None:
    """Once the connect handler has run, the disconnect handler runs too, so what the first
    set up the second can undo."""
    async with http_client() as client:
        before = await _state(client, url)
        ws, _ = await ws_open(url, SIO)
        await ws.send(connect_packet("/", {"slow_connect": 0.5}))
        await asyncio.sleep(0.2)  # the connect handler is running
        await ws.close()
        await asyncio.sleep(1.0)
        after = await _state(client, url)
        (sid,) = [s for s in after["connect_calls"] if s not in before["connect_calls"]]
        assert after["disconnects"][sid] == "transport close"
        assert sid not in after["sockets"] and sid not in after["adapter_sids"]


@run_async
async def test_refused_recovery_leaves_the_session_for_its_owner(url: str) -> None:
    """skip_middlewares=False: a reconnection with a stolen pid whose middleware refuses it
    does not consume the owner's stored session."""
    owner, joined = await _ws_joined(url, {"token": "good"})
    await owner.close()  # gone without a DISCONNECT: recoverable
    await asyncio.sleep(0.2)
    stolen = {"token": "bad", "pid": joined["pid"], "offset": joined["offset"]}
    thief, _ = await ws_open(url, SIO)
    try:
        await thief.send(connect_packet("/", stolen))
        assert await thief.recv_text() == '44{"message":"bad token"}'
    finally:
        await thief.close()
    back, _ = await ws_open(url, SIO)
    try:
        await back.send(connect_packet("/", {"token": "good", "pid": joined["pid"], "offset": joined["offset"]}))
        reply = await back.recv_text()
        assert reply == "40" + compact({"sid": joined["sid"], "pid": joined["pid"]}), reply
    finally:
        await back.close()


def test_unknown_sid_warning_is_rate_limited(tmp_path: Path) -> None:
    """One warning (with the likely cause) for a run of unknown sessions; none for a session
    that just ended here."""

    async def scenario(url: str) -> None:
        async with http_client() as client:
            ended = Polling(client, url, SIO)
            await ended.handshake()
            await ended.send("1")  # the client closes it
            await ended.assert_closed()
            for i in range(5):
                resp = await client.get(url + SIO, params={"EIO": "4", "transport": "polling", "sid": f"{i:020d}"})
                assert_error(resp, 400, 1, "Session ID unknown")

    with logged_uvicorn(APP, tmp_path) as (url, log):
        asyncio.run(scenario(url))
        time.sleep(0.2)
        lines = [line for line in log.text().splitlines() if "unknown session" in line]
        assert len(lines) == 1, lines
        assert "00000000000000000000" in lines[0]
        assert "sticky sessions" in lines[0] and "several-workers" in lines[0]


def test_startup_line_names_path_and_docs(served: tuple[str, ServerLog]) -> None:
    text = served[1].text()
    assert "Socket.IO endpoint at /socket.io/" in text
    assert "AsyncAPI docs at /socket.io/asyncapi" in text


# --------------------------------------------------------------------------- pending sessions


def test_pending_sessions_are_capped(tmp_path: Path) -> None:
    with logged_uvicorn(APP, tmp_path, env={"HARDENING_MAX_PENDING": "3"}) as (url, log):

        async def scenario() -> None:
            async with http_client() as client:
                joined = await _joined(client, url)  # connected: never counted
                pending = [Polling(client, url, SIO) for _ in range(3)]
                for poll in pending:
                    await poll.handshake()
                resp = await client.get(url + SIO, params={"EIO": "4", "transport": "polling"})
                assert resp.status_code == 503
                assert resp.json()["code"] == 3 and "namespace" in resp.json()["message"]
                ws_refused = ws_url(url, SIO, "EIO=4&transport=websocket")
                from websockets.exceptions import InvalidStatus

                with pytest.raises(InvalidStatus) as refused:
                    await ws_connect(ws_refused)
                assert refused.value.response.status_code == 503
                # The connected client is untouched.
                await joined.send('42["message","fine"]')
                assert _events(await joined.packets(1)) == [["message-back", "fine"]]
                # One pending session joins: there is room again.
                await pending[0].send(connect_packet())
                assert (await pending[0].packets(2))[0].startswith("40")
                another = Polling(client, url, SIO)
                await another.handshake()

        asyncio.run(scenario())
        log.assert_clean()
        assert "max_pending_sessions" in log.text()


# --------------------------------------------------------------------------- shutdown


@run_async
async def test_no_handshake_once_shutdown_started() -> None:
    """From the start of shutdown until the next start-up, new sessions get 503."""
    from fastapi_realtime import Realtime

    rt = Realtime()
    transport = httpx.ASGITransport(app=rt)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        params = {"EIO": "4", "transport": "polling"}
        assert (await client.get("/", params=params)).status_code == 200
        await rt.shutdown()
        for _ in range(3):
            assert_error(await client.get("/", params=params), 503, 3, "Server shutting down")
        sent: list[dict[str, Any]] = []
        inbox = [{"type": "websocket.connect"}]

        async def receive() -> dict[str, Any]:
            return inbox.pop(0) if inbox else {"type": "websocket.disconnect", "code": 1000}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "websocket", "path": "/", "query_string": b"EIO=4&transport=websocket", "headers": []}
        await rt(scope, receive, send)
        assert [m["type"] for m in sent] == ["websocket.close"]
        await rt.startup()
        assert (await client.get("/", params=params)).status_code == 200


@pytest.mark.parametrize(("length", "status"), [("9" * 5000, 413), ("\u00b2", 200), ("-1", 200)])
@run_async
async def test_odd_content_length_headers_get_an_answer(length: str, status: int) -> None:
    """Whatever the Content-Length says (servers differ in what they pass on), the POST gets
    the protocol's answer, never an exception."""
    from fastapi_realtime import Realtime

    rt = Realtime()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=rt), base_url="http://test") as client:
        sid = parse_open((await client.get("/", params={"EIO": "4", "transport": "polling"})).text)["sid"]
    sent: list[dict[str, Any]] = []
    inbox = [{"type": "http.request", "body": b"3", "more_body": False}]

    async def receive() -> dict[str, Any]:
        return inbox.pop(0) if inbox else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "method": "POST", "path": "/", "headers": [(b"content-length", length.encode())],
        "query_string": f"EIO=4&transport=polling&sid={sid}".encode(),
    }
    await rt(scope, receive, send)
    assert sent[0]["status"] == status


# --------------------------------------------------------------------------- parked GETs


async def _parked_get(rt: Any, sid: str, sent: list[dict[str, Any]]) -> asyncio.Task[None]:
    """A GET for `sid` that parks (its client never goes away), served in a task of its own."""
    inbox = [{"type": "http.request", "body": b"", "more_body": False}]
    forever = asyncio.Event()

    async def receive() -> dict[str, Any]:
        if inbox:
            return inbox.pop(0)
        await forever.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": f"EIO=4&transport=polling&sid={sid}".encode()}
    task = asyncio.ensure_future(rt(scope, receive, send))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not task.done() and sent == []
    return task


@run_async
async def test_a_parked_get_is_released_but_a_real_cancellation_still_cancels() -> None:
    """The session releases a parked GET by cancelling its task; a cancellation from outside
    (the server stopping the request) is never taken for that release, even in the same turn."""
    from fastapi_realtime import Realtime

    rt = Realtime()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=rt), base_url="http://test") as client:
        sid = parse_open((await client.get("/", params={"EIO": "4", "transport": "polling"})).text)["sid"]
    session = rt.manager.get(sid)
    assert session is not None

    sent: list[dict[str, Any]] = []
    task = await _parked_get(rt, sid, sent)
    session.release_poll()  # released alone: answered (a noop)
    await task
    assert sent[0]["status"] == 200 and sent[1]["body"] == b"6"

    for release in (False, True):
        sent = []
        task = await _parked_get(rt, sid, sent)
        if release:
            session.release_poll()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert sent == []

    # The GET slot is free again, and the session still answers.
    sent = []
    task = await _parked_get(rt, sid, sent)
    session.release_poll()
    await task
    assert sent[0]["status"] == 200
