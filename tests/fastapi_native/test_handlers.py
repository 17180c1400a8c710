"""FastAPI-native handlers: Depends, request data, pydantic, middleware, exception handlers.

Everything goes through the in-process test client, so real protocol bytes reach the real
ASGI app.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

import pytest
from fastapi import Cookie, Depends, FastAPI, Header, Query, Request
from pydantic import BaseModel, Field

from fastapi_realtime import (
    Auth,
    ConnectionRejected,
    CurrentRealtime,
    CurrentSocket,
    Realtime,
    RealtimeRouter,
    Socket,
)
from fastapi_realtime.testing import RealtimeTestClient


class Message(BaseModel):
    room: Annotated[str, Field(min_length=1, max_length=20)]
    text: Annotated[str, Field(max_length=50)]


class Receipt(BaseModel):
    ok: bool
    length: int


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Color(enum.Enum):
    RED = "red"


log: list[str] = []


async def current_user(x_user: Annotated[str | None, Header()] = None) -> str:
    return x_user or "anonymous"


async def session_token(token: Annotated[str | None, Cookie()] = None) -> AsyncIterator[str]:
    log.append("open")
    yield token or "none"
    log.append("close")  # runs after the handler: generator cleanup


def counted() -> int:
    log.append("counted")
    return len(log)


async def both_counted(a: int = Depends(counted), b: int = Depends(counted)) -> tuple[int, int]:
    return a, b  # cached per event: the same value twice


async def identity(socket: CurrentSocket, auth: Auth, server: CurrentRealtime) -> dict[str, Any]:
    return {"sid": socket.id, "auth": auth, "server": type(server).__name__}


def build() -> tuple[FastAPI, Realtime]:
    realtime = Realtime()
    router = RealtimeRouter(dependencies=[Depends(lambda: log.append("router-dependency"))])

    @router.on("connect")
    async def connect(socket: Socket, auth: Auth, user: str = Depends(current_user)) -> None:
        if auth.get("refuse"):
            raise ConnectionRejected("refused", data={"user": user})
        socket.data["user"] = user

    @router.on("whoami")
    async def whoami(socket: Socket, user: str = Depends(current_user)) -> list[str]:
        return [user, socket.data["user"]]

    @router.on("token")
    async def token(socket: Socket, value: str = Depends(session_token)) -> str:
        log.append("handler")
        return value

    @router.on("query")
    async def query(socket: Socket, room: Annotated[str, Query()] = "none") -> str:
        return room

    @router.on("request")
    async def request(socket: Socket, request: Request) -> str:
        return request.headers.get("x-user", "")

    @router.on("cached")
    async def cached(socket: Socket, pair: tuple[int, int] = Depends(both_counted)) -> list[int]:
        return list(pair)

    @router.on("identity")
    async def ident(socket: Socket, data: dict[str, Any] = Depends(identity)) -> dict[str, Any]:
        return data

    @router.on("send")
    async def send(socket: Socket, msg: Message) -> Receipt:
        return Receipt(ok=True, length=len(msg.text))

    @router.on("bad-ack")
    async def bad_ack(socket: Socket) -> Receipt:
        return {"ok": "not a bool"}  # type: ignore[return-value]

    @router.on("point")
    async def point(socket: Socket, p: Point, when: datetime.date) -> dict[str, Any]:
        return {"sum": p.x + p.y, "year": when.year}

    @router.on("encode")
    async def encode(socket: Socket) -> None:
        await socket.emit(
            "encoded",
            Receipt(ok=True, length=1),
            Point(1, 2),
            datetime.datetime(2026, 1, 2, 3, 4, 5),
            uuid.UUID(int=1),
            Color.RED,
        )

    class Teapot(Exception):
        pass

    @router.on("teapot")
    async def teapot(socket: Socket) -> None:
        raise Teapot("secret detail")

    @router.on("crash")
    async def crash(socket: Socket) -> None:
        raise RuntimeError("secret detail")

    @router.exception_handler(Teapot)
    async def on_teapot(socket: Socket, exc: Teapot) -> dict[str, Any]:
        return {"error": "teapot"}

    @realtime.event_middleware  # server level: it runs before the handler is looked up
    async def shout(socket: Socket, event: Any, args: list[Any], call_next: Any) -> Any:
        if event == "forbidden":
            raise PermissionError("no")
        if event == "shout":
            return await call_next("echo", [str(a).upper() for a in args])
        return await call_next(event, args)

    @router.on("echo")
    async def echo(socket: Socket, *args: Any) -> tuple[Any, ...]:
        return args

    realtime.include_router(router)

    @realtime.exception_handler(PermissionError)
    async def on_permission(socket: Socket, exc: PermissionError) -> dict[str, str]:
        return {"error": "forbidden"}

    app = FastAPI()
    app.include_router(realtime.router)
    return app, realtime


@pytest.fixture()
def client() -> Any:
    app, _ = build()
    with RealtimeTestClient(app) as client:
        yield client


def test_dependency_reads_handshake_headers(client: Any) -> None:
    sio = client.connect(headers={"x-user": "ada"})
    assert sio.call("whoami") == ["ada", "ada"]
    assert sio.call("request") == "ada"


def test_generator_dependency_cleanup_runs_after_the_handler(client: Any) -> None:
    sio = client.connect(headers={"cookie": "token=abc"})
    log.clear()
    assert sio.call("token") == "abc"
    assert log[-3:] == ["open", "handler", "close"]


def test_query_parameter_from_the_handshake(client: Any) -> None:
    assert client.connect(query={"room": "blue"}).call("query") == "blue"


def test_per_event_cache_and_router_dependencies(client: Any) -> None:
    sio = client.connect()
    log.clear()
    first = sio.call("cached")
    assert first[0] == first[1]  # one call per event, shared by both dependants
    assert log.count("counted") == 1 and "router-dependency" in log
    log.clear()
    sio.call("cached")
    assert log.count("counted") == 1  # the next event solves again, once


def test_dependency_overrides_are_honoured() -> None:
    app, _ = build()
    app.dependency_overrides[current_user] = lambda: "override"
    with RealtimeTestClient(app) as client:
        assert client.connect(headers={"x-user": "ada"}).call("whoami") == ["override", "override"]


def test_socket_server_and_auth_inside_dependencies(client: Any) -> None:
    sio = client.connect(auth={"k": 1})
    data = sio.call("identity")
    assert data == {"sid": sio.id, "auth": {"k": 1}, "server": "Realtime"}


def test_connect_handler_dependency_and_rejection(client: Any) -> None:
    with pytest.raises(Exception) as info:
        client.connect(auth={"refuse": True}, headers={"x-user": "eve"})
    assert "refused" in str(info.value)


def test_pydantic_payload_and_ack_model(client: Any) -> None:
    sio = client.connect()
    assert sio.call("send", {"room": "r", "text": "hello"}) == {"ok": True, "length": 5}
    assert sio.call("point", {"x": "1", "y": 2}, "2026-11-25") == {"sum": 3, "year": 2026}


def test_invalid_payload_gets_a_422_like_ack(client: Any) -> None:
    sio = client.connect()
    reply = sio.call("send", {"room": "", "text": 5})
    assert reply["error"] == "validation_error"
    locs = {tuple(item["loc"]) for item in reply["detail"]}
    assert ("args", "msg", "room") in locs and ("args", "msg", "text") in locs
    assert all({"type", "loc", "msg"} <= item.keys() for item in reply["detail"])


def test_invalid_payload_without_ack_gets_an_error_event(client: Any) -> None:
    sio = client.connect()
    sio.emit("send", {"room": "r"})
    error = sio.wait_for("error")
    assert error["event"] == "send" and error["error"] == "validation_error"


def test_return_annotation_validates_the_ack(client: Any) -> None:
    reply = client.connect().call("bad-ack")
    assert reply == {"error": "internal_error", "message": "Internal server error"}


def test_emit_encodes_like_fastapi(client: Any) -> None:
    sio = client.connect()
    sio.emit("encode")
    assert sio.wait_for("encoded") == (
        {"ok": True, "length": 1},
        {"x": 1, "y": 2},
        "2026-01-02T03:04:05",
        "00000000-0000-0000-0000-000000000001",
        "red",
    )


def test_exception_handlers_and_the_default(client: Any) -> None:
    sio = client.connect()
    assert sio.call("teapot") == {"error": "teapot"}  # router-level handler
    reply = sio.call("crash")
    assert reply == {"error": "internal_error", "message": "Internal server error"}
    assert "secret" not in str(reply)


def test_event_middleware_transforms_and_refuses(client: Any) -> None:
    sio = client.connect()
    assert sio.call("shout", "a", "b") == ("A", "B")
    assert sio.call("forbidden") == {"error": "forbidden"}  # server-level handler


def test_two_handlers_for_one_event_fail_at_include_time() -> None:
    realtime = Realtime()
    first, second = RealtimeRouter("/x"), RealtimeRouter("/x")
    first.on("e")(lambda: None)
    second.on("e")(lambda: None)
    realtime.include_router(first)
    with pytest.raises(ValueError, match="two handlers for event 'e'"):
        realtime.include_router(second)
