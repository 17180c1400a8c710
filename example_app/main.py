"""A small chat: ordinary FastAPI routes beside a Socket.IO server from fastapi-realtime.

Run with `make run` (uvicorn example_app.main:app on 127.0.0.1:8000) and open two browser tabs.
The realtime side (events, dependencies, recovery, the chat's state) is in chat.py, the
payload models in models.py.

Without `REDIS_URL` the state lives in this process's memory: run a single process.

With `REDIS_URL` set (e.g. redis://127.0.0.1:6379/0; needs the `redis` extra), the chat runs
as several processes: the realtime server uses `RedisStreamsAdapter`, so rooms, broadcasts and
connection state recovery span the processes, and the chat's state lives in Redis (chat.py
explains the design). Start as many as you like, each on its own port behind any balancer:

    REDIS_URL=redis://127.0.0.1:6379/0 uvicorn example_app.main:app --port 8000 --ws websockets-sansio
    REDIS_URL=redis://127.0.0.1:6379/0 uvicorn example_app.main:app --port 8001 --ws websockets-sansio

or one port with `--workers N` for WebSocket-only clients (long-polling needs a sticky
balancer: see the README, "Several uvicorn workers or machines"). A client that drops from one
process recovers on another with its place, its name and what it missed.

It is observable: the Socket.IO Admin UI at /admin-ui/ (user `admin`, password from
`ADMIN_PASSWORD`, default `admin`; the UI's files come from the npm package the interop tests
install), Prometheus metrics at /metrics, and OpenTelemetry spans for connects and events
(recorded by whatever OpenTelemetry SDK the process sets up; none here, so they cost little).

`create_app()` builds a fresh app with its own state (the tests build one each); `app` is the
one uvicorn serves.
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles

from fastapi_realtime import Realtime, RecoveryOptions
from fastapi_realtime.adapters import RedisStreamsAdapter  # imports redis-py only when used
from fastapi_realtime.admin import BasicAuth, hash_password

from .chat import RECONCILE_SECONDS, ChatState, MemoryStore, RedisStore, State, Store, chat
from .models import Health, RoomInfo

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
# The browser bundle comes from the npm package the interop tests already install (`make node`).
CLIENT_DIST = HERE.parent / "tests" / "interop" / "node_modules" / "socket.io-client" / "dist"
CLIENT_FILES = {"socket.io.min.js": "application/javascript", "socket.io.min.js.map": "application/json"}
# The Admin UI's own page, from the same npm install.
ADMIN_UI_DIST = HERE.parent / "tests" / "interop" / "node_modules" / "@socket.io" / "admin-ui" / "ui" / "dist"

# Seconds a dropped connection has to come back with its session (and the events it missed).
RECOVERY_WINDOW = 60.0
# A dropped member keeps its place in the room this much longer than the window itself.
GRACE_MARGIN = 1.0

api = APIRouter(prefix="/api")


@api.get("/health")
async def health(state: State) -> Health:
    # `online`: the connections this process serves.
    return Health(status="ok", online=len(state.online))


@api.get("/rooms")
async def list_rooms(state: State) -> list[RoomInfo]:
    return await state.rooms()


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


def create_app(
    *, recovery_window: float = RECOVERY_WINDOW, redis_url: str | None = None,
    reconcile_every: float = RECONCILE_SECONDS, admin_password: str | None = None, observe: bool = False,
) -> FastAPI:
    """A chat app with its own realtime server and state: in memory, or in Redis (shared with
    the app's other processes) when `redis_url` is given. With `observe`, the Admin UI (behind
    `admin_password`), the metrics and the traces are on."""
    url = redis_url or ""
    recovery = RecoveryOptions(max_disconnection_duration=recovery_window)
    store: Store
    if url:
        realtime = Realtime(adapter=RedisStreamsAdapter.from_url(url), recovery=recovery)
        store = RedisStore(url)
    else:
        realtime = Realtime(recovery=recovery)
        store = MemoryStore()
    realtime.include_router(chat)
    if observe:
        realtime.instrument(
            auth=BasicAuth("admin", hash_password(admin_password or "admin")),
            mode="development",
            ui_dir=ADMIN_UI_DIST if ADMIN_UI_DIST.is_dir() else None,
        )
        realtime.enable_tracing()
    state = ChatState(realtime, grace=recovery_window + GRACE_MARGIN, store=store, reconcile_every=reconcile_every)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await state.start()
        yield
        # Runs after the realtime server's own shutdown (its lifespan is nested in this one):
        # the members it just held for recovery are not coming back to this process (with
        # Redis they may recover on another one, whose sweeper otherwise lets them go).
        await state.close()

    app = FastAPI(title="fastapi-realtime chat example", lifespan=lifespan)
    app.state.chat = state
    app.include_router(realtime.router)
    if observe:
        app.include_router(realtime.metrics_router())
    app.include_router(api)
    app.include_router(pages)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


# The app uvicorn serves reads REDIS_URL; apps made by create_app() alone (the tests') do not.
app = create_app(
    redis_url=os.environ.get("REDIS_URL") or None, admin_password=os.environ.get("ADMIN_PASSWORD"), observe=True
)
