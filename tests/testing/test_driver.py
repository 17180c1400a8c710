"""The in-memory ASGI driver on tiny raw ASGI apps: lifespan, HTTP exchanges, WebSocket refusal."""

from __future__ import annotations

from typing import Any

import pytest

from fastapi_realtime._types import Receive, Scope, Send
from fastapi_realtime.testing import ConnectionRefused
from fastapi_realtime.testing.driver import AsgiDriver, HttpExchange, WebSocketExchange

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(10)]


async def no_lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    """An app that does not do lifespan: it returns at once."""


async def test_an_app_without_lifespan_starts_and_stops() -> None:
    driver = AsgiDriver(no_lifespan)
    await driver.startup()
    await driver.shutdown()


async def test_lifespan_failures_are_raised() -> None:
    async def failing(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no database"})

    with pytest.raises(RuntimeError, match="lifespan startup failed: no database"):
        await AsgiDriver(failing).startup()

    async def raising(scope: Scope, receive: Receive, send: Send) -> None:
        raise ValueError("broken")

    with pytest.raises(ValueError, match="broken"):
        await AsgiDriver(raising).startup()


async def test_lifespan_state_is_copied_into_each_request() -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                scope["state"]["db"] = "up"
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        seen.append(scope["state"])
        request = await receive()
        await send({"type": "http.response.start", "status": 201, "headers": [(b"x-a", b"1")]})
        await send({"type": "http.response.body", "body": request["body"][:2], "more_body": True})
        await send({"type": "http.response.body", "body": request["body"][2:]})

    driver = AsgiDriver(app)
    await driver.startup()
    scope = driver.scope("http", "/p", {"q": "1"}, [("X-Test", "v")])
    scope["method"] = "POST"
    assert scope["query_string"] == b"q=1" and (b"x-test", b"v") in scope["headers"]
    response = await HttpExchange(driver, scope, b"hello").answer()
    assert response is not None and (response.status, response.body) == (201, b"hello")
    assert response.headers == [(b"x-a", b"1")]
    assert seen == [{"db": "up"}] and seen[0] is not driver.state
    await driver.shutdown()
    assert driver.errors == []


async def test_an_aborted_request_has_no_answer_and_app_errors_are_kept() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        assert (await receive())["type"] == "http.disconnect"
        raise ZeroDivisionError

    driver = AsgiDriver(app)
    exchange = HttpExchange(driver, driver.scope("http", "/", {}, []), b"")
    exchange.abort()
    assert await exchange.answer() is None and not exchange.answered
    await driver.wait_idle(1.0)
    assert [type(error) for error in driver.errors] == [ZeroDivisionError]


async def test_a_websocket_closed_before_accept_is_refused_with_its_code() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.close", "code": 1008})

    driver = AsgiDriver(app)
    frames: list[str | bytes] = []
    ws = WebSocketExchange(driver, driver.scope("websocket", "/", {}, []), frames.append, lambda: None)
    with pytest.raises(ConnectionRefused) as refused:
        await ws.accepted
    assert refused.value.data == {"code": 1008} and frames == []
    await driver.wait_idle(1.0)
