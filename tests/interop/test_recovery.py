"""Connection state recovery (protocol.md §2.4) against tests/interop/recovery_app.py.

The official Node client (socket.io-client 4.8, recovery.mjs) is dropped and comes back while
the server keeps emitting; raw WebSocket / long-polling clients check the bytes: the CONNECT
reply, which events carry an offset, the replay order, and what a pid can and cannot restore.
Expected values follow the Node reference server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import NODE_DIR, free_port, run_uvicorn, uvicorn_on
from tests.interop.node import NodeRun
from tests.protocol import SIO, Polling, RawWS, compact, http_client, run_async, ws_open

APP = "tests.interop.recovery_app:app"
SCRIPT = NODE_DIR / "recovery.mjs"
SID_LEN = 20

pytestmark = pytest.mark.timeout(20)


# --------------------------------------------------------------------------- servers


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with run_uvicorn(APP) as base:
        yield base


@pytest.fixture(scope="module")
def noskip_url() -> Iterator[str]:
    """Recovered connections go through the connect middlewares again."""
    with run_uvicorn(APP, env={"RECOVERY_SKIP_MIDDLEWARES": "0"}) as base:
        yield base


@pytest.fixture(scope="module")
def short_url() -> Iterator[str]:
    """Sessions are kept for half a second only."""
    with run_uvicorn(APP, env={"RECOVERY_MAX_DISCONNECTION": "0.5"}) as base:
        yield base


@pytest.fixture(scope="module")
def fast_ping_url() -> Iterator[str]:
    with run_uvicorn(APP, env={"RECOVERY_PING_INTERVAL": "0.3", "RECOVERY_PING_TIMEOUT": "0.3"}) as base:
        yield base


def run_node(scenario: str, url: str, mode: str, *extra: str, limit: float = 8.0) -> dict[str, Any]:
    return NodeRun(SCRIPT, scenario, url, mode, *extra, limit=limit).result()


def assert_exact(streams: dict[str, Any], where: str) -> None:
    """Every stream arrived exactly once and in order (recovery.mjs `analyse`)."""
    for name, s in streams.items():
        assert s["exact"], (
            f"{where} stream {name!r}: {s['count']} events for {s['ticks']} ticks; duplicates {s['dups']}, "
            f"missing {s['missing']}, first out of place at index {s['firstBad']}: {s['around']}"
        )


# --------------------------------------------------------------------------- node client


@pytest.mark.timeout(30)
@pytest.mark.parametrize("mode", ["polling", "websocket", "upgrade"])
def test_many_drops_lose_and_duplicate_nothing(url: str, mode: str) -> None:
    """120 transport drops at varied moments while a ticker emits to the client's own room, to
    a room it joined and to everyone: every reconnection recovers (same id, rooms and data) and
    every event arrives exactly once, in order. A client that is never dropped is the control."""
    drops = 120
    # RECOVERY_CHURN_SEED=<seed of a failed run> replays its drop moments
    seed = os.environ.get("RECOVERY_CHURN_SEED")
    r = run_node("churn", url, mode, str(drops), *([seed] if seed else []), limit=20)
    where = f"seed {r['seed']}"
    client = r["client"]
    connects = client["connects"]
    assert len(connects) == drops + 1
    assert connects[0]["recovered"] is False
    failed = [i for i, c in enumerate(connects[1:], 1) if not c["recovered"]]
    assert not failed, f"{where}: reconnections {failed} not recovered; disconnects {client['disconnects'][:10]}"
    assert {c["id"] for c in connects} == {r["id"]}
    assert len({c["pid"] for c in connects}) == 1
    assert r["ticks"] > 100, r["ticks"]  # the ticker really ran through the drops
    assert_exact(r["streams"], where)
    assert_exact(r["control"]["streams"], f"{where} control")
    assert client["badOffsets"] == 0 and client["duplicateOffsets"] == 0
    assert r["control"]["badOffsets"] == 0 and r["control"]["duplicateOffsets"] == 0
    assert [c["recovered"] for c in r["control"]["connects"]] == [False]  # never dropped
    # One `recovered` event per connection, each once and in order; all but the first recovered,
    # all showing the first connection's rooms and data.
    events = client["recoveredEvents"]
    conns = [e["conn"] for e in events]
    assert len(events) == drops + 1 and conns == sorted(set(conns)), conns
    first = events[0]
    assert first["recovered"] is False
    assert first["data"]["name"].startswith("churn-")
    assert len(first["rooms"]) == 3  # own id, the auth room, the random room joined on first connect
    for e in events[1:]:
        assert (e["recovered"], e["id"], e["rooms"], e["data"]) == (True, first["id"], first["rooms"], first["data"])
    assert r["whoami"]["rooms"] == first["rooms"] and r["whoami"]["data"] == first["data"]
    # recovered connections skip the middleware (skip_middlewares defaults to True)
    assert r["server"]["middleware"] == [False]
    reasons = {d["reason"] for d in r["server"]["disconnects"]}
    assert reasons <= {"transport close", "transport error"}, reasons
    if mode == "upgrade":
        assert client["overPolling"] > 0  # events did arrive over polling, before the upgrades


@pytest.mark.parametrize("mode", ["polling", "websocket"])
def test_expired_session_is_a_new_connection(short_url: str, mode: str) -> None:
    """max_disconnection_duration 0.5 s: back within it -> recovered; after 1.2 s -> a new session."""
    r = run_node("expiry", short_url, mode, "1200")
    c1, c2, c3 = r["client"]["connects"]
    assert r["awayMeasuredMs"] >= 1000
    assert (c2["recovered"], c2["id"], c2["pid"]) == (True, c1["id"], c1["pid"])
    assert c3["recovered"] is False
    assert c3["id"] != c1["id"] and len(c3["id"]) == SID_LEN
    assert c3["pid"] != c1["pid"]
    e1, e2, e3 = r["client"]["recoveredEvents"]
    assert (e2["recovered"], e2["rooms"], e2["data"]) == (True, e1["rooms"], e1["data"])
    # a clean session: fresh data and rooms from this connection's handler only
    assert e3["recovered"] is False and e3["id"] == c3["id"]
    assert e3["data"]["nonce"] != e1["data"]["nonce"]
    room = next(x for x in e1["rooms"] if x.startswith("room-"))
    assert e3["rooms"] == sorted([c3["id"], room, f"extra-{e3['data']['nonce']}"])
    assert r["whoami"] == {k: v for k, v in e3.items() if k != "conn"}
    # The own-room stream went to the expired id: it stops; the room stream resumes with a gap
    # the client knows about (recovered false), without duplicates.
    for name in ("room", "all"):
        got = r["streams"][name]
        assert got == sorted(set(got)), f"{name}: duplicates or disorder"
        assert len(got) < r["ticks"]  # events emitted while the client was away are gone
    own = r["streams"]["own"]
    assert own == list(range(len(own)))


@pytest.mark.parametrize("mode", ["polling", "websocket"])
@pytest.mark.parametrize("skip", [True, False], ids=["skip-middlewares", "run-middlewares"])
def test_middlewares_on_recovery(url: str, noskip_url: str, mode: str, skip: bool) -> None:
    """skip_middlewares=True: a recovered connection bypasses the middleware (even one that now
    rejects); False: it runs with socket.recovered already True, and can refuse the recovery."""
    r = run_node("middleware", url if skip else noskip_url, mode)
    first, second = r["first"], r["second"]
    assert first["client"]["recovered"] is True
    if skip:
        assert first["server"]["middleware"] == [False]
        # armed to reject, but skipped: recovered again
        assert (second["connected"], second["recovered"]) == (True, True)
        assert second["id"] == first["client"]["id"]
        assert second["server"]["middleware"] == [False]
        assert r["client"]["connectErrors"] == []
    else:
        assert first["server"]["middleware"] == [False, True]
        err = r["client"]["connectErrors"]
        assert err == [{"message": "rejected by middleware", "data": {"name": first["server"]["connects"][0]["data"]["name"]}}]
        assert second["connected"] is False
        assert second["active"] is False  # a CONNECT_ERROR ends reconnection, as for any refusal
        assert second["server"]["middleware"] == [False, True, True]
        assert len(second["server"]["connects"]) == 2  # the connect handler did not run for the refused one


@pytest.mark.parametrize("mode", ["polling", "websocket"])
def test_ping_timeout_is_recoverable(fast_ping_url: str, mode: str) -> None:
    """A frozen client is dropped for "ping timeout"; after thawing it recovers, nothing lost."""
    r = run_node("freeze", fast_ping_url, mode, "1200")
    assert [d["reason"] for d in r["server"]["disconnects"]] == ["ping timeout"]
    c1, c2 = r["client"]["connects"]
    assert (c2["recovered"], c2["id"], c2["pid"]) == (True, c1["id"], c1["pid"])
    assert_exact(r["streams"], "after the freeze")
    assert r["client"]["badOffsets"] == 0 and r["client"]["duplicateOffsets"] == 0


@pytest.mark.timeout(30)
@pytest.mark.parametrize("mode", ["polling", "websocket"])
def test_server_restart_gives_a_clean_session(mode: str) -> None:
    """The memory store dies with the process: the client comes back with its pid and offset
    and gets a new session (recovered false, new id and pid), and works."""
    port = free_port()
    # short pings: uvicorn's graceful shutdown waits for pending long-polling GETs
    env = {"RECOVERY_PING_INTERVAL": "1", "RECOVERY_PING_TIMEOUT": "1"}
    node: NodeRun | None = None
    try:
        with uvicorn_on(APP, port, env) as base:
            node = NodeRun(SCRIPT, "restart", base, mode, limit=20)
            hello = node.next_json(10)
            assert hello["event"] == "connected"
        with uvicorn_on(APP, port, env):
            r = node.result()
    finally:
        if node is not None:
            node.kill()
    before, after = r["before"], r["after"]
    assert before["id"] == hello["id"] and isinstance(before["pid"], str)
    assert after["recovered"] is False
    assert after["id"] != before["id"] and len(after["id"]) == SID_LEN
    assert isinstance(after["pid"], str) and after["pid"] != before["pid"]
    greeting = r["client"]["recoveredEvents"][-1]
    assert greeting["recovered"] is False and greeting["id"] == after["id"]
    assert greeting["data"]["nonce"] != before["greeting"]["data"]["nonce"]
    assert r["whoami"]["id"] == after["id"]


# --------------------------------------------------------------------------- raw wire


def parse_connect(frame: str | bytes) -> dict[str, str]:
    """A CONNECT reply to "/" with recovery on: exactly {"sid", "pid"}, both strings."""
    assert isinstance(frame, str) and frame.startswith("40"), frame
    body = json.loads(frame[2:])
    assert isinstance(body, dict) and set(body) == {"sid", "pid"}, body
    assert isinstance(body["sid"], str) and len(body["sid"]) == SID_LEN, body
    assert isinstance(body["pid"], str) and body["pid"], body
    return body


def compact_connect(reply: dict[str, str]) -> str:
    return "40" + compact(reply)


def parse_event(frame: str | bytes) -> tuple[str, int | None, list[Any]]:
    """('2' | '5', ack id, args) of an EVENT / BINARY_EVENT frame to "/"."""
    assert isinstance(frame, str) and frame[:2] in ("42", "45"), frame
    rest = frame[2:]
    if frame[1] == "5":
        rest = rest.split("-", 1)[1]  # attachment count
    digits = ""
    while rest[:1].isdigit():
        digits, rest = digits + rest[0], rest[1:]
    data = json.loads(rest)
    assert isinstance(data, list)
    return frame[1], int(digits) if digits else None, data


async def ws_connect_sio(base: str, auth: dict[str, Any]) -> tuple[RawWS, dict[str, str], list[str | bytes]]:
    """A raw WebSocket joined to "/" with `auth`: the socket, the CONNECT reply and the frames
    that came before the reply (a recovery's replay)."""
    ws, _ = await ws_open(base, SIO)
    before: list[str | bytes] = []
    try:
        await ws.send("40" + compact(auth))
        while True:
            frame = await ws.recv()
            if isinstance(frame, str) and frame.startswith("40"):
                break
            before.append(frame)
        reply = parse_connect(frame)
    except BaseException:
        await ws.close()
        raise
    return ws, reply, before


async def greeting(ws: RawWS) -> tuple[dict[str, Any], str]:
    """The app's `recovered` event (sent by every connect handler) and its offset."""
    kind, ack, args = parse_event(await ws.recv())
    assert (kind, ack, args[0]) == ("2", None, "recovered"), args
    assert len(args) == 3 and isinstance(args[2], str), args
    return args[1], args[2]


async def state(client: httpx.AsyncClient, base: str, name: str) -> dict[str, Any]:
    resp = await client.get(f"{base}/test/state/{name}")
    assert resp.status_code == 200
    return dict(resp.json())


async def disconnected(client: httpx.AsyncClient, base: str, name: str, count: int = 1) -> list[str]:
    """Wait until the server has seen `count` disconnects of `name`; their reasons."""
    deadline = time.monotonic() + 3
    while True:
        reasons = [d["reason"] for d in (await state(client, base, name))["disconnects"]]
        if len(reasons) >= count:
            return reasons
        assert time.monotonic() < deadline, f"{name}: the server saw only {reasons}"
        await asyncio.sleep(0.02)


async def echo(ws: RawWS, marker: str) -> None:
    """An acked round trip: the client is still served."""
    await ws.send(f'4242["echo",{compact(marker)}]')
    while True:
        frame = await ws.recv()
        if isinstance(frame, str) and frame.startswith("43"):
            assert frame == f"4342[{compact(marker)}]"
            return


@contextlib.asynccontextmanager
async def closing(*sockets: RawWS) -> AsyncIterator[None]:
    try:
        yield
    finally:
        for ws in sockets:
            await ws.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@run_async
async def test_connect_reply_and_offsets_on_the_wire(url: str) -> None:
    """CONNECT reply is {"sid","pid"}; plain emits (to the socket or a room) get a string
    offset as last argument, binary ones too (after the placeholder); acked emits, volatile
    emits and acks get none."""
    name = unique("kinds")
    ws, reply, before = await ws_connect_sio(url, {"name": name})
    async with closing(ws):
        assert before == []
        info, _ = await greeting(ws)
        assert (info["id"], info["recovered"]) == (reply["sid"], False)
        await ws.send('4217["emit-kinds","t"]')
        seen: dict[str, list[Any]] = {}
        ack_ids: dict[str, int | None] = {}
        our_ack: str | None = None
        attachments: list[bytes] = []
        while len(seen) < 6 or our_ack is None or not attachments:
            frame = await ws.recv()
            if isinstance(frame, bytes):
                attachments.append(frame)
                continue
            if frame.startswith("43"):
                our_ack = frame
                continue
            _, ack, args = parse_event(frame)
            seen[args[0]] = args
            ack_ids[args[0]] = ack
            if ack is not None:
                await ws.send(f"43{ack}[]")  # answer, so the server side does not wait
        assert our_ack == '4317["ok"]'
        for event in ("plain", "bplain"):
            assert ack_ids[event] is None
            assert seen[event][:2] == [event, "t"] and len(seen[event]) == 3 and isinstance(seen[event][2], str)
        assert seen["bin"][:3] == ["bin", "t", {"_placeholder": True, "num": 0}]
        assert len(seen["bin"]) == 4 and isinstance(seen["bin"][3], str)
        assert attachments == [b"\x01\x02"]
        offsets = [seen["plain"][2], seen["bplain"][2], seen["bin"][3]]
        assert len(set(offsets)) == 3
        for event in ("asked", "bcast-asked"):
            assert ack_ids[event] is not None
            assert seen[event] == [event, "t"]  # no offset
        assert ack_ids["vol"] is None and seen["vol"] == ["vol", "t"]


async def _emit(client: httpx.AsyncClient, base: str, **spec: Any) -> None:
    resp = await client.post(f"{base}/test/emit", json=spec)
    assert resp.status_code == 200, resp.text


async def _miss_events(client: httpx.AsyncClient, base: str, sid: str, room: str) -> None:
    """What the server emits while the client is away: stored events to its room, to its own id
    and to everyone, plus events that must not come back (other room, volatile, with ack)."""
    for i in range(3):
        await _emit(client, base, event="missed", args=[i], to=[room])
    await _emit(client, base, event="other-room", args=[0], to=[unique("nobody")])
    await _emit(client, base, event="volatile", args=[0], to=[room], volatile=True)
    await _emit(client, base, event="with-ack", args=[0], to=[room], ack_timeout=0.3)
    await _emit(client, base, event="mine", args=[0], to=[sid])
    await _emit(client, base, event="everyone", args=[0])


@pytest.mark.parametrize("transport", ["websocket", "polling"])
@run_async
async def test_missed_events_come_before_the_connect_reply(url: str, transport: str) -> None:
    """The replay: only stored events that reach the session's rooms, with their original
    offsets (the ones a client that stayed saw), in order, all BEFORE `40{"sid","pid"}`."""
    name, room = unique("missed"), unique("room")
    async with http_client() as client:
        stay, _, _ = await ws_connect_sio(url, {"name": unique("stayer"), "room": room})
        async with closing(stay):
            await greeting(stay)
            if transport == "websocket":
                away, first, _ = await ws_connect_sio(url, {"name": name, "room": room})
                info, offset = await greeting(away)
                await away.close()
            else:
                poll = Polling(client, url, SIO)
                await poll.handshake()
                await poll.send("40" + compact({"name": name, "room": room}))
                reply, event = await poll.packets(2)
                first = parse_connect(reply)
                _, _, args = parse_event(event)
                info, offset = args[1], args[2]
                await poll.send("1")  # the client closes its transport
            assert room in info["rooms"]
            assert await disconnected(client, url, name) == ["transport close"]

            await _miss_events(client, url, first["sid"], room)
            # the stayer saw what was broadcast to the room and to everyone, offsets included
            stayer_saw: dict[tuple[str, int], str] = {}
            while ("everyone", 0) not in stayer_saw:
                frame = await stay.recv()
                _, ack, args = parse_event(frame)
                if ack is not None:
                    continue
                if args[0] in ("missed", "everyone"):
                    stayer_saw[(args[0], args[1])] = args[2]

            auth = {"name": name, "room": room, "pid": first["pid"], "offset": offset}
            if transport == "websocket":
                back, reply2, before = await ws_connect_sio(url, auth)
                async with closing(back):
                    info2, _ = await greeting(back)
                    await echo(back, "after the replay")
                lines = [f for f in before if isinstance(f, str)] + [compact_connect(reply2)]
            else:
                poll = Polling(client, url, SIO)
                await poll.handshake()
                await poll.send("40" + compact(auth))
                got: list[str] = []
                # everything up to and including the connect handler's `recovered` event
                while not any(p.startswith('42["recovered"') for p in got):
                    got += await poll.packets(1)
                greet = next(i for i, p in enumerate(got) if p.startswith('42["recovered"'))
                info2 = parse_event(got[greet])[2][1]
                lines = got[:greet]
                await poll.send("1")

    connect_at = next(i for i, p in enumerate(lines) if p.startswith("40"))
    assert parse_connect(lines[connect_at]) == first  # same sid and pid
    assert connect_at == len(lines) - 1, f"frames after the CONNECT reply in the replay: {lines}"
    replay = [parse_event(p) for p in lines[:connect_at]]
    assert [(ack, args[:2]) for _, ack, args in replay] == [
        (None, ["missed", 0]), (None, ["missed", 1]), (None, ["missed", 2]), (None, ["mine", 0]), (None, ["everyone", 0]),
    ]
    for _, _, args in replay:
        assert len(args) == 3 and isinstance(args[2], str)
        if args[0] != "mine":
            assert args[2] == stayer_saw[(args[0], args[1])], "a replayed event must keep its original offset"
    assert (info2["id"], info2["recovered"], info2["rooms"], info2["data"]) == (
        first["sid"], True, info["rooms"], info["data"]
    )


@run_async
async def test_pid_restores_at_most_once(url: str) -> None:
    """Once a pid has been used to restore a session, presenting it again (while the restored
    socket lives) gives an ordinary new connection; the restored socket is unaffected. Its next
    recoverable disconnect keeps the session again under the same pid, as in Node."""
    name = unique("replay")
    async with http_client() as client:
        a, first, _ = await ws_connect_sio(url, {"name": name})
        _, offset = await greeting(a)
        await a.close()
        await disconnected(client, url, name, 1)

        b, reply_b, _ = await ws_connect_sio(url, {"name": name, "pid": first["pid"], "offset": offset})
        async with closing(b):
            assert reply_b == first
            info_b, offset_b = await greeting(b)
            assert info_b["recovered"] is True

            c, reply_c, _ = await ws_connect_sio(url, {"name": name, "pid": first["pid"], "offset": offset})
            async with closing(c):
                info_c, _ = await greeting(c)
                assert info_c["recovered"] is False
                assert reply_c["sid"] != first["sid"] and reply_c["pid"] != first["pid"]
                await echo(b, "b still served")
                await echo(c, "c served")
                who = await state(client, url, name)
                assert [x["recovered"] for x in who["connects"]] == [False, True, False]
        await disconnected(client, url, name, 3)

        d, reply_d, _ = await ws_connect_sio(url, {"name": name, "pid": first["pid"], "offset": offset_b})
        async with closing(d):
            assert reply_d == first
            info_d, _ = await greeting(d)
            assert (info_d["recovered"], info_d["data"]) == (True, info_b["data"])


BAD_AUTH: dict[str, dict[str, Any]] = {
    "pid-number": {"pid": 123, "offset": "@offset"},
    "pid-huge": {"pid": "p" * 200_000, "offset": "@offset"},
    "pid-object": {"pid": {"pid": "@pid"}, "offset": "@offset"},
    "pid-list": {"pid": ["@pid"], "offset": "@offset"},
    "pid-null": {"pid": None, "offset": "@offset"},
    "pid-bool": {"pid": True, "offset": "@offset"},
    "pid-empty": {"pid": "", "offset": "@offset"},
    "pid-unknown": {"pid": "A" * 20, "offset": "@offset"},
    "offset-missing": {"pid": "@pid"},
    "offset-number": {"pid": "@pid", "offset": 5},
    "offset-object": {"pid": "@pid", "offset": {"o": "@offset"}},
    "offset-null": {"pid": "@pid", "offset": None},
    "both-huge": {"pid": "q" * 100_000, "offset": "o" * 100_000},
}


@run_async
async def test_malformed_pid_or_offset_is_an_ordinary_connection(url: str) -> None:
    """A pid or offset of the wrong type or size: a fresh session, no crash. Other clients stay
    served, and a persisted session is not consumed by them (recovery needs two strings)."""
    name = unique("victim")
    async with http_client() as client:
        other, _, _ = await ws_connect_sio(url, {"name": unique("bystander")})
        async with closing(other):
            await greeting(other)
            a, first, _ = await ws_connect_sio(url, {"name": name})
            _, offset = await greeting(a)
            await a.close()
            await disconnected(client, url, name)

            def fill(value: Any) -> Any:
                if value == "@pid":
                    return first["pid"]
                if value == "@offset":
                    return offset
                if isinstance(value, dict):
                    return {k: fill(v) for k, v in value.items()}
                if isinstance(value, list):
                    return [fill(v) for v in value]
                return value

            for label, auth in BAD_AUTH.items():
                ws, reply, _ = await ws_connect_sio(url, {"name": f"{name}-{label}", **fill(auth)})
                async with closing(ws):
                    info, _ = await greeting(ws)
                    assert info["recovered"] is False, label
                    assert reply["sid"] != first["sid"] and reply["pid"] != first["pid"], label
                    await echo(ws, label)
                await echo(other, f"bystander after {label}")

            # the genuine pid and offset still restore the session
            back, reply, _ = await ws_connect_sio(url, {"name": name, "pid": first["pid"], "offset": offset})
            async with closing(back):
                assert reply == first
                info, _ = await greeting(back)
                assert info["recovered"] is True


@pytest.mark.parametrize(
    ("how", "reason", "recoverable"),
    [
        ("close-transport", "transport close", True),
        ("client-disconnect", "client namespace disconnect", False),
        ("server-disconnect", "server namespace disconnect", False),
        ("parse-error", "parse error", False),
    ],
)
@run_async
async def test_only_recoverable_disconnects_keep_the_session(url: str, how: str, reason: str, recoverable: bool) -> None:
    name = unique(how)
    async with http_client() as client:
        a, first, _ = await ws_connect_sio(url, {"name": name})
        async with closing(a):
            _, offset = await greeting(a)
            if how == "close-transport":
                await a.close()
            elif how == "client-disconnect":
                await a.send("41")
            elif how == "server-disconnect":
                await a.send('42["server-disconnect-me"]')
            elif how == "parse-error":
                await a.send("42{not json")
            assert await disconnected(client, url, name) == [reason]
        b, reply, _ = await ws_connect_sio(url, {"name": name, "pid": first["pid"], "offset": offset})
        async with closing(b):
            info, _ = await greeting(b)
            assert info["recovered"] is recoverable
            assert (reply == first) is recoverable
