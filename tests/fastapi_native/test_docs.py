"""The AsyncAPI document and docs page are served beside the realtime routes, and can be off."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.testclient import TestClient

from fastapi_realtime import Realtime, Socket
from tests.asyncapi.helpers import assert_valid_asyncapi, h1, parse


def _server(**options: object) -> Realtime:
    realtime = Realtime(**options)  # type: ignore[arg-type]

    @realtime.on("move")
    async def move(socket: Socket, x: int, y: int) -> str:
        return "ok"

    return realtime


def _docs(client: TestClient, base: str) -> tuple[dict[str, Any], str]:
    """The document and the page served at `base` (the realtime path as the client sees it)."""
    document = client.get(f"{base}/asyncapi.json").json()
    page = client.get(f"{base}/asyncapi")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    parse(page.text)
    return document, page.text


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


# -- title, version and description ------------------------------------------------------------------

def test_title_and_version_from_the_app_that_includes_the_router() -> None:
    app = FastAPI(title="Chat", version="2.1.0", description="Rooms and `messages`.")
    app.include_router(_server().router)
    with TestClient(app) as client:
        document, page = _docs(client, "/socket.io")
    assert document["info"] == {"title": "Chat", "version": "2.1.0", "description": "Rooms and `messages`."}
    assert h1(page) == "Chat 2.1.0" and "<title>Chat</title>" in page
    assert "<p>Rooms and <code>messages</code>.</p>" in page
    assert_valid_asyncapi(document)


def test_title_and_version_from_the_app_that_mounts_the_server() -> None:
    app = FastAPI(title="Mounted", version="3.0.0")
    app.mount("/rt", _server())
    with TestClient(app) as client:
        document, page = _docs(client, "/rt")
    assert document["info"] == {"title": "Mounted", "version": "3.0.0"}
    assert h1(page) == "Mounted 3.0.0"
    assert_valid_asyncapi(document)


def test_nested_mounts_take_the_innermost_app() -> None:
    # Starlette sets scope["app"] to each app the request enters: the one holding the routes wins.
    inner = FastAPI(title="Inner", version="1.2.3")
    inner.include_router(_server().router)
    outer = FastAPI(title="Outer", version="9.9.9")
    outer.mount("/v1", inner)
    with TestClient(outer) as client:
        document, _page = _docs(client, "/v1/socket.io")
    assert document["info"] == {"title": "Inner", "version": "1.2.3"}
    assert document["servers"]["socketio"]["pathname"] == "/v1/socket.io"


def test_options_override_the_app() -> None:
    app = FastAPI(title="Chat", version="2.1.0", description="From the app.")
    app.include_router(_server(docs_title="Realtime chat", docs_version="5.0.0", docs_description="").router)
    with TestClient(app) as client:
        document, page = _docs(client, "/socket.io")
    # An empty description is none, even where the app has one.
    assert document["info"] == {"title": "Realtime chat", "version": "5.0.0"}
    assert h1(page) == "Realtime chat 5.0.0"
    assert_valid_asyncapi(document)


def test_one_option_leaves_the_rest_to_the_app() -> None:
    app = FastAPI(title="Chat", version="2.1.0")
    app.include_router(_server(docs_version="2.2.0-beta").router)
    with TestClient(app) as client:
        document, _page = _docs(client, "/socket.io")
    assert document["info"] == {"title": "Chat", "version": "2.2.0-beta"}


@pytest.mark.parametrize("host", ["alone", "starlette"])
def test_defaults_without_a_fastapi_app(host: str) -> None:
    realtime = _server()
    app: Any = realtime
    if host == "starlette":  # a Starlette app has no title or version
        app = Starlette()
        app.mount("/socket.io", realtime)
    with TestClient(app) as client:
        document, page = _docs(client, "/socket.io")
    assert document["info"] == {"title": "fastapi-realtime", "version": "1.0.0"}
    assert h1(page) == "fastapi-realtime 1.0.0"


@pytest.mark.parametrize("option", ["docs_title", "docs_version", "docs_description"])
def test_docs_options_are_strings(option: str) -> None:
    with pytest.raises(ValueError, match=option):
        Realtime(**{option: 1})  # type: ignore[arg-type]
