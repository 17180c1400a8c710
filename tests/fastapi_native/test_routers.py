"""Routers compose like APIRouters: what a router adds (dependencies, event middlewares,
exception handlers) reaches its own handlers and those of routers nested in it, nobody else's.
Plus connect-time errors, HTTP dependencies, plain `def` handlers and include-time checks."""

from __future__ import annotations

import threading
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, Header
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from fastapi_realtime import ConnectionRejected, Realtime, RealtimeRouter, Socket
from fastapi_realtime.testing import ConnectionRefused, RealtimeTestClient

pytestmark = pytest.mark.timeout(30)


def serve(realtime: Realtime) -> FastAPI:
    app = FastAPI()
    app.include_router(realtime.router)
    return app


def test_router_middleware_and_exception_handlers_stay_in_their_routers() -> None:
    seen: list[str] = []
    realtime = Realtime()
    parent, child, sibling = RealtimeRouter(), RealtimeRouter(), RealtimeRouter()

    @parent.event_middleware
    async def outer(socket: Socket, event: Any, args: list[Any], call_next: Any) -> Any:
        seen.append(f"parent:{event}")
        return await call_next(event, args)

    @child.event_middleware
    async def inner(socket: Socket, event: Any, args: list[Any], call_next: Any) -> Any:
        seen.append(f"child:{event}")
        return await call_next(event, [a * 2 for a in args])

    @parent.exception_handler(LookupError)
    async def parent_lookup(socket: Socket, exc: LookupError) -> str:
        return "parent handled"

    @child.exception_handler(KeyError)
    def child_key(socket: Socket, exc: KeyError) -> str:  # a plain def works too
        return "child handled"

    @parent.on("p")
    async def p(socket: Socket, n: int) -> int:
        return n

    @child.on("c")
    async def c(socket: Socket, n: int) -> int:
        return n

    @child.on("key")
    async def key(socket: Socket) -> None:
        raise KeyError("x")

    @child.on("index")
    async def index(socket: Socket) -> None:
        raise IndexError("x")  # a LookupError: the parent's handler takes it

    @sibling.on("s")
    async def s(socket: Socket, n: int) -> int:
        return n

    @sibling.on("sibling-key")
    async def sibling_key(socket: Socket) -> None:
        raise KeyError("x")

    parent.include_router(child)
    realtime.include_router(parent)
    realtime.include_router(sibling)
    with RealtimeTestClient(serve(realtime)) as client:
        sio = client.connect()
        assert sio.call("p", 1) == 1
        assert sio.call("c", 1) == 2
        assert sio.call("s", 1) == 1
        assert seen == ["parent:p", "parent:c", "child:c"]  # the parent's wraps the child's
        assert sio.call("key") == "child handled"
        assert sio.call("index") == "parent handled"
        # Another router in the same namespace gets none of it.
        assert sio.call("sibling-key") == {"error": "internal_error", "message": "Internal server error"}


def test_a_routers_own_dependencies_reach_nested_routers() -> None:
    seen: list[str] = []
    parent = RealtimeRouter("/p", dependencies=[Depends(lambda: seen.append("parent"))])
    child = RealtimeRouter(dependencies=[Depends(lambda: seen.append("child"))])

    @child.on("hello")
    async def hello(socket: Socket) -> str:
        return socket.namespace

    parent.include_router(child, dependencies=[Depends(lambda: seen.append("include"))])
    realtime = Realtime()
    realtime.include_router(parent, dependencies=[Depends(lambda: seen.append("top"))])
    with RealtimeTestClient(serve(realtime)) as client:
        assert client.connect(namespace="/p").call("hello") == "/p"
    assert seen == ["top", "parent", "include", "child"]


class Credentials(BaseModel):
    token: str


def test_connect_validation_and_dependency_errors_are_rejections(caplog: pytest.LogCaptureFixture) -> None:
    realtime = Realtime()

    @realtime.on("connect")
    async def connect(socket: Socket, auth: Credentials, x_team: Annotated[str, Header()]) -> None:
        socket.data["team"] = x_team

    with RealtimeTestClient(serve(realtime)) as client:
        with pytest.raises(ConnectionRefused) as refused:
            client.connect(auth={"nope": 1}, headers={"x-team": "a"})
        assert refused.value.message == "Validation error"
        body = refused.value.data
        assert body["error"] == "validation_error"
        assert body["detail"][0]["loc"] == ["args", "auth", "token"]
        with pytest.raises(ConnectionRefused) as refused:
            client.connect(auth={"token": "t"})
        assert refused.value.data["detail"][0]["loc"] == ["header", "x-team"]
        assert client.connect(auth={"token": "t"}, headers={"x-team": "a"}).connected
    # The client's mistakes are no server errors.
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


bearer = HTTPBearer()


async def token(credentials: Annotated[HTTPAuthorizationCredentials, Depends(bearer)]) -> str:
    return credentials.credentials


def test_http_dependencies_work_unchanged() -> None:
    """A security dependency written for HTTP routes: its HTTPException becomes a clear answer."""
    realtime = Realtime()
    admin = RealtimeRouter("/admin", dependencies=[Depends(bearer)])

    @admin.on("connect")
    async def connect(socket: Socket) -> None:
        pass

    @realtime.on("whoami")
    async def whoami(socket: Socket, who: Annotated[str, Depends(token)]) -> str:
        return who

    realtime.include_router(admin)
    with RealtimeTestClient(serve(realtime)) as client:
        with pytest.raises(ConnectionRefused) as refused:
            client.connect(namespace="/admin")
        assert refused.value.message == "Not authenticated"
        assert refused.value.data == {"error": "http_error", "status_code": 401, "detail": "Not authenticated"}
        assert client.connect(namespace="/admin", headers={"authorization": "Bearer s3"}).connected
        anonymous = client.connect()
        reply = anonymous.call("whoami")
        assert reply["error"] == "http_error" and reply["detail"] == "Not authenticated"
        assert client.connect(headers={"authorization": "Bearer ada"}).call("whoami") == "ada"


def test_exception_handlers_decide_connect_errors() -> None:
    realtime = Realtime()
    router = RealtimeRouter()

    class Banned(Exception):
        pass

    @router.exception_handler(Banned)
    async def banned(socket: Socket, exc: Banned) -> ConnectionRejected:
        return ConnectionRejected("banned", data={"until": "tomorrow"})

    @realtime.exception_handler(LookupError)
    async def lookup(socket: Socket, exc: LookupError) -> dict[str, str]:
        return {"missing": str(exc)}

    @router.on("connect")
    async def connect(socket: Socket, auth: Any) -> None:
        if auth.get("who") == "mallory":
            raise Banned()
        if auth.get("who") is None:
            raise KeyError("who")

    realtime.include_router(router)
    with RealtimeTestClient(serve(realtime)) as client:
        with pytest.raises(ConnectionRefused) as refused:
            client.connect(auth={"who": "mallory"})
        assert (refused.value.message, refused.value.data) == ("banned", {"until": "tomorrow"})
        with pytest.raises(ConnectionRefused) as refused:
            client.connect(auth={})
        assert (refused.value.message, refused.value.data) == ("Connection rejected", {"missing": "'who'"})


def test_plain_def_handlers_run_off_the_event_loop() -> None:
    realtime = Realtime()

    @realtime.on("where")
    def where(socket: Socket, n: int) -> dict[str, Any]:
        return {"main": threading.current_thread() is threading.main_thread(), "n": n + 1}

    with RealtimeTestClient(serve(realtime)) as client:
        assert client.connect().call("where", 1) == {"main": False, "n": 2}


def test_a_failed_include_changes_nothing() -> None:
    realtime = Realtime()
    first, second = RealtimeRouter(), RealtimeRouter()
    first.on("taken")(lambda: None)
    second.on("new")(lambda: None)
    second.on("taken")(lambda: None)
    realtime.include_router(first)
    with pytest.raises(ValueError, match="two handlers for event 'taken'"):
        realtime.include_router(second)
    assert "new" not in realtime.of("/").table.events


def test_registration_mistakes_are_errors() -> None:
    router = RealtimeRouter()
    with pytest.raises(TypeError):
        router.exception_handler("KeyError")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Realtime(docs="no")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("mount", "url", "pathname"),
    [
        ("include", "/socket.io/asyncapi.json", "/socket.io"),
        ("prefix", "/api/socket.io/asyncapi.json", "/api/socket.io"),
        ("mount", "/rt/asyncapi.json", "/rt"),
    ],
)
def test_asyncapi_names_the_path_clients_use(mount: str, url: str, pathname: str) -> None:
    from starlette.testclient import TestClient

    realtime = Realtime()
    app = FastAPI()
    if mount == "mount":
        app.mount("/rt", realtime)
    else:
        app.include_router(realtime.router, prefix="/api" if mount == "prefix" else "")
    with TestClient(app) as http:
        document = http.get(url).json()
    assert document["servers"]["socketio"]["pathname"] == pathname


def test_concurrent_handlers_overlap_and_shutdown_waits_for_them() -> None:
    """In-order by default; `concurrent=True` lets a slow call overlap the next events, and
    shutdown still waits for it (its task is held, not left to the garbage collector)."""
    import asyncio

    realtime = Realtime()
    release = asyncio.Event()
    finished: list[str] = []

    @realtime.on("slow", concurrent=True)
    async def slow(socket: Socket, tag: str) -> str:
        await release.wait()
        finished.append(tag)
        return tag

    @realtime.on("fast")
    async def fast(socket: Socket) -> str:
        return "fast"

    @realtime.on("release")
    async def release_all(socket: Socket) -> None:
        release.set()

    with RealtimeTestClient(serve(realtime)) as client:
        sio = client.connect()
        sio.emit("slow", "a")
        sio.emit("slow", "b")
        assert sio.call("fast") == "fast"  # not stuck behind the waiting calls
        assert finished == []
        sio.emit("release")
        sio.emit("slow", "c")  # still waiting on nothing: finishes at once or during shutdown
    assert sorted(finished) == ["a", "b", "c"]
