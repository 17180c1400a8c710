"""The AsyncAPI document and docs page are served beside the realtime routes, and can be off."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.testclient import TestClient

from fastapi_realtime import Realtime, Socket


def _server(**options: object) -> Realtime:
    realtime = Realtime(**options)  # type: ignore[arg-type]

    @realtime.on("move")
    async def move(socket: Socket, x: int, y: int) -> str:
        return "ok"

    return realtime


def test_served_when_included_with_a_prefix() -> None:
    app = FastAPI()
    app.include_router(_server().router, prefix="/api")
    with TestClient(app) as client:
        document = client.get("/api/socket.io/asyncapi.json").json()
        assert document["asyncapi"] == "3.0.0"
        assert "move" in str(document["operations"])
        page = client.get("/api/socket.io/asyncapi")
        assert page.headers["content-type"].startswith("text/html") and "move" in page.text


def test_served_when_mounted() -> None:
    app = FastAPI()
    app.mount("/socket.io", _server())
    with TestClient(app) as client:
        assert client.get("/socket.io/asyncapi.json").json()["asyncapi"] == "3.0.0"
        assert client.get("/socket.io/asyncapi").status_code == 200


def test_switched_off() -> None:
    app = FastAPI()
    app.include_router(_server(docs=False).router)
    with TestClient(app) as client:
        assert client.get("/socket.io/asyncapi.json").status_code == 404
        assert client.get("/socket.io/asyncapi").status_code == 404
