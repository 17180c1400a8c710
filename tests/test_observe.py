"""The observation seam: an observer added to a running server hears, in order, what the Admin
UI, the metrics and the traces are built on. The app is driven through the in-memory test client
(the real ASGI app, real Engine.IO and Socket.IO bytes)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from fastapi_realtime import Realtime, Socket
from fastapi_realtime.observe import Observation, Observer, Observers
from fastapi_realtime.testing import RealtimeTestClient


class Recorder(Observer):
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def engine_opened(self, session: Any) -> None:
        self.calls.append(("engine_opened", str(session.transport)))

    def engine_refused(self, transport: str, code: int, message: str) -> None:
        self.calls.append(("engine_refused", transport, code, message))

    def engine_closed(self, session: Any, reason: str) -> None:
        self.calls.append(("engine_closed", reason))

    def connect_started(self, nsp: str, sid: str, session: Any) -> Any:
        self.calls.append(("connect_started", nsp))
        return ("token", nsp)

    def connect_finished(self, token: Any, error: str | None) -> None:
        self.calls.append(("connect_finished", token, error))

    def socket_connected(self, socket: Any) -> None:
        self.calls.append(("socket_connected", socket.namespace))

    def socket_disconnected(self, socket: Any, reason: str) -> None:
        self.calls.append(("socket_disconnected", reason))

    def room_joined(self, nsp: str, room: str, sid: str) -> None:
        if room != sid:
            self.calls.append(("room_joined", nsp, room))

    def room_left(self, nsp: str, room: str, sid: str) -> None:
        if room != sid:
            self.calls.append(("room_left", nsp, room))

    def event_received(self, socket: Any, event: Any, args: Any) -> None:
        self.calls.append(("event_received", event, list(args)))

    def event_sent(self, nsp: str, sid: str | None, data: Any, count: int) -> None:
        self.calls.append(("event_sent", nsp, sid is not None, list(data), count))

    def handler_started(self, socket: Any, event: Any) -> Any:
        self.calls.append(("handler_started", event))
        return event

    def handler_finished(self, token: Any, error: BaseException | None) -> None:
        self.calls.append(("handler_finished", token, type(error).__name__ if error else None))

    def ack_received(self, nsp: str, seconds: float) -> None:
        self.calls.append(("ack_received", nsp, seconds >= 0))


def make_app() -> Realtime:
    rt = Realtime()

    @rt.on("connect")
    async def connect(socket: Socket, auth: Any) -> None:
        if auth == {"no": True}:
            from fastapi_realtime import ConnectionRejected

            raise ConnectionRejected("go away")

    @rt.on("join")
    async def join(socket: Socket, room: str) -> None:
        await socket.join(room)

    @rt.on("shout")
    async def shout(socket: Socket, text: str) -> None:
        await rt.to("r").emit("shouted", text)

    @rt.on("ask")
    async def ask(socket: Socket) -> Any:
        return await socket.emit_with_ack("q", 1)

    @rt.on("fail")
    async def fail(socket: Socket) -> None:
        raise KeyError("x")

    return rt


def test_observer_hears_a_session() -> None:
    rt = make_app()
    recorder = Recorder()
    rt.observe(recorder)
    with RealtimeTestClient(rt) as client:
        sock = client.connect()
        sock.on("q", lambda n: n + 1)
        sock.call("join", "r")
        sock.call("shout", "hi")
        assert sock.wait_for("shouted") == "hi"
        assert sock.call("ask") == 2
        sock.emit("fail")
        sock.call("join", "r2")
        with pytest.raises(Exception):
            client.connect(auth={"no": True})
        sock.disconnect()
    calls = recorder.calls
    assert calls[0] == ("engine_opened", "websocket")
    assert ("connect_started", "/") in calls and ("connect_finished", ("token", "/"), None) in calls
    assert ("socket_connected", "/") in calls
    assert ("room_joined", "/", "r") in calls
    # The handler run brackets what happens inside it.
    shout = calls.index(("handler_started", "shout"))
    assert calls[shout - 1] == ("event_received", "shout", ["hi"])
    assert calls[shout + 1] == ("event_sent", "/", False, ["shouted", "hi"], 1)
    assert calls[shout + 2] == ("handler_finished", "shout", None)
    assert ("event_sent", "/", True, ["q", 1], 1) in calls
    assert ("ack_received", "/", True) in calls
    assert ("handler_finished", "fail", None) in calls  # the error was handled (logged) inside the run
    assert ("connect_finished", ("token", "/"), "go away") in calls
    assert ("socket_disconnected", "client namespace disconnect") in calls
    assert ("room_left", "/", "r") in calls and ("room_left", "/", "r2") in calls


def test_refusals_are_heard() -> None:
    rt = make_app()
    recorder = Recorder()
    rt.observe(recorder)

    async def get() -> int:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=rt), base_url="http://test") as http:
            response = await http.get("/socket.io/", params={"EIO": "3", "transport": "polling"})
            return response.status_code

    assert asyncio.run(get()) == 400
    assert ("engine_refused", "polling", 5, "Unsupported protocol version") in recorder.calls


def test_several_observers_and_removal() -> None:
    one, two = Recorder(), Recorder()
    observation = Observation()
    observation.add(one)
    assert observation.observer is one
    observation.add(two)
    assert isinstance(observation.observer, Observers)
    token = observation.observer.handler_started(None, "e")
    observation.observer.handler_finished(token, None)
    assert one.calls == two.calls == [("handler_started", "e"), ("handler_finished", "e", None)]
    observation.remove(one)
    assert observation.observer is two
    observation.remove(two)
    assert observation.observer is None


def test_nobody_observes_by_default() -> None:
    rt = Realtime()
    assert rt.observation.observer is None and rt.manager.observation is rt.observation
