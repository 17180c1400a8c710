"""The official Node client (socket.io-client 4.8) against the FastAPI test app.

Each test runs one scenario of scenarios.mjs in a node subprocess; the script reports what it
observed as JSON and the assertions live here. Expected values follow the Node reference server.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NODE_DIR, free_port, run_uvicorn, uvicorn_on
from tests.interop.node import NodeRun, check_handshake

APP = "tests.interop.app:app"
SCRIPT = NODE_DIR / "scenarios.mjs"
MODES = ["polling", "websocket", "upgrade"]
# multi-client scenarios: "mixed" gives the three clients one transport mode each
MULTI_MODES = ["polling", "websocket", "mixed"]
FAST_PING = {"INTEROP_PING_INTERVAL": "0.3", "INTEROP_PING_TIMEOUT": "0.3"}
SHORT_CONNECT_TIMEOUT = {"INTEROP_CONNECT_TIMEOUT": "0.5"}

pytestmark = pytest.mark.timeout(20)


def run_node(scenario: str, url: str, mode: str, *extra: str, limit: float = 8.0) -> dict[str, Any]:
    return NodeRun(SCRIPT, scenario, url, mode, *extra, limit=limit).result()


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with run_uvicorn(APP) as base:
        yield base


@pytest.fixture(scope="module")
def fast_ping_url() -> Iterator[str]:
    with run_uvicorn(APP, env=FAST_PING) as base:
        yield base


@pytest.fixture(scope="module")
def short_connect_timeout_url() -> Iterator[str]:
    with run_uvicorn(APP, env=SHORT_CONNECT_TIMEOUT) as base:
        yield base


def initial_transport(mode: str) -> str:
    return "websocket" if mode == "websocket" else "polling"


def final_transport(mode: str) -> str:
    return "polling" if mode == "polling" else "websocket"


@pytest.mark.parametrize("mode", MODES)
def test_connect_echo(url: str, mode: str) -> None:
    r = run_node("basic", url, mode)
    assert len(r["id"]) == 20
    assert r["welcome"]["id"] == r["id"]
    assert r["welcome"]["namespace"] == "/"
    if mode != "upgrade":  # in upgrade mode the connect handler may run on either side of the switch
        assert r["welcome"]["transport"] == initial_transport(mode)
    assert r["echoStr"] == "héllo wörld ✓ \U0001f600"
    assert r["echoObj"] == {"a": 1, "b": [True, None, 2.5], "c": {"d": "e"}}
    assert r["echoPair"] == ["x", 42]
    assert r["echoNothing"] == []  # a handler returning None acks with no arguments
    assert r["whoami"]["id"] == r["id"]
    assert r["whoami"]["namespace"] == "/"
    assert r["whoami"]["rooms"] == [r["id"]]
    assert r["whoami"]["transport"] == final_transport(mode)
    assert r["clientTransport"] == final_transport(mode)


@pytest.mark.parametrize("mode", MODES)
def test_numbered_stream(url: str, mode: str) -> None:
    count = 200
    r = run_node("stream", url, mode, str(count), "5")
    # exactly once, in order, both ways
    assert r["received"] == list(range(count))
    assert r["serverGot"] == list(range(count))
    assert r["disconnects"] == []
    assert r["finalTransport"] == final_transport(mode)
    order = ["polling", "websocket"]
    for seen in (r["serverTransports"], r["clientTransports"]):
        assert seen == sorted(seen, key=order.index), "went back from websocket to polling"
    if mode == "upgrade":
        # The streams really crossed the upgrade: the server emitted some numbers on polling
        # and the rest on websocket, the client sent some before and some after the switch.
        # (Numbers emitted on polling may still reach the client over the new websocket.)
        assert set(r["serverTransports"]) == {"polling", "websocket"}, r["serverTransports"]
        assert {"polling", "websocket"} <= set(r["sentTransports"])
        assert r["welcome"]["transport"] == "polling"
        assert r["upgradedAt"] is not None and r["upgradedAt"] < count
    else:
        assert set(r["serverTransports"]) == {initial_transport(mode)}


@pytest.mark.parametrize("mode", MODES)
def test_binary(url: str, mode: str) -> None:
    r = run_node("binary", url, mode)
    small = bytes([0, 1, 2, 253, 254, 255])
    assert r["echoBuf"] == small
    assert r["echoNested"] == {"a": small, "list": [b"xyz", "text", {"deep": b"\x09"}]}
    assert r["big"] == {"len": 65536, "equal": True}
    assert r["pair"] == [b"\x01", b"\x02\x03"]
    # server -> client binary args, client -> server binary ack (two ack args)
    assert r["ask"] == {"answer": [b"\x05\x06\x07\xff", {"size": 5, "back": b"inner"}]}
    assert r["echoEmpty"] == b""


@pytest.mark.parametrize("mode", MODES)
def test_acks(url: str, mode: str) -> None:
    r = run_node("acks", url, mode)
    assert r["echo"] == "ping"
    assert r["multi"] == {"answer": [2, "TWO", {"three": 3}]}
    assert r["single"] == {"answer": "one"}
    assert r["empty"] == {"answer": None}
    assert r["timeout"] == {"timeout": True}  # AckTimeoutError on the server
    assert 250 <= r["timeoutElapsedMs"] < 2500
    assert r["ignoredCalls"] == 1
    assert r["afterTimeout"] == "still alive"


@pytest.mark.parametrize("mode", MULTI_MODES)
def test_rooms_and_broadcasts(url: str, mode: str) -> None:
    r = run_node("rooms", url, mode)
    a, b, _c = r["ids"]
    assert r["joinA"] == sorted([a, r["r1"]])
    assert r["leaveB"] == [b]
    t7 = ["t7", b"\x07\x07"]
    assert r["A"] == ["t2", "t3", t7, "end"]
    assert r["B"] == ["t1", "t2", "t3", "t4", "t5", "end"]
    assert r["C"] == ["t3", "t5", "t6", t7, "end"]


@pytest.mark.parametrize("mode", MULTI_MODES)
def test_broadcast_with_ack(url: str, mode: str) -> None:
    r = run_node("broadcastAck", url, mode)

    def by_name(res: dict[str, Any]) -> list[Any]:
        assert "timeout" not in res, res
        return sorted(res["responses"], key=lambda x: x["name"])

    assert by_name(r["room"]) == [{"name": "A", "q": "q1"}, {"name": "B", "q": "q1"}]
    assert by_name(r["all"]) == [{"name": n, "q": "q2"} for n in "ABC"]
    assert by_name(r["except"]) == [{"name": "C", "q": "q3"}]
    assert sorted(r["bin"]["responses"]) == [b"A", b"B", b"C"]
    assert r["partial"]["timeout"] is True
    assert sorted(r["partial"]["responses"]) == ["A", "C"]
    assert 400 <= r["partialElapsedMs"] < 3000
    assert r["empty"] == {"responses": []}


@pytest.mark.parametrize("mode", MODES)
def test_namespaces(url: str, mode: str) -> None:
    r = run_node("namespaces", url, mode)
    assert r["customWelcome"]["namespace"] == "/custom"
    assert r["customWho"]["namespace"] == "/custom"
    assert r["dynWelcome"]["namespace"] == "/dyn-42"
    assert r["dynWho"]["namespace"] == "/dyn-42"
    assert r["dynEcho"] == "dyn"
    assert r["bad"] == {"errors": [{"message": "Invalid namespace", "data": None}], "connected": False, "connects": 0}
    m = r["multiplex"]
    assert m["sameEngine"] is True
    assert m["mainId"] != m["subId"]
    assert m["subWelcome"]["namespace"] == "/custom"
    assert m["gotMain"] == ["from /"]  # broadcasts stay inside their namespace
    assert m["gotSub"] == ["from /custom"]
    assert r["afterSubDisconnect"] == {"mainConnected": True, "mainEcho": "alive"}
    assert r["subServerReason"] == "server namespace disconnect"


@pytest.mark.parametrize("mode", MODES)
def test_middleware_rejection(url: str, mode: str) -> None:
    r = run_node("middleware", url, mode)
    err = {"message": "not authorized", "data": {"reason": "bad token"}}
    assert r["bad"] == {"errors": [err], "connected": False, "connects": 0, "active": False}
    assert r["badCustom"] == {"errors": [err], "connected": False}
    assert r["goodWho"]["auth"] == {"token": "good"}


@pytest.mark.parametrize("close", [False, True], ids=["disconnect", "disconnect-close"])
@pytest.mark.parametrize("mode", MODES)
def test_server_disconnect_no_reconnect(url: str, mode: str, close: bool) -> None:
    r = run_node("serverDisconnect", url, mode, "close" if close else "")
    assert r["reasons"] == ["io server disconnect"]
    assert r["connected"] is False
    assert r["active"] is False  # socket.io semantics: no reconnection after a server disconnect
    assert r["connects"] == 1
    assert r["reconnectAttempts"] == 0
    assert r["serverReason"] == "server namespace disconnect"


@pytest.mark.parametrize("mode", MODES)
def test_client_disconnect_reason(url: str, mode: str) -> None:
    r = run_node("clientDisconnect", url, mode)
    assert r["reasons"] == ["io client disconnect"]
    assert r["serverReason"] == "client namespace disconnect"


@pytest.mark.parametrize("mode", MODES)
def test_transport_close_reconnects(url: str, mode: str) -> None:
    r = run_node("transportClose", url, mode)
    assert r["serverReason"] == "transport close"
    assert len(r["reasons"]) == 1
    assert r["id2"] != r["id1"]
    assert r["connects"] == 2
    assert r["echo"] == "back"


@pytest.mark.parametrize("close", [False, True], ids=["disconnect", "disconnect-close"])
@pytest.mark.parametrize("mode", MULTI_MODES)
def test_disconnect_sockets(url: str, mode: str, close: bool) -> None:
    r = run_node("kick", url, mode, "close" if close else "")
    assert r["connected"] == [True, False, False]
    assert r["reasons"] == [[], ["io server disconnect"], ["io server disconnect"]]
    assert r["connects"] == [1, 1, 1]
    assert r["echoA"] == "A ok"
    assert r["serverReasons"] == ["server namespace disconnect"] * 2


@pytest.mark.parametrize("mode", MULTI_MODES)
def test_fetch_sockets_and_sockets_join(url: str, mode: str) -> None:
    r = run_node("fetch", url, mode)
    a, b, c = r["ids"]
    fs, fs2 = r["fs"], r["fs2"]
    assert r["fetched"] == sorted(
        [{"id": a, "rooms": sorted([a, fs])}, {"id": b, "rooms": sorted([b, fs])}], key=lambda d: d["id"]
    )
    assert {a, b, c} <= {s["id"] for s in r["fetchedAll"]}
    assert r["afterJoin"] == sorted(
        [{"id": a, "rooms": sorted([a, fs, fs2])}, {"id": b, "rooms": sorted([b, fs, fs2])}], key=lambda d: d["id"]
    )
    assert r["roomsA"] == sorted([a, fs, fs2])
    assert r["got"] == [["hi"], ["hi"], []]
    assert r["afterLeave"] == [{"id": b, "rooms": sorted([b, fs, fs2])}]


@pytest.mark.parametrize("mode", MULTI_MODES)
def test_volatile_and_local_broadcasts(url: str, mode: str) -> None:
    r = run_node("volatileLocal", url, mode)
    vol_all = ["vol-all", b"\x01\x02"]
    # volatile packets reach clients whose transport can take them (here: idle, writable ones)
    assert r["A"] == [vol_all, "local-all", "rt-local-all", "vol-local-except", "end"]
    room_members = ["vol-room", vol_all, "local-room", "local-all", "rt-local-room", "rt-local-all", "end"]
    assert r["B"] == room_members
    assert r["C"] == room_members
    assert r["disconnects"] == [[], [], []]
    if r["modes"][0] == "polling":
        # The plain emit answered the waiting GET, so the polling transport was not writable when
        # the volatile packet came right after it: dropped, not queued (Node's rule).
        assert r["vt"] == ["plain-1", "plain-2"]
    else:
        # On websocket the plain frame is usually written at once, so the volatile one may go out.
        assert r["vt"] in (["plain-1", "plain-2"], ["plain-1", "volatile", "plain-2"])


@pytest.mark.parametrize("mode", MODES)
def test_catch_all(url: str, mode: str) -> None:
    r = run_node("catchAll", url, mode)
    assert r["one"] == [{"caught": "no-such-event", "args": [1, "two", {"three": [3]}]}]
    assert r["none"] == [{"caught": "bare", "args": []}]
    assert r["bin"] == {"caught": "binary-thing", "args": [b"\xde\xad"]}
    assert r["custom"] == {"caught": "custom-thing", "args": ["x"]}
    assert r["echo"] == "handled"
    # in arrival order; "echo" and "caught-get" have handlers of their own and are not caught
    assert r["caught"] == [
        ["no-such-event", 1, "two", {"three": [3]}],
        ["bare"],
        ["binary-thing", b"\xde\xad"],
        ["fire-and-forget", "no ack"],
    ]
    assert r["caughtCustom"] == [["custom-thing", "x"]]


@pytest.mark.parametrize("mode", MODES)
def test_callable_dynamic_namespaces(url: str, mode: str) -> None:
    r = run_node("callableNamespaces", url, mode)
    assert r["fnWelcome"]["namespace"] == r["fnName"]
    assert r["fnWho"]["namespace"] == r["fnName"]
    assert r["fnEcho"] == "fn"
    # the async callable saw the auth: refused without "vip", accepted with it
    assert r["notVip"] == {"errors": [{"message": "Invalid namespace", "data": None}], "connected": False}
    assert r["vipWelcome"]["namespace"] == r["vipName"]
    assert r["vipWho"]["namespace"] == r["vipName"]
    assert r["vipWho"]["auth"] == {"vip": True}
    assert r["gotVip"] == ["to vip"]
    assert r["gotFn"] == []  # a broadcast stays inside its dynamic namespace


@pytest.mark.parametrize("mode", MODES)
def test_socket_data_and_handshake(url: str, mode: str) -> None:
    r = run_node("dataHandshake", url, mode)
    sid, other = r["ids"]
    base_data = {"from_middleware": {"namespace": "/", "nick": "ada"}, "from_connect": True}
    assert r["initial"] == base_data
    assert r["afterSet"] == [{**base_data, "score": {"n": 1}}]
    assert r["later"] == {**base_data, "score": {"n": 2}}
    other_data = {"from_middleware": {"namespace": "/", "nick": "bob"}, "from_connect": True}
    assert r["fetched"] == sorted(
        [
            {"id": sid, "rooms": sorted([sid, r["room"]]), "data": {**base_data, "score": {"n": 2}}, "auth": {"nick": "ada"}},
            {"id": other, "rooms": sorted([other, r["room"]]), "data": other_data, "auth": {"nick": "bob"}},
        ],
        key=lambda d: d["id"],
    )
    hs = r["handshake"]
    check_handshake(hs, url, initial_transport(mode), r["before"], r["after"])
    assert hs["headers"]["x-interop"] == "node"  # extraHeaders
    assert hs["query"]["foo"] == "bar"
    assert "foo=bar" in hs["url"].split("?", 1)[1].split("&")
    assert hs["auth"] == {"nick": "ada"}
    assert "x-interop" not in r["otherHandshake"]["headers"]
    assert "foo" not in r["otherHandshake"]["query"]
    assert r["otherHandshake"]["auth"] == {"nick": "bob"}


@pytest.mark.parametrize("mode", MODES)
def test_connect_timeout(short_connect_timeout_url: str, mode: str) -> None:
    """An Engine.IO connection that joins no namespace is closed after connect_timeout (0.5 s)."""
    r = run_node("connectTimeout", short_connect_timeout_url, mode)
    assert r["opened"] == "ok"
    assert r["closed"]["reason"] == "transport close"
    assert r["closed"]["afterMs"] >= 450  # not before the timeout
    if mode != "upgrade":
        assert r["openedTransport"] == mode
    # a client that joined in time is not affected
    assert r["joinedConnected"] is True
    assert r["joinedDisconnects"] == []
    assert r["joinedEcho"] == "still here"


@pytest.mark.parametrize("mode", MODES)
def test_attachment_limit(url: str, mode: str) -> None:
    r = run_node("attachments", url, mode)
    assert r["ten"] == [bytes([i]) for i in range(10)]  # max_attachments (10) itself is fine
    assert r["badReasons"] == ["transport close"]
    assert r["badConnected"] is False
    assert r["serverReason"] == "parse error"
    assert r["other"] == {"connected": True, "disconnects": [], "echo": "fine"}


@pytest.mark.parametrize("mode", MODES)
def test_forced_server_close_and_parse_error(url: str, mode: str) -> None:
    r = run_node("badPackets", url, mode)
    # a second CONNECT for a joined namespace, or a packet for a namespace not joined: invalid
    # state, the whole connection closes (every namespace on it)
    assert r["serverReasons"] == {
        "twice": "forced server close",
        "twiceSub": "forced server close",
        "stranger": "forced server close",
        "garbled": "parse error",
    }
    assert r["clientReasons"] == {k: ["transport close"] for k in ("twice", "twiceSub", "stranger", "garbled")}
    assert r["other"] == {"connected": True, "disconnects": [], "echo": "fine"}


@pytest.mark.parametrize("mode", MODES)
def test_ping_timeout_then_reconnect(fast_ping_url: str, mode: str) -> None:
    r = run_node("pingTimeout", fast_ping_url, mode, "1500")
    assert r["serverReason"] == "ping timeout"
    assert r["reasons"] and r["reasons"][0] in {"ping timeout", "transport close", "transport error"}
    assert r["id2"] != r["id1"]
    assert r["echo"] == "back"


def read_reasons(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    return {d["id"]: d["reason"] for d in map(json.loads, path.read_text().splitlines())}


@pytest.mark.timeout(40)
@pytest.mark.parametrize("mode", ["polling", "websocket"])
def test_server_restart_client_reconnects(tmp_path: Path, mode: str) -> None:
    """The server goes away (its transports close under the client): the client reconnects by itself."""
    port = free_port()
    reasons_file = tmp_path / "reasons.jsonl"
    # short pings: uvicorn's graceful shutdown waits for pending long-polling GETs
    env = {"INTEROP_PING_INTERVAL": "1", "INTEROP_PING_TIMEOUT": "1", "INTEROP_REASONS_FILE": str(reasons_file)}
    node: NodeRun | None = None
    try:
        with uvicorn_on(APP, port, env) as url:
            node = NodeRun(SCRIPT, "restart", url, mode, limit=25)
            hello = node.next_json(10)
            assert hello["event"] == "connected"
        # the first server is gone; its disconnect handler ran during the shutdown
        assert read_reasons(reasons_file).get(hello["id"]) in {"server shutting down", "transport close"}
        with uvicorn_on(APP, port, env):
            r = node.result()
    finally:
        if node is not None:
            node.kill()
    assert r["id1"] == hello["id"]
    assert r["id2"] != r["id1"]
    # Node's server closes a polling session with a "1" packet ("transport close" on the client);
    # a GET that fails instead surfaces as "transport error"
    assert r["reasons"][0] in ({"transport close"} if mode == "websocket" else {"transport close", "transport error"})
    assert r["connects"] >= 2
    assert r["echo"] == "back"
