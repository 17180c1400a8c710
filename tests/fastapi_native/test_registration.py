"""Registration mistakes are refused when the decorator runs or `include_router` is called,
with a message saying what to write instead; legitimate handlers that look a little like the
mistakes keep working.

The types handlers use are declared at module level: under `from __future__ import
annotations` a class local to a test function could not be resolved from the handler's
annotations.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from fastapi import APIRouter, Depends, FastAPI
from pydantic import BaseModel, ConfigDict

from fastapi_realtime import Realtime, RealtimeRouter, Socket
from fastapi_realtime.testing import RealtimeTestClient

pytestmark = pytest.mark.timeout(30)


def serve(realtime: Realtime) -> FastAPI:
    app = FastAPI()
    app.include_router(realtime.router)
    return app


class Foo:
    """A class pydantic knows nothing about."""


class Lazy(BaseModel):
    model_config = ConfigDict(defer_build=True)
    x: int


class LazyBroken(BaseModel):
    # defer_build: pydantic would only notice the Queue at the first event; registration does.
    model_config = ConfigDict(defer_build=True)
    queue: asyncio.Queue[int]


class Board(BaseModel):
    square: Square  # declared further down the module, after handlers may be registered


class Square(BaseModel):
    name: str


class Pending(BaseModel):
    square: Later  # noqa: F821 - set on the module by the test that needs it


class Missing(BaseModel):
    square: NeverDefined  # noqa: F821 - never defined: refused at include time


# -- 1. generator functions -------------------------------------------------------------------


async def stream(socket: Socket) -> AsyncIterator[int]:
    yield 1


def chunks(socket: Socket) -> Iterator[int]:
    yield 1


@pytest.mark.parametrize("func", [stream, chunks], ids=["async", "sync"])
def test_generator_handlers_are_refused(func: Any) -> None:
    router = RealtimeRouter()
    kind = "an async generator function" if func is stream else "a generator function"
    for register in (router.on("e"), router.on("connect"), router.on("disconnect"), router.on_any()):
        with pytest.raises(TypeError, match=f"handler {func.__name__} is {kind}.*returns its ack"):
            register(func)
    with pytest.raises(TypeError, match="returns its ack"):
        Realtime().on("e")(func)
    assert not router.table.events and router.table.connect is None and router.table.any is None


@pytest.mark.parametrize("func", [stream, chunks], ids=["async", "sync"])
def test_generator_callbacks_are_refused_on_routers(func: Any) -> None:
    router = RealtimeRouter()
    with pytest.raises(TypeError, match="exception handler .* returns the ack"):
        router.exception_handler(KeyError)(func)
    with pytest.raises(TypeError, match="connect middleware runs once"):
        router.use(func)
    with pytest.raises(TypeError, match=r"return await call_next\(event, args\)"):
        router.event_middleware(func)


def test_a_callable_object_with_a_generator_call_is_refused() -> None:
    class Streamer:
        async def __call__(self, socket: Socket) -> AsyncIterator[int]:
            yield 1

    with pytest.raises(TypeError, match="async generator function"):
        RealtimeRouter().on("e")(Streamer())


# Needs server.py: Realtime.exception_handler, Realtime.use and Realtime.event_middleware
# call check_callable (see the report).
@pytest.mark.parametrize("func", [stream, chunks], ids=["async", "sync"])
def test_generator_callbacks_are_refused_on_the_server(func: Any) -> None:
    realtime = Realtime()
    with pytest.raises(TypeError, match="exception handler .* returns the ack"):
        realtime.exception_handler(KeyError)(func)
    with pytest.raises(TypeError, match="connect middleware runs once"):
        realtime.use(func)
    with pytest.raises(TypeError, match=r"return await call_next\(event, args\)"):
        realtime.event_middleware(func)


# -- 2. python-socketio-style handlers ----------------------------------------------------------


def test_a_python_socketio_event_handler_is_refused_with_the_right_signature() -> None:
    async def message(sid, data):  # type: ignore[no-untyped-def]
        ...

    with pytest.raises(TypeError) as info:
        RealtimeRouter().on("message")(message)
    assert str(info.value) == (
        "handler message(sid, data) looks like a python-socketio handler; here the first parameter is "
        "the Socket: async def message(socket: Socket, data): ... (use socket.id for the sid)"
    )


def test_python_socketio_connect_disconnect_and_catch_all_are_refused() -> None:
    router = RealtimeRouter()

    def connect(sid, environ, auth):  # type: ignore[no-untyped-def]
        ...

    async def disconnect(sid: str, reason: str) -> None: ...

    async def catch_all(event, sid, data):  # type: ignore[no-untyped-def]
        ...

    with pytest.raises(TypeError) as info:
        router.on("connect")(connect)
    assert "def connect(socket: Socket, auth): ..." in str(info.value)
    assert "socket.handshake for the environ" in str(info.value)
    with pytest.raises(TypeError, match=r"async def disconnect\(socket: Socket, reason: str\): \.\.\."):
        router.on("disconnect")(disconnect)
    with pytest.raises(TypeError, match=r"async def catch_all\(socket: Socket, event, data\): \.\.\."):
        router.on_any()(catch_all)
    with pytest.raises(TypeError, match="python-socketio"):
        Realtime().on("connect")(connect)
    assert router.table.connect is None and router.table.disconnect is None and router.table.any is None


def get_sid() -> str:
    return "from-dependency"


def test_handlers_with_a_parameter_named_sid_on_purpose_still_work() -> None:
    realtime = Realtime()

    @realtime.on("echo")
    async def echo(socket: Socket, sid: str) -> str:  # the Socket is there: sid is an event argument
        return sid

    @realtime.on("who")
    async def who(sid: Socket) -> str:  # the first parameter is the Socket, just named sid
        return "socket" if sid.id else "none"

    @realtime.on("pair")
    async def pair(room: str, sid: str) -> list[str]:  # no Socket, but sid is not first
        return [room, sid]

    @realtime.on("injected")
    async def injected(sid: str = Depends(get_sid)) -> str:  # asked for from a dependency
        return sid

    router = RealtimeRouter()

    @router.on_any()
    async def anything(socket: Socket, event: str, sid: str = "") -> list[str]:
        return [event, sid]

    realtime.include_router(router)

    with RealtimeTestClient(serve(realtime)) as client:
        sio = client.connect()
        assert sio.call("echo", "abc") == "abc"
        assert sio.call("who") == "socket"
        assert sio.call("pair", "r", "s") == ["r", "s"]
        assert sio.call("injected") == "from-dependency"
        assert sio.call("other", "x") == ["other", "x"]


# -- 3. types pydantic cannot validate ---------------------------------------------------------


def test_a_parameter_type_pydantic_cannot_validate_is_refused() -> None:
    router = RealtimeRouter()

    async def move(socket: Socket, board: Foo) -> None: ...

    with pytest.raises(TypeError) as info:
        router.on("move")(move)
    assert str(info.value).startswith(
        "handler move: parameter 'board' has type Foo, which pydantic cannot validate; "
    )
    assert "Any" in str(info.value) and "Depends" in str(info.value)
    assert "move" not in router.table.events


def test_unvalidatable_types_anywhere_are_refused() -> None:
    router = RealtimeRouter()

    async def queue(socket: Socket, q: asyncio.Queue[int]) -> None: ...

    async def rest(socket: Socket, *items: Foo) -> None: ...

    async def nested(socket: Socket, boards: list[Foo] | None = None) -> None: ...

    async def lazy(socket: Socket, value: LazyBroken) -> None: ...

    with pytest.raises(TypeError, match=r"parameter 'q' has type Queue\[int\], which"):
        router.on("queue")(queue)
    with pytest.raises(TypeError, match=r"parameter '\*items' has type Foo"):
        router.on("rest")(rest)
    with pytest.raises(TypeError, match=r"parameter 'boards' has type list\[Foo\] \| None, which pydantic"):
        router.on("nested")(nested)
    with pytest.raises(TypeError, match="parameter 'value' has type LazyBroken, which pydantic cannot validate"):
        router.on("lazy")(lazy)
    with pytest.raises(TypeError, match="parameter 'q'"):
        router.on_any()(queue)


def test_an_unvalidatable_ack_type_is_refused() -> None:
    router = RealtimeRouter()

    async def make(socket: Socket) -> Foo:
        return Foo()

    async def plain(socket: Socket) -> Any:
        return None

    with pytest.raises(TypeError, match="handler make: the return annotation has type Foo.*response_model=None"):
        router.on("make")(make)
    with pytest.raises(TypeError, match="handler plain: response_model has type Foo"):
        router.on("plain", response_model=Foo)(plain)
    router.on("make", response_model=None)(make)  # the way out the message names


def test_parameters_that_are_not_validated_may_have_any_type() -> None:
    def get_foo() -> Foo:
        return Foo()

    @RealtimeRouter().on("fine")
    async def fine(socket: Socket, value: Any, raw: Any, foo: Foo = Depends(get_foo)) -> None: ...


def test_deferred_models_are_built_at_registration_and_work() -> None:
    realtime = Realtime()

    @realtime.on("lazy")
    async def lazy(socket: Socket, value: Lazy) -> Lazy:
        return Lazy(x=value.x + 1)

    spec = realtime.of("/").table.events["lazy"]
    assert all(v is None or v.pydantic_complete for v in spec.validators)
    with RealtimeTestClient(serve(realtime)) as client:
        assert client.connect().call("lazy", {"x": "1"}) == {"x": 2}


def test_a_forward_reference_may_be_defined_after_registration(monkeypatch: pytest.MonkeyPatch) -> None:
    """A model referring to one declared further down the module is built at include time."""
    realtime = Realtime()
    router = RealtimeRouter()

    @router.on("board")
    async def board(socket: Socket, value: Board) -> str:
        return value.square.name

    @router.on("pending")
    async def pending(socket: Socket, value: Pending) -> str:
        return type(value.square).__name__

    class Later(BaseModel):  # only now does the name exist
        name: str

    monkeypatch.setattr(sys.modules[__name__], "Later", Later, raising=False)
    realtime.include_router(router)
    with RealtimeTestClient(serve(realtime)) as client:
        sio = client.connect()
        assert sio.call("board", {"square": {"name": "e4"}}) == "e4"
        assert sio.call("pending", {"square": {"name": "e4"}}) == "Later"


def test_a_name_still_undefined_at_include_time_is_refused() -> None:
    realtime = Realtime()
    router = RealtimeRouter()

    @router.on("missing")
    async def missing(socket: Socket, value: Missing) -> None: ...

    message = "handler missing: parameter 'value' has type Missing, which refers to 'NeverDefined', a name that is not defined"
    with pytest.raises(TypeError, match=message):
        realtime.include_router(router)
    assert "missing" not in realtime.of("/").table.events


def test_a_failed_include_can_be_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    """The include is recorded only once it succeeded: fixing the cause and including again works."""
    realtime = Realtime()
    router = RealtimeRouter()

    class Retry(BaseModel):
        square: Retried  # noqa: F821

    monkeypatch.setattr(sys.modules[__name__], "Retry", Retry, raising=False)

    @router.on("retry")
    async def retry(socket: Socket, value: Retry) -> str:
        return value.square.name

    with pytest.raises(TypeError, match="refers to 'Retried'"):
        realtime.include_router(router)
    monkeypatch.setattr(sys.modules[__name__], "Retried", Square, raising=False)
    realtime.include_router(router)
    assert "retry" in realtime.of("/").table.events


# -- 4. including the wrong object, twice, or in a cycle ----------------------------------------


# Needs server.py: Realtime.include_router calls check_router first (see the report).
def test_including_a_fastapi_router_in_the_server_says_what_to_do() -> None:
    realtime = Realtime()
    message = (
        r"include_router takes a RealtimeRouter, not APIRouter; to serve the realtime endpoint "
        r"in a FastAPI app use app\.include_router\(realtime\.router\)"
    )
    with pytest.raises(TypeError, match=message):
        realtime.include_router(APIRouter())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"not FastAPI; .*app\.include_router\(realtime\.router\)"):
        realtime.include_router(FastAPI())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not a Realtime server"):
        realtime.include_router(Realtime())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"not the class: RealtimeRouter\(\.\.\.\)"):
        realtime.include_router(RealtimeRouter)  # type: ignore[arg-type]


def test_including_the_wrong_object_in_a_router_says_what_to_do() -> None:
    router = RealtimeRouter()
    with pytest.raises(TypeError, match=r"not APIRouter; .*app\.include_router\(realtime\.router\)"):
        router.include_router(APIRouter())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not a Realtime server"):
        router.include_router(Realtime())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not int"):
        router.include_router(3)  # type: ignore[arg-type]
    assert router.routers == []


# Needs server.py: `routes = _contains_router = NotAnAPIRouter()` in the Realtime class body.
def test_including_the_server_in_a_fastapi_app_says_what_to_do() -> None:
    app = FastAPI()
    with pytest.raises(TypeError, match=r"use app\.include_router\(realtime\.router\)"):
        app.include_router(Realtime())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"use app\.include_router\(realtime\.router\)"):
        APIRouter().include_router(Realtime(), prefix="/rt")  # type: ignore[arg-type]


def test_mounting_the_server_still_works_beside_named_routes() -> None:
    """Starlette's Mount reads the mounted app's `routes` with a default (url_for walks it)."""
    from starlette.testclient import TestClient

    app = FastAPI()
    app.mount("/rt", Realtime(), name="rt")

    @app.get("/home", name="home")
    async def home() -> dict[str, str]:
        return {"rt": app.url_path_for("rt", path="/")}

    with TestClient(app) as http:
        assert http.get("/home").json() == {"rt": "/rt/"}
        assert http.get("/rt/", params={"EIO": "4", "transport": "polling"}).status_code == 200


# Needs server.py: Realtime.include_router calls check_router first and mark_included last.
def test_including_a_router_twice_in_the_server_is_refused() -> None:
    realtime = Realtime()
    router = RealtimeRouter("/chat")
    router.use(lambda socket: None)  # middlewares only: the handler merge would not notice
    realtime.include_router(router)
    with pytest.raises(ValueError, match=r"router <RealtimeRouter '/chat'> is already included in the server"):
        realtime.include_router(router)
    with pytest.raises(ValueError, match="already included"):
        realtime.include_router(router, namespace="/chat")
    assert len(realtime.of("/chat").table.middlewares) == 1


def test_a_router_may_serve_several_namespaces_and_several_servers() -> None:
    router = RealtimeRouter()

    @router.on("ping")
    async def ping(socket: Socket) -> str:
        return socket.namespace

    realtime = Realtime()
    realtime.include_router(router, namespace="/a")
    realtime.include_router(router, namespace="/b")
    other = Realtime()
    other.include_router(router)
    with RealtimeTestClient(serve(realtime)) as client:
        assert client.connect("/a").call("ping") == "/a"
        assert client.connect("/b").call("ping") == "/b"


def test_including_a_router_twice_in_a_router_is_refused() -> None:
    parent, child = RealtimeRouter(), RealtimeRouter("/child")
    child.on("e")(lambda: None)
    parent.include_router(child)
    message = r"router <RealtimeRouter '/child' events: e> is already included in <RealtimeRouter '/'>"
    with pytest.raises(ValueError, match=message):
        parent.include_router(child)
    parent.include_router(child, namespace="/elsewhere")  # another namespace is another include
    assert len(parent.routers) == 2


def test_a_router_including_an_ancestor_is_refused() -> None:
    top, middle, bottom = RealtimeRouter("/top"), RealtimeRouter("/middle"), RealtimeRouter("/bottom")
    top.include_router(middle)
    middle.include_router(bottom)
    with pytest.raises(ValueError, match="a router cannot include itself"):
        top.include_router(top)
    message = r"router <RealtimeRouter '/top'> already includes <RealtimeRouter '/bottom'>.*cycle"
    with pytest.raises(ValueError, match=message):
        bottom.include_router(top)
    with pytest.raises(ValueError, match="cycle"):
        middle.include_router(top)
    assert bottom.routers == [] and len(middle.routers) == 1


# -- 5. duplicate events still fail ------------------------------------------------------------


def test_duplicate_handlers_are_still_refused() -> None:
    router = RealtimeRouter()
    router.on("e")(lambda: None)
    with pytest.raises(ValueError, match="two handlers for event 'e'"):
        router.on("e")(lambda: None)
    router.on("connect")(lambda: None)
    with pytest.raises(ValueError, match="two 'connect' handlers"):
        router.on("connect")(lambda: None)

    realtime = Realtime()
    first, second = RealtimeRouter(), RealtimeRouter()
    first.on("taken")(lambda: None)
    second.on("taken")(lambda: None)
    parent = RealtimeRouter()
    parent.include_router(first)
    parent.include_router(second)  # nesting is fine; the clash is found when served
    with pytest.raises(ValueError, match="two handlers for event 'taken' in namespace '/'"):
        realtime.include_router(parent)
