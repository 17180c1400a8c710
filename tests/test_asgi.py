"""Behaviour through the ASGI app, in-process, with Starlette's TestClient (HTTP and WebSocket).

Covers the FastAPI integration (include_router with and without a prefix, root_path, mount),
the lifespan, the router API, handler parameter binding and how emitted values are serialised.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import decimal
import enum
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
import anyio.from_thread
import pytest
from fastapi import FastAPI
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel
from starlette.testclient import TestClient, WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from fastapi_realtime import Realtime, RealtimeRouter, Socket

pytestmark = pytest.mark.timeout(30)

WS_QUERY = "?EIO=4&transport=websocket"
POLL_QUERY = "?EIO=4&transport=polling"


# --------------------------------------------------------------------------- helpers


def app_with(rt: Realtime, **include: Any) -> FastAPI:
    app = FastAPI()
    app.include_router(rt.router, **include)
    return app


def connect_namespace(ws: WebSocketTestSession, namespace: str = "/", auth: Any = None) -> str:
    """Send CONNECT for `namespace`; return the Socket.IO sid from the reply."""
    prefix = "" if namespace == "/" else namespace + ","
    ws.send_text("40" + prefix + ("" if auth is None else json.dumps(auth)))
    reply = ws.receive_text()
    assert reply.startswith("40" + prefix + "{"), reply
    return str(json.loads(reply[2 + len(prefix):])["sid"])


@contextlib.contextmanager
def sio(client: TestClient, path: str = "/socket.io/", namespace: str = "/", auth: Any = None) -> Iterator[WebSocketTestSession]:
    """A Socket.IO client over WebSocket, connected to `namespace`."""
    with client.websocket_connect(path + WS_QUERY) as ws:
        assert ws.receive_text().startswith("0{")
        connect_namespace(ws, namespace, auth)
        yield ws


def call(ws: WebSocketTestSession, event: str, *args: Any, namespace: str = "/", ack_id: int = 1) -> list[Any]:
    """Emit `event` with an ack id and return the ack's arguments (events before it are skipped)."""
    prefix = "" if namespace == "/" else namespace + ","
    ws.send_text(f"42{prefix}{ack_id}" + json.dumps([event, *args]))
    expected = f"43{prefix}{ack_id}["
    for _ in range(20):
        frame = ws.receive_text()
        if frame.startswith(expected):
            return list(json.loads(frame[len(expected) - 1:]))
    raise AssertionError(f"no ack for {event!r}")


def poll_connect(client: TestClient, path: str = "/socket.io/") -> str:
    """Open a polling session and join "/"; return the session's query URL."""
    response = client.get(path + POLL_QUERY)
    assert response.status_code == 200, response.text
    assert response.text.startswith("0{")
    url = f"{path}{POLL_QUERY}&sid={json.loads(response.text[1:])['sid']}"
    assert client.post(url, content="40").text == "ok"
    assert client.get(url).text.startswith('40{"sid":')
    return url


@contextlib.asynccontextmanager
async def asgi_lifespan(app: Any) -> AsyncIterator[None]:
    """Drive the app's ASGI lifespan protocol, as a server does."""
    to_app, app_receive = anyio.create_memory_object_stream[dict[str, Any]](4)
    app_send, from_app = anyio.create_memory_object_stream[dict[str, Any]](4)
    async with anyio.create_task_group() as tg:
        tg.start_soon(app, {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, app_receive.receive, app_send.send)
        await to_app.send({"type": "lifespan.startup"})
        assert (await from_app.receive())["type"] == "lifespan.startup.complete"
        yield
        await to_app.send({"type": "lifespan.shutdown"})
        assert (await from_app.receive())["type"] == "lifespan.shutdown.complete"


@contextlib.contextmanager
def serving(app: Any) -> Iterator[tuple[TestClient, Callable[[], None]]]:
    """A TestClient plus a function that ends the app's lifespan while connections stay open.

    TestClient runs the lifespan shutdown only as it stops its event loop, and that waits for
    open WebSockets; here the loop outlives the lifespan so a test can watch clients being closed.
    """
    with anyio.from_thread.start_blocking_portal() as portal:
        client = TestClient(app)
        client.portal = portal  # requests and WebSockets run on this loop, like the lifespan
        lifespan = portal.wrap_async_context_manager(asgi_lifespan(app))
        lifespan.__enter__()
        ended = False

        def shutdown() -> None:
            nonlocal ended
            if not ended:
                ended = True
                lifespan.__exit__(None, None, None)

        try:
            yield client, shutdown
        finally:
            shutdown()


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def echo_server(**options: Any) -> Realtime:
    rt = Realtime(**options)

    @rt.on("echo")
    async def echo(socket: Socket, *args: Any) -> tuple[Any, ...]:
        return args

    return rt


# --------------------------------------------------------------------------- mounting


@pytest.mark.parametrize(
    ("setup", "path", "client_options"),
    [
        (lambda app, rt: app.include_router(rt.router), "/socket.io/", {}),
        (lambda app, rt: app.include_router(rt.router), "/socket.io", {}),
        (lambda app, rt: app.include_router(rt.router, prefix="/rt"), "/rt/socket.io/", {}),
        (lambda app, rt: app.include_router(rt.router, prefix="/rt"), "/rt/socket.io", {}),
        # root_path set by the server (uvicorn --root-path): the path the app sees includes it.
        (lambda app, rt: app.include_router(rt.router), "/api/socket.io/", {"root_path": "/api"}),
        # ... and the older convention, where `path` leaves the root_path out.
        (lambda app, rt: app.include_router(rt.router), "/socket.io/", {"root_path": "/api"}),
        (lambda app, rt: app.mount("/socket.io", rt), "/socket.io/", {}),
        (lambda app, rt: app.mount("/socket.io", rt.app), "/socket.io/", {}),
    ],
    ids=["include", "include-no-slash", "prefix", "prefix-no-slash", "root_path", "root_path-old", "mount", "mount-app"],
)
@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_routes(setup: Callable[[FastAPI, Realtime], None], path: str, client_options: dict[str, Any], transport: str) -> None:
    rt = echo_server()
    app = FastAPI()
    setup(app, rt)
    with TestClient(app, **client_options) as client:
        if transport == "websocket":
            with sio(client, path) as ws:
                assert call(ws, "echo", "hi", 2) == ["hi", 2]
        else:
            url = poll_connect(client, path)
            assert client.post(url, content='421["echo","hi"]').text == "ok"
            assert client.get(url).text == '431["hi"]'


def test_custom_path() -> None:
    rt = echo_server(path="/live/")
    with TestClient(app_with(rt)) as client:
        with sio(client, "/live/") as ws:
            assert call(ws, "echo", 1) == [1]
        assert client.get("/socket.io/" + POLL_QUERY).status_code == 404


@pytest.mark.parametrize(
    ("setup", "path", "client_options"),
    [
        (lambda app, rt: app.include_router(rt.router), "/socket.io/", {}),
        (lambda app, rt: app.include_router(rt.router, prefix="/rt"), "/rt/socket.io/", {}),
        (lambda app, rt: app.include_router(rt.router), "/api/socket.io/", {"root_path": "/api"}),
        (lambda app, rt: app.mount("/socket.io", rt), "/socket.io/", {}),
    ],
    ids=["include", "prefix", "root_path", "mount"],
)
def test_handshake_url_is_the_request_path(
    setup: Callable[[FastAPI, Realtime], None], path: str, client_options: dict[str, Any]
) -> None:
    """handshake.url is the URL the client asked for (Node: `req.url`), as Starlette's Request sees it."""
    rt = Realtime()

    @rt.on("url")
    async def url(socket: Socket) -> str:
        return socket.handshake.url

    app = FastAPI()
    setup(app, rt)
    with TestClient(app, **client_options) as client, sio(client, path) as ws:
        assert call(ws, "url") == [path + WS_QUERY]


# --------------------------------------------------------------------------- lifespan


def test_include_router_keeps_the_apps_own_lifespan() -> None:
    events: list[str] = []

    @contextlib.asynccontextmanager
    async def own(app: FastAPI) -> AsyncIterator[None]:
        events.append("start")
        yield
        events.append("stop")

    rt = echo_server()
    app = FastAPI(lifespan=own)
    app.include_router(rt.router)
    with TestClient(app) as client:
        assert events == ["start"]
        with sio(client) as ws:
            assert call(ws, "echo", "x") == ["x"]
    assert events == ["start", "stop"]


def shutdown_server() -> tuple[Realtime, list[str]]:
    rt = Realtime()
    reasons: list[str] = []

    @rt.on("disconnect")
    async def disconnect(socket: Socket, reason: str) -> None:
        reasons.append(reason)

    return rt, reasons


def test_shutdown_closes_websocket_clients() -> None:
    events: list[str] = []

    @contextlib.asynccontextmanager
    async def own(app: FastAPI) -> AsyncIterator[None]:
        events.append("start")
        yield
        events.append("stop")

    rt, reasons = shutdown_server()
    app = FastAPI(lifespan=own)
    app.include_router(rt.router)
    with serving(app) as (client, shutdown), sio(client) as ws:
        assert events == ["start"]
        shutdown()
        assert events == ["start", "stop"]
        with pytest.raises(WebSocketDisconnect):
            for _ in range(5):  # a DISCONNECT packet before the close would be fine too
                ws.receive_text()
        wait_until(lambda: bool(reasons))
        assert reasons == ["server shutting down"]


def test_shutdown_answers_a_pending_long_poll_at_once() -> None:
    rt, reasons = shutdown_server()
    with serving(app_with(rt)) as (client, shutdown):
        url = poll_connect(client)
        sid = url.rpartition("sid=")[2]
        result: dict[str, Any] = {}

        def long_poll() -> None:
            response = client.get(url)
            result["body"] = response.text
            result["at"] = time.monotonic()

        getter = threading.Thread(target=long_poll)
        getter.start()
        session = rt.manager.get(sid)
        assert session is not None
        wait_until(lambda: session.writable)  # the GET is parked, waiting for frames
        started = time.monotonic()
        shutdown()
        getter.join(5)
        assert not getter.is_alive()
        assert result["body"] == "1"  # the close packet (§1.7)
        assert result["at"] - started < 2.0
        wait_until(lambda: bool(reasons))
        assert reasons == ["server shutting down"]
        # The session is gone: a later request gets "Session ID unknown" (§1.7).
        late = client.get(url)
        assert (late.status_code, late.json()["code"]) == (400, 1)


def test_shutdown_drops_sessions_stranded_by_an_earlier_event_loop(caplog: pytest.LogCaptureFixture) -> None:
    """An app used under one event loop and then another (test clients in turn, each with a
    loop of its own): a client left connected in the first is dropped at the next shutdown,
    out of its rooms, with nothing run on the dead loop and nothing logged as an error."""
    import gc
    import warnings

    import httpx

    rt = Realtime()

    @rt.on("connect")
    async def joined(socket: Socket) -> None:
        await socket.join("lobby")

    async def connect_and_leave_it() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=rt), base_url="http://test") as http:
            opened = (await http.get("/", params={"EIO": "4", "transport": "polling"})).text
            query = {"EIO": "4", "transport": "polling", "sid": json.loads(opened[1:])["sid"]}
            assert (await http.post("/", params=query, content="40")).text == "ok"
            assert (await http.get("/", params=query)).text.startswith("40{")
        assert len(await rt.to("lobby").fetch_sockets()) == 1

    async def next_loop() -> int:
        await rt.to("lobby").emit("news", "queued for a client that is gone")
        await rt.shutdown()
        return len(await rt.to("lobby").fetch_sockets())

    asyncio.run(connect_and_leave_it())
    with warnings.catch_warnings(record=True) as caught, caplog.at_level("ERROR", logger="fastapi_realtime"):
        warnings.simplefilter("always")
        assert asyncio.run(next_loop()) == 0
        gc.collect()
    assert not rt.manager.sessions
    assert [r.getMessage() for r in caplog.records] == []
    assert [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)] == []


# --------------------------------------------------------------------------- router API


def handler(*args: Any) -> None:
    pass


async def middleware(socket: Socket) -> None:
    pass


@pytest.mark.parametrize(
    "register",
    [
        lambda f: RealtimeRouter().on("event")(f),
        lambda f: RealtimeRouter("/chat").on("connect")(f),
        lambda f: RealtimeRouter().on("disconnect")(f),
        lambda f: RealtimeRouter().on("event", concurrent=True)(f),
        lambda f: RealtimeRouter().on_any()(f),
        lambda f: Realtime().on("event")(f),
        lambda f: Realtime().on("event", namespace="/x")(f),
    ],
)
def test_decorators_return_the_function_unchanged(register: Callable[[Any], Any]) -> None:
    assert register(handler) is handler


def test_use_returns_the_middleware() -> None:
    assert RealtimeRouter().use(middleware) is middleware
    assert Realtime().use(middleware) is middleware


def test_duplicate_event_in_one_router() -> None:
    router = RealtimeRouter()
    router.on("chat")(handler)
    with pytest.raises(ValueError):
        router.on("chat")(handler)


def routers_with(event: str, *namespaces: str) -> list[RealtimeRouter]:
    routers = [RealtimeRouter(ns) for ns in namespaces]
    for router in routers:
        router.on(event)(handler)
    return routers


@pytest.mark.parametrize("event", ["chat", "connect", "disconnect"])
def test_duplicate_handlers_raise_at_include_time(event: str) -> None:
    rt = Realtime()
    first, second = routers_with(event, "/", "/")
    rt.include_router(first)
    with pytest.raises(ValueError):
        rt.include_router(second)


def test_duplicate_catch_all_raises() -> None:
    rt = Realtime()
    first, second = RealtimeRouter(), RealtimeRouter()
    first.on_any()(handler)
    second.on_any()(handler)
    rt.include_router(first)
    with pytest.raises(ValueError):
        rt.include_router(second)


def test_duplicate_with_shortcut_and_nested() -> None:
    rt = Realtime()
    rt.on("chat")(handler)
    outer = RealtimeRouter()
    outer.include_router(routers_with("chat", "/")[0])
    with pytest.raises(ValueError):
        rt.include_router(outer)


def test_same_event_in_different_namespaces() -> None:
    rt = Realtime()
    for router in routers_with("chat", "/", "/a", "/b"):
        rt.include_router(router)


def test_nested_routers() -> None:
    chat = RealtimeRouter("/chat")
    messages = RealtimeRouter()  # no namespace of its own: lives in its parent's
    admin = RealtimeRouter("/admin")  # names its own
    other = RealtimeRouter()

    @messages.on("hello")
    async def hello(socket: Socket) -> str:
        return f"hello from {socket.namespace}"

    @admin.on("whoami")
    async def whoami(socket: Socket) -> str:
        return socket.namespace

    @other.on("where")
    async def where(socket: Socket) -> str:
        return socket.namespace

    messages.include_router(admin)
    chat.include_router(messages)
    chat.include_router(other, namespace="/elsewhere")
    rt = Realtime()
    rt.include_router(chat)
    with TestClient(app_with(rt)) as client, client.websocket_connect("/socket.io/" + WS_QUERY) as ws:
        ws.receive_text()
        for namespace in ("/chat", "/admin", "/elsewhere"):
            connect_namespace(ws, namespace)
        assert call(ws, "hello", namespace="/chat") == ["hello from /chat"]
        assert call(ws, "whoami", namespace="/admin") == ["/admin"]
        assert call(ws, "where", namespace="/elsewhere") == ["/elsewhere"]
        # "/" was never declared here beyond the default; unknown namespaces are refused.
        ws.send_text("40/nope,")
        assert ws.receive_text() == '44/nope,{"message":"Invalid namespace"}'


def test_include_router_with_namespace() -> None:
    router = RealtimeRouter()

    @router.on("where")
    async def where(socket: Socket) -> str:
        return socket.namespace

    rt = Realtime()
    rt.include_router(router, namespace="/moved")
    with TestClient(app_with(rt)) as client, sio(client, namespace="/moved") as ws:
        assert call(ws, "where", namespace="/moved") == ["/moved"]


def test_rt_on_shortcut() -> None:
    rt = Realtime()

    @rt.on("ping-me")
    async def ping(socket: Socket, n: int) -> int:
        return n + 1

    @rt.on("ping-me", namespace="/custom")
    async def ping_custom(socket: Socket, n: int) -> str:
        return f"custom {n}"

    with TestClient(app_with(rt)) as client, sio(client) as ws:
        assert call(ws, "ping-me", 1) == [2]
        connect_namespace(ws, "/custom")
        assert call(ws, "ping-me", 1, namespace="/custom") == ["custom 1"]


@pytest.mark.parametrize("name", ["connect_error", "disconnecting", "newListener", "removeListener"])
def test_reserved_names_refused(name: str) -> None:
    with pytest.raises(ValueError):
        RealtimeRouter().on(name)(handler)
    with pytest.raises(ValueError):
        Realtime().on(name)(handler)


@pytest.mark.parametrize("event", ["", None, 1])
def test_event_name_must_be_a_string(event: Any) -> None:
    with pytest.raises(TypeError):
        RealtimeRouter().on(event)


def test_namespace_must_start_with_slash() -> None:
    with pytest.raises(ValueError):
        RealtimeRouter("chat")


@pytest.mark.parametrize("name", ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"])
def test_emit_of_reserved_names_refused(name: str) -> None:
    rt = Realtime()

    @rt.on("try")
    async def try_emit(socket: Socket) -> str:
        try:
            await socket.emit(name)
        except ValueError:
            return "refused"
        return "sent"

    with TestClient(app_with(rt)) as client, sio(client) as ws:
        assert call(ws, "try") == ["refused"]


def test_catch_all_gets_events_without_a_handler() -> None:
    rt = Realtime()
    router = RealtimeRouter()

    @router.on("known")
    async def known(socket: Socket) -> str:
        return "known"

    @router.on_any()
    async def any_event(socket: Socket, event: str, *args: Any) -> list[Any]:
        return [event, list(args)]

    rt.include_router(router)
    with TestClient(app_with(rt)) as client, sio(client) as ws:
        assert call(ws, "known", 1) == ["known"]
        assert call(ws, "other", 1, {"a": 2}) == [["other", [1, {"a": 2}]]]


def test_connect_handler_emits_after_the_connect_reply() -> None:
    rt = Realtime()

    @rt.on("connect")
    async def on_connect(socket: Socket, auth: dict[str, Any]) -> None:
        await socket.emit("welcome", auth)

    with TestClient(app_with(rt)) as client, client.websocket_connect("/socket.io/" + WS_QUERY) as ws:
        ws.receive_text()
        connect_namespace(ws, "/", {"token": "t"})
        assert ws.receive_text() == '42["welcome",{"token":"t"}]'


# --------------------------------------------------------------------------- handler binding


async def h_socket_in_the_middle(data: Any, socket: Socket, more: Any) -> list[Any]:
    return [data, more, isinstance(socket, Socket)]


async def h_defaults(socket: Socket, a: Any, b: int = 5, c: Any = None) -> list[Any]:
    return [a, b, c]


async def h_no_defaults(socket: Socket, a: Any, b: Any) -> list[Any]:
    return [a, b]


async def h_extra_dropped(socket: Socket, a: Any) -> list[Any]:
    return [a]


async def h_star_args(socket: Socket, a: Any, *rest: Any) -> list[Any]:
    return [a, list(rest)]


async def h_only_star(*args: Any) -> list[Any]:
    return list(args)


def h_sync_without_socket(a: Any) -> list[Any]:
    return [a]


async def h_socket_last(a: Any, b: Any, socket: Socket) -> list[Any]:
    return [a, b, socket.namespace]


async def h_none() -> None:
    return None


async def h_tuple(socket: Socket) -> tuple[Any, ...]:
    return 1, "two", None


async def h_list(socket: Socket) -> list[int]:
    return [1, 2]  # a list is one ack argument, not several


async def h_keyword_only(socket: Socket, a: Any, *, flag: bool = True) -> list[Any]:
    return [a, flag]


@pytest.mark.parametrize(
    ("func", "args", "ack"),
    [
        (h_socket_in_the_middle, [1, 2], [[1, 2, True]]),
        (h_defaults, [1], [[1, 5, None]]),
        (h_defaults, [1, 2, 3], [[1, 2, 3]]),
        (h_no_defaults, [], [[None, None]]),
        (h_extra_dropped, [1, 2, 3], [[1]]),
        (h_star_args, [1, 2, 3], [[1, [2, 3]]]),
        (h_star_args, [1], [[1, []]]),
        (h_only_star, ["a", {"b": 1}], [["a", {"b": 1}]]),
        (h_sync_without_socket, ["x", "y"], [["x"]]),
        (h_socket_last, [1, 2], [[1, 2, "/"]]),
        (h_none, [1], []),
        (h_tuple, [], [1, "two", None]),
        (h_list, [], [[1, 2]]),
        (h_keyword_only, [1, 2], [[1, True]]),
    ],
    ids=lambda v: getattr(v, "__name__", None),
)
def test_handler_binding(func: Callable[..., Any], args: list[Any], ack: list[Any]) -> None:
    rt = Realtime()
    rt.on("event")(func)
    with TestClient(app_with(rt)) as client, sio(client) as ws:
        assert call(ws, "event", *args) == ack


def test_socket_found_when_another_annotation_cannot_be_resolved() -> None:
    """One unresolvable hint (a class local to a function) must not hide the Socket parameter."""

    class Local:
        pass

    async def h(socket: Socket, value: Local) -> list[Any]:
        return [isinstance(socket, Socket), value]

    rt = Realtime()
    rt.on("event")(h)
    with TestClient(app_with(rt)) as client, sio(client) as ws:
        assert call(ws, "event", 7) == [[True, 7]]


def test_keyword_only_without_default_refused() -> None:
    async def h(socket: Socket, *, needed: int) -> None:
        pass

    with pytest.raises(TypeError):
        RealtimeRouter().on("event")(h)


# --------------------------------------------------------------------------- serialisation


class Color(enum.Enum):
    RED = "red"


class Size(enum.IntEnum):
    LARGE = 3


class Item(BaseModel):
    name: str
    when: datetime.datetime
    id: uuid.UUID
    color: Color
    price: decimal.Decimal
    tags: set[str] = set()


@dataclasses.dataclass
class Point:
    x: int
    y: int


WHEN = datetime.datetime(2024, 1, 2, 3, 4, 5, 600000, tzinfo=datetime.timezone.utc)
ID = uuid.UUID("12345678-1234-5678-1234-567812345678")
VALUES: list[Any] = [
    Item(name="a", when=WHEN, id=ID, color=Color.RED, price=decimal.Decimal("1.50"), tags={"t"}),
    WHEN,
    WHEN.date(),
    datetime.timedelta(seconds=90),
    ID,
    Color.RED,
    Size.LARGE,
    decimal.Decimal("2.5"),
    Point(1, 2),
    {"nested": [Item(name="b", when=WHEN, id=ID, color=Color.RED, price=decimal.Decimal(3))]},
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_emit_serialises_like_fastapi(value: Any) -> None:
    rt = Realtime()

    @rt.on("get")
    async def get(socket: Socket) -> Any:
        await socket.emit("value", value)
        return value

    expected = jsonable_encoder(value)
    with TestClient(app_with(rt)) as client, sio(client) as ws:
        ws.send_text('421["get"]')
        frame = ws.receive_text()
        assert frame.startswith("42[")
        assert json.loads(frame[2:]) == ["value", expected]
        assert json.loads(ws.receive_text()[3:]) == [expected]


def test_broadcast_serialises_like_fastapi() -> None:
    rt = Realtime()

    @rt.on("all")
    async def everyone(socket: Socket) -> None:
        await socket.server.emit("values", *VALUES)

    with TestClient(app_with(rt)) as client, sio(client) as ws:
        ws.send_text('42["all"]')
        assert json.loads(ws.receive_text()[2:]) == ["values", *jsonable_encoder(VALUES)]


def test_bytes_travel_as_attachments() -> None:
    rt = Realtime()

    @rt.on("bin")
    async def binary(socket: Socket, blob: bytes) -> tuple[bytes, str]:
        return blob[::-1], type(blob).__name__

    with TestClient(app_with(rt)) as client, sio(client) as ws:
        ws.send_text('451-1["bin",{"_placeholder":true,"num":0}]')
        ws.send_bytes(b"\x01\x02\x03")
        assert ws.receive_text() == '461-1[{"_placeholder":true,"num":0},"bytes"]'
        assert ws.receive_bytes() == b"\x03\x02\x01"
