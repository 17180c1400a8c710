"""A small chat: ordinary FastAPI routes beside a Socket.IO server from fastapi-realtime.

Run with `make run` (uvicorn example_app.main:app on 127.0.0.1:8000) and open two browser tabs.
The realtime side (events, dependencies, recovery) is in chat.py, the payload models in models.py.

State lives in this process's memory, so run a single worker. `create_app()` builds a fresh
app with its own state (the tests build one each); `app` is the one uvicorn serves.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles

from fastapi_realtime import Realtime, RecoveryOptions

from .chat import ChatState, State, chat
from .models import Health, RoomInfo

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
# The browser bundle comes from the npm package the interop tests already install (`make node`).
CLIENT_DIST = HERE.parent / "tests" / "interop" / "node_modules" / "socket.io-client" / "dist"
CLIENT_FILES = {"socket.io.min.js": "application/javascript", "socket.io.min.js.map": "application/json"}

# Seconds a dropped connection has to come back with its session (and the events it missed).
RECOVERY_WINDOW = 60.0
# A dropped member keeps its place in the room this much longer than the window itself.
GRACE_MARGIN = 1.0

api = APIRouter(prefix="/api")


@api.get("/health")
async def health(state: State) -> Health:
    return Health(status="ok", online=len(state.online))


@api.get("/rooms")
async def list_rooms(state: State) -> list[RoomInfo]:
    return state.rooms()


def _client_file(name: str) -> Response:
    path = CLIENT_DIST / name
    if not path.is_file():
        return PlainTextResponse(
            f"socket.io-client is not installed ({path} is missing): run `make node`", status_code=503
        )
    return FileResponse(path, media_type=CLIENT_FILES[name])


pages = APIRouter(include_in_schema=False)


@pages.get("/")
async def index() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html")


# Included before the /static mount, so these two names are served from node_modules.
@pages.get("/static/socket.io.min.js")
async def socketio_client() -> Response:
    return _client_file("socket.io.min.js")


@pages.get("/static/socket.io.min.js.map")
async def socketio_client_map() -> Response:
    return _client_file("socket.io.min.js.map")


def create_app(*, recovery_window: float = RECOVERY_WINDOW) -> FastAPI:
    """A chat app with its own realtime server and state."""
    realtime = Realtime(recovery=RecoveryOptions(max_disconnection_duration=recovery_window))
    realtime.include_router(chat)
    state = ChatState(realtime, grace=recovery_window + GRACE_MARGIN)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        # Runs after the realtime server's own shutdown (its lifespan is nested in this one):
        # the members it just held for recovery are not coming back to this process.
        await state.close()

    app = FastAPI(title="fastapi-realtime chat example", lifespan=lifespan)
    app.state.chat = state
    app.include_router(realtime.router)
    app.include_router(api)
    app.include_router(pages)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


app = create_app()
