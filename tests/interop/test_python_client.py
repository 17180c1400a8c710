"""The official Python client (python-socketio AsyncClient) against the FastAPI test app.

Sync tests that drive their own event loop with asyncio.run (no pytest-asyncio); each body is
bounded by asyncio.wait_for as well as by pytest-timeout.

Note: python-engineio performs the websocket upgrade inside connect(), before the Socket.IO
CONNECT is sent, so with this client no application packet can travel over polling when the
upgrade is allowed (the Node client test covers a stream crossing the upgrade).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import engineio
import pytest
import socketio

from tests.conftest import free_port, run_uvicorn, uvicorn_on
from tests.interop.node import check_handshake

APP = "tests.interop.app:app"
MODES = ["polling", "websocket", "upgrade"]
MULTI_MODES = ["polling", "websocket", "mixed"]
TRANSPORTS: dict[str, list[str] | None] = {"polling": ["polling"], "websocket": ["websocket"], "upgrade": None}
FAST_PING = {"INTEROP_PING_INTERVAL": "0.3", "INTEROP_PING_TIMEOUT": "0.3"}
SHORT_CONNECT_TIMEOUT = {"INTEROP_CONNECT_TIMEOUT": "0.5"}

pytestmark = pytest.mark.timeout(20)


def run(body: Callable[[], Awaitable[None]], limit: float = 10.0) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(body(), limit)

    asyncio.run(bounded())


def mode_of(mode: str, i: int) -> str:
    return MODES[i % 3] if mode == "mixed" else mode


def final_transport(mode: str) -> str:
    return "polling" if mode == "polling" else "websocket"


async def until(pred: Callable[[], Any], timeout: float = 3.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


class Client:
    """An AsyncClient that records what it receives; `events[(namespace, event)]` = list of args."""

    def __init__(self, url: str, mode: str = "websocket", reconnection: bool = True) -> None:
        self.url = url
        self.mode = mode
        self.sio = socketio.AsyncClient(reconnection=reconnection, reconnection_delay=0.1,
                                        reconnection_delay_max=0.3, randomization_factor=0)
        self.events: defaultdict[tuple[str, str], list[Any]] = defaultdict(list)
        self.connects: defaultdict[str, int] = defaultdict(int)
        self.disconnects: defaultdict[str, list[str]] = defaultdict(list)
        self.connect_errors: defaultdict[str, list[Any]] = defaultdict(list)

    def record(self, event: str, namespace: str = "/") -> None:
        async def handler(*args: Any) -> None:
            self.events[(namespace, event)].append(args[0] if len(args) == 1 else list(args))

        self.sio.on(event, handler, namespace=namespace)

    def answer(self, event: str, fn: Callable[..., Any], namespace: str = "/") -> None:
        """A handler whose return value is the ack."""
        self.sio.on(event, fn, namespace=namespace)

    async def connect(self, namespaces: list[str] | None = None, auth: dict[str, Any] | None = None,
                      wait_welcome: bool = True, headers: dict[str, str] | None = None,
                      query: str = "") -> Client:
        namespaces = namespaces or ["/"]
        for ns in namespaces:
            self._lifecycle(ns)
            self.record("welcome", ns)
        await self.sio.connect(self.url + (f"?{query}" if query else ""), namespaces=namespaces, auth=auth,
                               headers=headers or {}, transports=TRANSPORTS[self.mode], wait_timeout=3)
        if wait_welcome:
            await until(lambda: all(self.events[(ns, "welcome")] for ns in namespaces), what="welcome")
        return self

    def _lifecycle(self, ns: str) -> None:
        async def on_connect() -> None:
            self.connects[ns] += 1

        async def on_disconnect(reason: str) -> None:
            self.disconnects[ns].append(reason)

        async def on_connect_error(data: Any) -> None:
            self.connect_errors[ns].append(data)

        self.sio.on("connect", on_connect, namespace=ns)
        self.sio.on("disconnect", on_disconnect, namespace=ns)
        self.sio.on("connect_error", on_connect_error, namespace=ns)

    def sid(self, ns: str = "/") -> str:
        sid = self.sio.get_sid(ns)
        assert sid is not None
        return str(sid)

    async def call(self, event: str, *args: Any, ns: str = "/") -> Any:
        data: Any = args if len(args) != 1 else args[0]
        if not args:
            data = None
        return await self.sio.call(event, data, namespace=ns, timeout=3)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.sio.disconnect()


@contextlib.asynccontextmanager
async def clients(url: str, modes: list[str]) -> AsyncIterator[list[Client]]:
    made = [Client(url, m) for m in modes]
    try:
        yield made
    finally:
        for c in made:
            await c.close()


async def server_reason(url: str, sid: str, timeout: float = 3.0) -> str | None:
    """The disconnect reason the test app recorded (polled: it may land a bit later)."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while True:
            async with http.get(f"{url}/test/reasons/{sid}") as res:
                reason = (await res.json())["reason"]
            if reason is not None or time.monotonic() > deadline:
                return None if reason is None else str(reason)
            await asyncio.sleep(0.025)


def tag() -> str:
    """Unique room names: a server is shared by the whole module."""
    return uuid.uuid4().hex[:8]


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


def test_large_messages_over_compressed_polling(url: str) -> None:
    """aiohttp asks for gzip: polling responses past 1 KB arrive compressed and decode as sent."""
    async def body() -> None:
        async with clients(url, ["polling"]) as (c,):
            await c.connect()
            big = {"text": "héllo " * 2000, "n": list(range(500))}
            for _ in range(3):
                assert await c.call("echo", big) == big

    run(body)


@pytest.mark.parametrize("mode", MODES)
def test_connect_echo(url: str, mode: str) -> None:
    async def body() -> None:
        async with clients(url, [mode]) as (c,):
            await c.connect()
            sid = c.sid()
            assert len(sid) == 20
            welcome = c.events[("/", "welcome")][0]
            assert welcome == {"id": sid, "namespace": "/", "transport": final_transport(mode)}
            assert await c.call("echo", "héllo wörld ✓ \U0001f600") == "héllo wörld ✓ \U0001f600"
            obj = {"a": 1, "b": [True, None, 2.5], "c": {"d": "e"}}
            assert await c.call("echo", obj) == obj
            assert await c.call("echo-pair", "x", 42) == ("x", 42)
            assert await c.call("echo-nothing", 1) is None
            who = await c.call("whoami")
            assert who["id"] == sid and who["namespace"] == "/" and who["rooms"] == [sid]
            assert who["transport"] == final_transport(mode)
            assert c.sio.transport() == final_transport(mode)

    run(body)


@pytest.mark.parametrize("mode", MODES)
def test_numbered_stream(url: str, mode: str) -> None:
    count = 200

    async def body() -> None:
        async with clients(url, [mode]) as (c,):
            received: list[int] = []
            transports: list[str] = []
            done = asyncio.Event()

            async def on_n(i: int, transport: str) -> None:
                received.append(i)
                transports.append(transport)

            async def on_done(n: int) -> None:
                done.set()

            c.sio.on("n", on_n)
            c.sio.on("n-done", on_done)
            await c.connect(auth={"stream": {"count": count, "interval": 0.005}})
            for i in range(count):
                await c.sio.emit("numbered", i)
                await asyncio.sleep(0.005)
            await asyncio.wait_for(done.wait(), 5)
            assert received == list(range(count))
            assert await c.call("numbered-get") == list(range(count))
            assert transports == sorted(transports, key=["polling", "websocket"].index)
            assert transports[-1] == final_transport(mode)
            assert c.disconnects["/"] == []

    run(body)


@pytest.mark.parametrize("mode", MODES)
def test_binary(url: str, mode: str) -> None:
    async def body() -> None:
        async with clients(url, [mode]) as (c,):
            def bin_q(buf: bytes, obj: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
                return buf + b"\xff", {"size": len(obj["inner"]), "back": obj["inner"]}

            c.answer("bin-q", bin_q)
            await c.connect()
            small = bytes([0, 1, 2, 253, 254, 255])
            assert await c.call("echo", small) == small
            nested = {"a": small, "list": [b"xyz", "text", {"deep": b"\x09"}]}
            assert await c.call("echo", nested) == nested
            big = bytes((i * 7) & 255 for i in range(65536))
            assert await c.call("echo", big) == big
            assert await c.call("echo-pair", b"\x01", b"\x02\x03") == (b"\x01", b"\x02\x03")
            spec = {"event": "bin-q", "args": [b"\x05\x06\x07", {"inner": b"inner"}], "timeout": 3}
            assert await c.call("ask", spec) == {"answer": [b"\x05\x06\x07\xff", {"size": 5, "back": b"inner"}]}
            assert await c.call("echo", b"") == b""

    run(body)


@pytest.mark.parametrize("mode", MODES)
def test_acks(url: str, mode: str) -> None:
    async def body() -> None:
        async with clients(url, [mode]) as (c,):
            late: list[float] = []

            async def slow() -> str:
                # python-socketio always acks; answering after the server's timeout is the way
                # to let the server time out (the late ack must then be ignored)
                await asyncio.sleep(0.8)
                late.append(time.monotonic())
                return "too late"

            c.answer("question", lambda a, b, c_: (a + 1, str(b).upper(), c_))
            c.answer("question-single", lambda: "one")
            c.answer("question-empty", lambda: None)
            c.answer("slow", slow)
            await c.connect()
            assert await c.call("echo", "ping") == "ping"
            spec = {"event": "question", "args": [1, "two", {"three": 3}], "timeout": 3}
            assert await c.call("ask", spec) == {"answer": [2, "TWO", {"three": 3}]}
            assert await c.call("ask", {"event": "question-single", "args": [], "timeout": 3}) == {"answer": "one"}
            assert await c.call("ask", {"event": "question-empty", "args": [], "timeout": 3}) == {"answer": None}
            t0 = time.monotonic()
            assert await c.call("ask", {"event": "slow", "args": [], "timeout": 0.3}) == {"timeout": True}
            assert 0.25 <= time.monotonic() - t0 < 0.75
            await until(lambda: late, what="late ack")
            await asyncio.sleep(0.1)
            assert await c.call("echo", "still alive") == "still alive"
            assert c.disconnects["/"] == []

    run(body)


@pytest.mark.parametrize("mode", MULTI_MODES)
def test_rooms_and_broadcasts(url: str, mode: str) -> None:
    async def body() -> None:
        async with clients(url, [mode_of(mode, i) for i in range(3)]) as (a, b, c):
            for x in (a, b, c):
                x.record("m")
            await asyncio.gather(a.connect(), b.connect(), c.connect())
            t = tag()
            r1, r2 = f"{t}-r1", f"{t}-r2"
            assert await a.call("join", r1) == sorted([a.sid(), r1])
            await b.call("join", r1)
            await c.call("join", r2)
            await a.call("to-rooms", {"rooms": [r1], "event": "m", "args": ["t1"]})  # B
            await a.call("broadcast", {"to": [r1, r2], "except": [r2], "event": "m", "args": ["t2"]})  # A B
            await a.call("broadcast", {"event": "m", "args": ["t3"]})  # everyone
            await a.call("except-rooms", {"rooms": [r2], "event": "m", "args": ["t4"]})  # B
            await c.call("join", r1)
            await a.call("to-rooms", {"rooms": [r1, r2], "event": "m", "args": ["t5"]})  # B C, once each
            assert await b.call("leave", r1) == [b.sid()]
            await a.call("to-rooms", {"rooms": [r1], "event": "m", "args": ["t6"]})  # C
            await a.call("broadcast", {"to": [r1], "event": "m", "args": ["t7", b"\x07\x07"]})  # A C
            await a.call("broadcast", {"to": [r1, r2, b.sid()], "event": "m", "args": ["end"]})
            await until(lambda: all("end" in x.events[("/", "m")] for x in (a, b, c)), what="end markers")
            t7 = ["t7", b"\x07\x07"]
            assert a.events[("/", "m")] == ["t2", "t3", t7, "end"]
            assert b.events[("/", "m")] == ["t1", "t2", "t3", "t4", "t5", "end"]
            assert c.events[("/", "m")] == ["t3", "t5", "t6", t7, "end"]

    run(body)


@pytest.mark.parametrize("mode", MULTI_MODES)
def test_broadcast_with_ack(url: str, mode: str) -> None:
    async def body() -> None:
        async with clients(url, [mode_of(mode, i) for i in range(3)]) as (a, b, c):
            for name, x in (("A", a), ("B", b), ("C", c)):
                x.answer("survey", lambda q, n=name: {"name": n, "q": q})
                x.answer("survey-bin", lambda n=name: n.encode())
                x.answer("survey-partial", _partial_answer(name))
            await asyncio.gather(a.connect(), b.connect(), c.connect())
            t = tag()
            room, everyone = f"{t}-ack", f"{t}-all"
            for x in (a, b, c):
                await x.call("join", everyone)
            await a.call("join", room)
            await b.call("join", room)

            async def bcast(**spec: Any) -> dict[str, Any]:
                return dict(await a.call("broadcast-ack", spec))

            def names(res: dict[str, Any]) -> list[Any]:
                assert "timeout" not in res, res
                return sorted(res["responses"], key=lambda r: r["name"])

            res = await bcast(to=[room], timeout=2, event="survey", args=["q1"])
            assert names(res) == [{"name": "A", "q": "q1"}, {"name": "B", "q": "q1"}]
            res = await bcast(to=[everyone], timeout=2, event="survey", args=["q2"])
            assert names(res) == [{"name": n, "q": "q2"} for n in "ABC"]
            res = await bcast(to=[everyone], **{"except": [room]}, timeout=2, event="survey", args=["q3"])
            assert names(res) == [{"name": "C", "q": "q3"}]
            res = await bcast(to=[everyone], timeout=2, event="survey-bin")
            assert sorted(res["responses"]) == [b"A", b"B", b"C"]
            t0 = time.monotonic()
            res = await bcast(to=[everyone], timeout=0.5, event="survey-partial")
            assert 0.4 <= time.monotonic() - t0 < 3
            assert res["timeout"] is True and sorted(res["responses"]) == ["A", "C"]
            assert await bcast(to=[f"{t}-nobody"], timeout=1, event="survey", args=["q4"]) == {"responses": []}
            await asyncio.sleep(1.0)  # B's late answer arrives and must be ignored
            assert await b.call("echo", "ok") == "ok"

    run(body)


def _partial_answer(name: str) -> Callable[[], Awaitable[str]]:
    """B answers too late (python-socketio always acks), A and C at once."""
    async def answer() -> str:
        if name == "B":
            await asyncio.sleep(0.9)
        return name

    return answer


@pytest.mark.parametrize("mode", MODES)
def test_namespaces(url: str, mode: str) -> None:
    async def body() -> None:
        async with clients(url, [mode, mode]) as (c, bad):
            for ns in ("/", "/custom"):
                c.record("iso", ns)
            # three namespaces multiplexed over one Engine.IO connection
            await c.connect(["/", "/custom", "/dyn-7"])
            for ns in ("/", "/custom", "/dyn-7"):
                assert c.events[(ns, "welcome")][0]["namespace"] == ns
                who = await c.call("whoami", ns=ns)
                assert who["namespace"] == ns and who["id"] == c.sid(ns)
            assert len({c.sid(ns) for ns in ("/", "/custom", "/dyn-7")}) == 3
            assert await c.call("echo", "dyn", ns="/dyn-7") == "dyn"
            # broadcasts stay inside their namespace
            await c.call("broadcast", {"event": "iso", "args": ["from /"]})
            await c.call("broadcast", {"event": "iso", "args": ["from /custom"]}, ns="/custom")
            await until(lambda: c.events[("/custom", "iso")], what="iso on /custom")
            await c.call("echo", "sync")
            assert c.events[("/", "iso")] == ["from /"]
            assert c.events[("/custom", "iso")] == ["from /custom"]
            # a server disconnect of /custom leaves the other namespaces connected
            custom_sid = c.sid("/custom")
            await c.sio.emit("server-disconnect-me", namespace="/custom")
            await until(lambda: c.disconnects["/custom"], what="/custom disconnect")
            assert c.disconnects["/custom"] == [socketio.AsyncClient.reason.SERVER_DISCONNECT]
            assert await c.call("echo", "alive") == "alive"
            assert c.disconnects["/"] == []
            assert await server_reason(url, custom_sid) == "server namespace disconnect"
            # unknown namespace
            with pytest.raises(socketio.exceptions.ConnectionError):
                await bad.connect(["/nope"], wait_welcome=False)
            assert bad.connect_errors["/nope"] == [{"message": "Invalid namespace"}]
            assert bad.connects["/nope"] == 0

    run(body)


@pytest.mark.parametrize("mode", MODES)
def test_middleware_rejection(url: str, mode: str) -> None:
    async def body() -> None:
        async with clients(url, [mode, mode, mode]) as (bad, bad_custom, good):
            err = {"message": "not authorized", "data": {"reason": "bad token"}}
            with pytest.raises(socketio.exceptions.ConnectionError):
                await bad.connect(auth={"token": "bad"}, wait_welcome=False)
            assert bad.connect_errors["/"] == [err]
            assert bad.connects["/"] == 0
            with pytest.raises(socketio.exceptions.ConnectionError):
                await bad_custom.connect(["/custom"], auth={"token": "bad"}, wait_welcome=False)
            assert bad_custom.connect_errors["/custom"] == [err]
            await good.connect(auth={"token": "good"})
            assert (await good.call("whoami"))["auth"] == {"token": "good"}

    run(body)


@pytest.mark.parametrize("close", [False, True], ids=["disconnect", "disconnect-close"])
@pytest.mark.parametrize("mode", MODES)
def test_server_disconnect_no_reconnect(url: str, mode: str, close: bool) -> None:
    async def body() -> None:
        async with clients(url, [mode]) as (c,):
            await c.connect()
            sid = c.sid()
            await c.sio.emit("server-close-me" if close else "server-disconnect-me")
            await until(lambda: c.disconnects["/"], what="disconnect")
            await asyncio.sleep(0.8)  # a reconnection (there must be none) would happen here
            assert c.disconnects["/"] == [socketio.AsyncClient.reason.SERVER_DISCONNECT]
            assert c.connects["/"] == 1
            assert not c.sio.connected
            assert await server_reason(url, sid) == "server namespace disconnect"

    run(body)


@pytest.mark.parametrize("mode", MODES)
def test_client_disconnect_reason(url: str, mode: str) -> None:
    async def body() -> None:
        async with clients(url, [mode]) as (c,):
            await c.connect()
            sid = c.sid()
            await c.sio.disconnect()
            assert c.disconnects["/"] == [socketio.AsyncClient.reason.CLIENT_DISCONNECT]
            # python-socketio queues "41" then the Engine.IO close "1" back to back, and whether
            # they leave together depends on its task scheduling. Node handles a close at once but
            # a DISCONNECT a tick later, so with both in one polling POST it reports
            # "transport close"; otherwise "client namespace disconnect".
            assert await server_reason(url, sid) in {"transport close", "client namespace disconnect"}

    run(body)


@pytest.mark.parametrize("mode", MODES)
def test_engineio_close_reason(url: str, mode: str) -> None:
    """Closing only the Engine.IO session (no Socket.IO DISCONNECT): "transport close" on the server."""
    async def body() -> None:
        async with clients(url, [mode]) as (c,):
            await c.connect()
            sid = c.sid()
            await c.sio.eio.disconnect()
            assert await server_reason(url, sid) == "transport close"

    run(body)


@pytest.mark.parametrize("close", [False, True], ids=["disconnect", "disconnect-close"])
@pytest.mark.parametrize("mode", MULTI_MODES)
def test_disconnect_sockets(url: str, mode: str, close: bool) -> None:
    async def body() -> None:
        async with clients(url, [mode_of(mode, i) for i in range(3)]) as (a, b, c):
            await asyncio.gather(a.connect(), b.connect(), c.connect())
            room = f"{tag()}-kick"
            await b.call("join", room)
            await c.call("join", room)
            sids = [a.sid(), b.sid(), c.sid()]
            await a.call("disconnect-sockets", {"to": [room], "close": close})
            await until(lambda: b.disconnects["/"] and c.disconnects["/"], what="kicked")
            await asyncio.sleep(0.5)
            assert [x.sio.connected for x in (a, b, c)] == [True, False, False]
            assert [x.connects["/"] for x in (a, b, c)] == [1, 1, 1]
            assert b.disconnects["/"] == c.disconnects["/"] == [socketio.AsyncClient.reason.SERVER_DISCONNECT]
            assert await a.call("echo", "A ok") == "A ok"
            for sid in sids[1:]:
                assert await server_reason(url, sid) == "server namespace disconnect"

    run(body)


@pytest.mark.parametrize("mode", MULTI_MODES)
def test_fetch_sockets_and_sockets_join(url: str, mode: str) -> None:
    async def body() -> None:
        async with clients(url, [mode_of(mode, i) for i in range(3)]) as (a, b, c):
            for x in (a, b, c):
                x.record("fs2-msg")
            await asyncio.gather(a.connect(), b.connect(), c.connect())
            t = tag()
            fs, fs2 = f"{t}-fs", f"{t}-fs2"
            await a.call("join", fs)
            await b.call("join", fs)
            sa, sb, sc = a.sid(), b.sid(), c.sid()

            def entries(*pairs: tuple[str, list[str]]) -> list[dict[str, Any]]:
                return sorted(({"id": s, "rooms": sorted([s, *rooms])} for s, rooms in pairs), key=lambda d: d["id"])

            assert await c.call("fetch-sockets", {"to": [fs]}) == entries((sa, [fs]), (sb, [fs]))
            everyone = await c.call("fetch-sockets", {})
            assert {sa, sb, sc} <= {s["id"] for s in everyone}
            await c.call("sockets-join", {"to": [fs], "room": fs2})
            assert await c.call("fetch-sockets", {"to": [fs2]}) == entries((sa, [fs, fs2]), (sb, [fs, fs2]))
            assert (await a.call("whoami"))["rooms"] == sorted([sa, fs, fs2])
            await c.call("broadcast", {"to": [fs2], "event": "fs2-msg", "args": ["hi"]})
            await until(lambda: a.events[("/", "fs2-msg")] and b.events[("/", "fs2-msg")], what="fs2 broadcast")
            await c.call("sockets-leave", {"to": [fs2], "except": [sb], "room": fs2})
            assert await c.call("fetch-sockets", {"to": [fs2]}) == entries((sb, [fs, fs2]))
            await c.call("echo", "sync")
            assert [x.events[("/", "fs2-msg")] for x in (a, b, c)] == [["hi"], ["hi"], []]

    run(body)


@pytest.mark.parametrize("mode", MULTI_MODES)
def test_volatile_and_local_broadcasts(url: str, mode: str) -> None:
    async def body() -> None:
        async with clients(url, [mode_of(mode, i) for i in range(3)]) as (a, b, c):
            for x in (a, b, c):
                x.record("v")
            a.record("vt")
            await asyncio.gather(a.connect(), b.connect(), c.connect())
            room = f"{tag()}-vl"
            await b.call("join", room)
            await c.call("join", room)

            async def settle() -> None:
                # every polling client gets its next GET waiting at the server: a volatile
                # packet is only written to a transport that can take it at once
                await asyncio.sleep(0.15)

            await settle()
            await a.call("broadcast", {"to": [room], "volatile": True, "event": "v", "args": ["vol-room"]})  # B C
            await settle()
            await a.call("broadcast", {"volatile": True, "event": "v", "args": ["vol-all", b"\x01\x02"]})  # A B C
            await a.call("broadcast", {"to": [room], "local": True, "event": "v", "args": ["local-room"]})  # B C
            await a.call("broadcast", {"local": True, "event": "v", "args": ["local-all"]})  # A B C
            await a.call("server-local", {"to": [room], "event": "v", "args": ["rt-local-room"]})  # B C
            await a.call("server-local", {"event": "v", "args": ["rt-local-all"]})  # A B C
            spec = {"volatile": True, "local": True, "except": [room], "event": "v", "args": ["vol-local-except"]}
            await a.call("broadcast", spec)  # A
            await a.call("broadcast", {"event": "v", "args": ["end"]})
            await until(lambda: all("end" in x.events[("/", "v")] for x in (a, b, c)), what="end markers")
            vol_all = ["vol-all", b"\x01\x02"]
            assert a.events[("/", "v")] == [vol_all, "local-all", "rt-local-all", "vol-local-except", "end"]
            members = ["vol-room", vol_all, "local-room", "local-all", "rt-local-room", "rt-local-all", "end"]
            assert b.events[("/", "v")] == members
            assert c.events[("/", "v")] == members
            # a volatile packet right after a plain one (same handler, no suspension in between)
            await settle()
            await a.call("emit-then-volatile")
            await until(lambda: "plain-2" in a.events[("/", "vt")], what="plain-2")
            await a.call("echo", "sync")
            if a.mode == "polling":
                # the plain emit answered the waiting GET: not writable, the volatile one is dropped
                assert a.events[("/", "vt")] == ["plain-1", "plain-2"]
            else:
                assert a.events[("/", "vt")] in (["plain-1", "plain-2"], ["plain-1", "volatile", "plain-2"])
            assert [x.disconnects["/"] for x in (a, b, c)] == [[], [], []]

    run(body)


@pytest.mark.parametrize("mode", MODES)
def test_catch_all(url: str, mode: str) -> None:
    async def body() -> None:
        async with clients(url, [mode]) as (c,):
            await c.connect(["/", "/custom"])
            three = {"three": [3]}
            assert await c.call("no-such-event", 1, "two", three) == {"caught": "no-such-event", "args": [1, "two", three]}
            assert await c.call("bare") == {"caught": "bare", "args": []}
            assert await c.call("binary-thing", b"\xde\xad") == {"caught": "binary-thing", "args": [b"\xde\xad"]}
            assert await c.call("custom-thing", "x", ns="/custom") == {"caught": "custom-thing", "args": ["x"]}
            await c.sio.emit("fire-and-forget", "no ack")  # no ack asked: the catch-all still runs
            assert await c.call("echo", "handled") == "handled"  # has its own handler: not caught
            assert await c.call("caught-get") == [
                ["no-such-event", 1, "two", three],
                ["bare"],
                ["binary-thing", b"\xde\xad"],
                ["fire-and-forget", "no ack"],
            ]
            assert await c.call("caught-get", ns="/custom") == [["custom-thing", "x"]]

    run(body)


@pytest.mark.parametrize("mode", MODES)
def test_callable_dynamic_namespaces(url: str, mode: str) -> None:
    async def body() -> None:
        t = tag()
        fn_ns, vip_ns = f"/fn-{t}", f"/vip-{t}"
        async with clients(url, [mode, mode, mode]) as (fn, not_vip, vip):
            fn.record("dn", fn_ns)
            vip.record("dn", vip_ns)
            await fn.connect([fn_ns])
            assert fn.events[(fn_ns, "welcome")][0]["namespace"] == fn_ns
            assert (await fn.call("whoami", ns=fn_ns))["namespace"] == fn_ns
            assert await fn.call("echo", "fn", ns=fn_ns) == "fn"
            # the async callable sees the auth: refused without "vip", accepted with it
            with pytest.raises(socketio.exceptions.ConnectionError):
                await not_vip.connect([vip_ns], auth={"vip": False}, wait_welcome=False)
            assert not_vip.connect_errors[vip_ns] == [{"message": "Invalid namespace"}]
            assert not_vip.connects[vip_ns] == 0
            await vip.connect([vip_ns], auth={"vip": True})
            who = await vip.call("whoami", ns=vip_ns)
            assert who["namespace"] == vip_ns and who["auth"] == {"vip": True}
            # a broadcast stays inside its dynamic namespace
            await vip.call("broadcast", {"event": "dn", "args": ["to vip"]}, ns=vip_ns)
            await until(lambda: vip.events[(vip_ns, "dn")], what="broadcast in the vip namespace")
            await fn.call("echo", "sync", ns=fn_ns)
            assert vip.events[(vip_ns, "dn")] == ["to vip"]
            assert fn.events[(fn_ns, "dn")] == []

    run(body)


@pytest.mark.parametrize("mode", MODES)
def test_socket_data_and_handshake(url: str, mode: str) -> None:
    async def body() -> None:
        async with clients(url, [mode, mode]) as (c, other):
            before = time.time() * 1000
            await asyncio.gather(
                c.connect(auth={"nick": "ada"}, headers={"X-Interop": "python"}, query="foo=bar"),
                other.connect(auth={"nick": "bob"}),
            )
            after_connect = time.time() * 1000
            sid, other_sid = c.sid(), other.sid()
            room = f"{tag()}-data"
            await c.call("join", room)
            await other.call("join", room)
            base_data = {"from_middleware": {"namespace": "/", "nick": "ada"}, "from_connect": True}
            assert await c.call("get-data") == base_data
            assert await c.call("set-data", "score", {"n": 1}) == {**base_data, "score": {"n": 1}}
            await c.call("set-data", "score", {"n": 2})
            assert await c.call("get-data") == {**base_data, "score": {"n": 2}}
            other_data = {"from_middleware": {"namespace": "/", "nick": "bob"}, "from_connect": True}
            assert await other.call("fetch-sockets", {"to": [room], "details": True}) == sorted(
                [
                    {"id": sid, "rooms": sorted([sid, room]), "data": {**base_data, "score": {"n": 2}},
                     "auth": {"nick": "ada"}},
                    {"id": other_sid, "rooms": sorted([other_sid, room]), "data": other_data, "auth": {"nick": "bob"}},
                ],
                key=lambda d: d["id"],
            )
            hs = await c.call("handshake")
            check_handshake(hs, url, "websocket" if mode == "websocket" else "polling", before, after_connect)
            assert hs["headers"]["x-interop"] == "python"
            assert hs["query"]["foo"] == "bar"
            assert "foo=bar" in hs["url"].split("?", 1)[1].split("&")
            assert hs["auth"] == {"nick": "ada"}
            other_hs = await other.call("handshake")
            assert "x-interop" not in other_hs["headers"] and "foo" not in other_hs["query"]
            assert other_hs["auth"] == {"nick": "bob"}

    run(body)


@pytest.mark.parametrize("mode", MODES)
def test_connect_timeout(short_connect_timeout_url: str, mode: str) -> None:
    """An Engine.IO connection that joins no namespace is closed after connect_timeout (0.5 s).

    python-socketio always joins a namespace in connect(), so the idle connection is opened
    with python-engineio's client (which python-socketio runs on).
    """
    url = short_connect_timeout_url

    async def body() -> None:
        eio = engineio.AsyncClient()
        reasons: list[str] = []
        closed_at: list[float] = []

        async def on_disconnect(reason: str) -> None:
            reasons.append(reason)
            closed_at.append(time.monotonic())

        eio.on("disconnect", on_disconnect)
        async with clients(url, [mode]) as (joined,):
            t0 = time.monotonic()
            try:
                await eio.connect(url, transports=TRANSPORTS[mode], engineio_path="socket.io")
                await joined.connect()
                await until(lambda: reasons, 5, "close of the idle connection")
            finally:
                await eio.disconnect()
            # not before the timeout; python-engineio reports a close from the server this way
            assert closed_at[0] - t0 >= 0.45
            assert reasons == [eio.reason.SERVER_DISCONNECT if mode == "polling" else eio.reason.TRANSPORT_ERROR]
            await asyncio.sleep(0.2)
            assert joined.sio.connected and joined.disconnects["/"] == []
            assert await joined.call("echo", "still here") == "still here"

    run(body)


@pytest.mark.parametrize("mode", MODES)
def test_attachment_limit(url: str, mode: str) -> None:
    async def body() -> None:
        async with clients(url, [mode, mode]) as (bad, other):
            bad.sio.reconnection = False
            await asyncio.gather(bad.connect(), other.connect())
            sid = bad.sid()
            ten = [bytes([i]) for i in range(10)]
            assert await bad.call("echo", ten) == ten  # max_attachments (10) itself is fine
            await bad.sio.emit("echo", [bytes([i]) for i in range(11)])
            await until(lambda: bad.disconnects["/"], what="disconnect of the sender")
            assert await server_reason(url, sid) == "parse error"
            await asyncio.sleep(0.2)
            assert not bad.sio.connected
            assert other.sio.connected and other.disconnects["/"] == []
            assert await other.call("echo", "fine") == "fine"

    run(body)


@pytest.mark.parametrize("mode", MODES)
def test_forced_server_close_and_parse_error(url: str, mode: str) -> None:
    async def body() -> None:
        async with clients(url, [mode] * 4) as (twice, stranger, garbled, other):
            for x in (twice, stranger, garbled):
                x.sio.reconnection = False
            await asyncio.gather(twice.connect(["/", "/custom"]), stranger.connect(), garbled.connect(), other.connect())
            sids = {"twice": twice.sid(), "twiceSub": twice.sid("/custom"), "stranger": stranger.sid(),
                    "garbled": garbled.sid()}
            # raw Socket.IO packets through the client's own Engine.IO connection
            await twice.sio.eio.send("0")  # a second CONNECT for "/"
            await stranger.sio.eio.send('2/custom,["echo","x"]')  # a namespace it has not joined
            await garbled.sio.eio.send('2{"not":"an array"}')  # an EVENT whose payload is not an array
            await until(lambda: all(x.disconnects["/"] for x in (twice, stranger, garbled)), what="disconnects")
            reasons = {k: await server_reason(url, v) for k, v in sids.items()}
            assert reasons == {
                "twice": "forced server close",
                "twiceSub": "forced server close",
                "stranger": "forced server close",
                "garbled": "parse error",
            }
            assert twice.disconnects["/custom"]
            await asyncio.sleep(0.2)
            assert other.sio.connected and other.disconnects["/"] == []
            assert await other.call("echo", "fine") == "fine"

    run(body)


@pytest.mark.parametrize("mode", MODES)
def test_ping_timeout_then_reconnect(fast_ping_url: str, mode: str) -> None:
    async def body() -> None:
        async with clients(fast_ping_url, [mode]) as (c,):
            await c.connect()
            sid1 = c.sid()
            # freeze the event loop past pingInterval + pingTimeout: no pong goes out
            time.sleep(1.5)
            await until(lambda: c.connects["/"] >= 2 and c.sio.connected, 5, "reconnection")
            assert c.sid() != sid1
            assert len(c.disconnects["/"]) == 1
            assert await c.call("echo", "back") == "back"
            assert await server_reason(fast_ping_url, sid1) == "ping timeout"

    run(body)


@pytest.mark.timeout(40)
def test_server_restart_client_reconnects(tmp_path: Path) -> None:
    """The server goes away (the websocket closes under the client): the client reconnects by itself.

    Websocket only: python-engineio does not reconnect when a polling session ends with a close
    packet, which is what a server sends on polling when it shuts down.
    """
    port = free_port()
    reasons_file = tmp_path / "reasons.jsonl"
    env = {"INTEROP_PING_INTERVAL": "1", "INTEROP_PING_TIMEOUT": "1", "INTEROP_REASONS_FILE": str(reasons_file)}
    url = f"http://127.0.0.1:{port}"

    async def body() -> None:
        async with clients(url, ["websocket"]) as (c,):
            server = contextlib.ExitStack()
            await asyncio.to_thread(server.enter_context, uvicorn_on(APP, port, env))
            try:
                await c.connect()
                sid1 = c.sid()
                await asyncio.to_thread(server.close)  # stop the first server
                await until(lambda: c.disconnects["/"], 5, "disconnect")
                reasons = [json.loads(line) for line in reasons_file.read_text().splitlines()]
                assert {d["id"]: d["reason"] for d in reasons}.get(sid1) in {"server shutting down", "transport close"}
                await asyncio.to_thread(server.enter_context, uvicorn_on(APP, port, env))
                await until(lambda: c.connects["/"] >= 2 and c.sio.connected, 10, "reconnection")
                assert c.sid() != sid1
                assert await c.call("echo", "back") == "back"
            finally:
                await c.close()
                await asyncio.to_thread(server.close)

    run(body, limit=35)
