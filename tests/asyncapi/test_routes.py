"""A Realtime server's document and its docs routes (asyncapi/routes.py)."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.testclient import TestClient

from fastapi_realtime import Realtime, RealtimeRouter, Socket
from fastapi_realtime.asyncapi import (
    DocsInfo,
    asyncapi_html,
    build_asyncapi,
    build_document,
)
from fastapi_realtime.asyncapi.routes import docs_routes
from fastapi_realtime.handlers import HandlerSpec
from fastapi_realtime.router import HandlerTable
from tests.asyncapi.app import make_realtime
from tests.asyncapi.helpers import assert_valid_asyncapi, parse
from tests.test_layering import PACKAGE, imports_of, module_name, ours, sources, within

# -- served by a FastAPI app of one's own (the built-in routes: tests/fastapi_native/test_docs.py) --------

def test_served_through_fastapi() -> None:
    rt = make_realtime()
    docs = APIRouter()

    @docs.get(f"{rt.path}/asyncapi.json")
    def asyncapi_json() -> JSONResponse:
        return JSONResponse(build_asyncapi(rt))

    @docs.get(f"{rt.path}/asyncapi")
    def asyncapi_page() -> HTMLResponse:
        return HTMLResponse(asyncapi_html(build_asyncapi(rt), json_url="asyncapi.json"))

    app = FastAPI()
    app.include_router(docs)
    app.include_router(rt.router)
    client = TestClient(app)
    response = client.get("/socket.io/asyncapi.json")
    assert response.status_code == 200
    assert response.json() == build_asyncapi(rt)
    page = client.get("/socket.io/asyncapi")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    parse(page.text)
    # The Socket.IO handshake still works beside the docs routes.
    handshake = client.get("/socket.io/", params={"EIO": "4", "transport": "polling"})
    assert handshake.status_code == 200 and handshake.text.startswith("0{")


# -- built from the handler tables alone --------------------------------------------------------------

def test_document_from_handler_tables_alone() -> None:
    async def move(socket: Socket, x: int, y: int = 0) -> str:
        """Move the piece."""
        return "ok"

    table = HandlerTable(events={"move": HandlerSpec.from_callable(move)})
    info = DocsInfo("Board", "1.0.0", None)
    document = build_document([("/game", table)], info, path="/rt", transports=("websocket",))
    assert document["info"] == {"title": "Board", "version": "1.0.0"}
    server = document["servers"]["socketio"]
    assert server["pathname"] == "/rt" and "(transports: websocket)" in server["description"]
    assert document["channels"]["game"]["messages"]["move"]["payload"]["minItems"] == 1
    assert_valid_asyncapi(document)
    # What build_asyncapi gives for a server with the same handlers.
    router = RealtimeRouter(namespace="/game")
    router.on("move")(move)
    rt = Realtime(path="/rt", transports=("websocket",))
    rt.include_router(router)
    assert build_asyncapi(rt, title="Board", version="1.0.0")["channels"]["game"] == document["channels"]["game"]


# -- attached from outside: the server never imports the docs ---------------------------------------

def test_the_server_does_not_import_the_docs() -> None:
    below = [p for p in sources(".") if not within(module_name(p), "asyncapi") and module_name(p) != PACKAGE]
    bad = {module_name(p): m for p in below for m in ours(imports_of(p)) if within(m, "asyncapi")}
    assert not bad, f"only the package entry installs the docs: {bad}"


def test_docs_are_a_route_extension() -> None:
    assert docs_routes in Realtime.route_extensions
    assert set(docs_routes(Realtime())) == {"/asyncapi.json", "/asyncapi"}
    assert docs_routes(Realtime(docs=False)) == {}
