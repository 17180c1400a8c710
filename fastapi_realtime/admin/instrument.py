"""`instrument()`: the server side of @socket.io/admin-ui 0.5 (protocol.md §10)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket as socketlib
import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..exceptions import ConnectionRejected
from ..router import RealtimeRouter
from ..socket import Socket
from .auth import INVALID_CREDENTIALS, BasicAuth, MemorySessionStore, SessionStore, new_session_id
from .observer import AdminObserver
from .serialize import serialize_local, serialize_remote
from .ui import UIFiles

if TYPE_CHECKING:
    from ..namespace import Namespace
    from ..server import Realtime

logger = logging.getLogger("fastapi_realtime.admin")

Mode = Literal["development", "production"]
FEATURES = ("EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT")
SESSION_KEY = "_admin_session"  # a new session id, from the auth middleware to the connect handler
STATS_INTERVAL = 2.0

_instrumented: weakref.WeakSet[Realtime] = weakref.WeakSet()


def _auth_option(auth: Any) -> BasicAuth | None:
    if auth is False:
        return None
    if isinstance(auth, BasicAuth):
        return auth
    if isinstance(auth, Mapping) and auth.get("type") == "basic":
        return BasicAuth(auth.get("username"), auth.get("password"))  # type: ignore[arg-type]
    raise ValueError(
        "auth must be BasicAuth(username, bcrypt_hash), {'type': 'basic', 'username': ..., 'password': <bcrypt hash>}"
        " or False (no authentication, explicitly)"
    )


class Instrumentation:
    """Serve the @socket.io/admin-ui 0.5 protocol on `namespace` of `realtime` (one instrumented
    server: its admin namespace, stats timer and observer).

    `auth` is required: `BasicAuth(username, bcrypt_hash)` (see `hash_password`), or `False`
    to turn authentication off. `mode="production"` sends only aggregated stats (no per-socket
    events, no socket list); `read_only=True` refuses the operations (join, leave, disconnect,
    emit). `server_id` names this node in the UI (default: the host name). With `ui_dir` (the
    `ui/dist` directory of npm @socket.io/admin-ui) the UI is served at `ui_path` (default
    `/admin-ui`) of `realtime.router`: call instrument() before `app.include_router(realtime.router)`,
    or mount `instrumentation.ui_app` yourself.
    """

    def __init__(
        self,
        realtime: Realtime,
        *,
        auth: BasicAuth | Mapping[str, Any] | Literal[False],
        mode: Mode = "development",
        read_only: bool = False,
        server_id: str | None = None,
        namespace: str = "/admin",
        store: SessionStore | None = None,
        stats_interval: float = STATS_INTERVAL,
        ui_path: str | None = None,
        ui_dir: str | Path | None = None,
    ) -> None:
        if mode not in ("development", "production"):
            raise ValueError("mode must be 'development' or 'production'")
        if not isinstance(namespace, str) or not namespace.startswith("/"):
            raise ValueError("namespace must be a name starting with '/'")
        if stats_interval <= 0:
            raise ValueError("stats_interval must be positive")
        if realtime in _instrumented:
            raise RuntimeError("this server is already instrumented")
        self.realtime = realtime
        self.auth = _auth_option(auth)
        self.store: SessionStore = store if store is not None else MemorySessionStore()
        self.development = mode == "development"
        self.read_only = read_only
        self.namespace = namespace
        self.stats_interval = stats_interval
        hostname = socketlib.gethostname()
        self.base_stats = {"serverId": server_id or hostname, "hostname": hostname, "pid": os.getpid()}
        self.started_at = time.monotonic()
        features = [] if read_only else list(FEATURES)
        features.append("AGGREGATED_EVENTS")
        if self.development:
            features.append("ALL_EVENTS")
        self.supported_features = features
        self.observer = AdminObserver(
            self._admin_emit, admin_namespace=namespace, development=self.development,
            on_connection=self._start, on_shutdown=self._stop,
        )
        self._stats_task: asyncio.Task[None] | None = None
        self.ui_app: UIFiles | None = None
        if ui_dir is not None or ui_path is not None:
            if ui_dir is None:
                raise ValueError("ui_path needs ui_dir: the ui/dist directory of npm @socket.io/admin-ui")
            self.ui_app = UIFiles(ui_dir, realtime.path, namespace)
            self._add_ui_routes(ui_path or "/admin-ui")
        realtime.include_router(self._router())
        realtime.observe(self.observer)
        _instrumented.add(realtime)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass  # set-up code: the stats start with the first connection
        else:
            self._start()  # instrumented from the loop (while serving, or in a lifespan)

    # -- the admin namespace ------------------------------------------------------------------
    def _router(self) -> RealtimeRouter:
        router = RealtimeRouter(namespace=self.namespace)
        if self.auth is not None:
            router.use(self.authenticate)
        router.on("connect")(self.on_connect)
        if not self.read_only:
            router.on("join")(self.op_join)
            router.on("leave")(self.op_leave)
            router.on("_disconnect")(self.op_disconnect)
            router.on("emit")(self.op_emit)
        return router

    async def authenticate(self, socket: Socket) -> None:
        """A stored session id, else the username and password of handshake.auth."""
        assert self.auth is not None
        auth = socket.handshake.auth if isinstance(socket.handshake.auth, dict) else {}
        session_id = auth.get("sessionId")
        if isinstance(session_id, str) and session_id and await self.store.exists(session_id):
            return
        if await self.auth.verify(auth.get("username"), auth.get("password")):
            session_id = new_session_id()
            await self.store.save(session_id)
            socket.data[SESSION_KEY] = session_id  # sent once the socket is in (see on_connect)
            return
        raise ConnectionRejected(INVALID_CREDENTIALS)

    async def on_connect(self, socket: Socket) -> None:
        # Emitted from the connect handler, these follow the CONNECT reply, once the UI listens.
        session_id = socket.data.pop(SESSION_KEY, None) if isinstance(socket.data, dict) else None
        if session_id is not None:
            await socket.emit("session", session_id)
        await socket.emit("config", {"supportedFeatures": list(self.supported_features)})
        if self.development:
            await socket.emit("all_sockets", await self.all_sockets())

    async def all_sockets(self) -> list[dict[str, Any]]:
        """Every socket of every namespace, on every node when the adapter reaches them."""
        found: list[dict[str, Any]] = []
        for nsp in self.realtime.namespaces():
            try:
                remote = await nsp.fetch_sockets()
            except Exception:
                logger.warning("fetch_sockets failed on %s; listing this node's sockets only", nsp.name, exc_info=True)
                found.extend(serialize_local(s) for s in list(nsp.sockets.values()))
                continue
            for info in remote:
                local = nsp.sockets.get(info.id)
                found.append(serialize_local(local) if local is not None else serialize_remote(info))
        return found

    def _namespace(self, name: Any) -> Namespace | None:
        # Only namespaces that exist: admin input never creates one.
        if not isinstance(name, str):
            return None
        return next((nsp for nsp in self.realtime.namespaces() if nsp.name == name), None)

    async def op_join(self, socket: Socket, *args: Any) -> None:
        await self._rooms_op("join", args)

    async def op_leave(self, socket: Socket, *args: Any) -> None:
        await self._rooms_op("leave", args)

    async def _rooms_op(self, op: str, args: tuple[Any, ...]) -> None:
        nsp = self._namespace(args[0] if args else None)
        room = args[1] if len(args) > 1 else None
        selector = args[2] if len(args) > 2 else None
        if nsp is None or not isinstance(room, str) or not (selector is None or isinstance(selector, str)):
            return
        target = nsp.in_(selector) if selector else nsp._all()
        try:
            if op == "join":
                await target.sockets_join(room)
            else:
                await target.sockets_leave(room)
        except Exception:
            logger.warning("admin %s of %r on %s failed", op, room, nsp.name, exc_info=True)

    async def op_disconnect(self, socket: Socket, *args: Any) -> None:
        nsp = self._namespace(args[0] if args else None)
        close = args[1] if len(args) > 1 else False
        selector = args[2] if len(args) > 2 else None
        if nsp is None or not (selector is None or isinstance(selector, str)):
            return
        target = nsp.in_(selector) if selector else nsp._all()
        try:
            await target.disconnect_sockets(close is True)
        except Exception:
            logger.warning("admin disconnect on %s failed", nsp.name, exc_info=True)

    async def op_emit(self, socket: Socket, *args: Any) -> None:
        nsp = self._namespace(args[0] if args else None)
        selector = args[1] if len(args) > 1 else None
        event = args[2] if len(args) > 2 else None
        if nsp is None or not isinstance(event, str) or not (selector is None or isinstance(selector, str)):
            return
        target = nsp.in_(selector) if selector else nsp._all()
        try:
            await target.emit(event, *args[3:])
        except (TypeError, ValueError):
            pass  # a reserved event name, or arguments that cannot be encoded
        except Exception:
            logger.warning("admin emit of %r on %s failed", event, nsp.name, exc_info=True)

    # -- stats ----------------------------------------------------------------------------------
    async def _admin_emit(self, event: str, *args: Any) -> None:
        await self.realtime.of(self.namespace).emit(event, *args)

    def server_stats(self) -> dict[str, Any]:
        sessions = list(self.realtime.manager.sessions.values())
        return {
            **self.base_stats,
            "uptime": round(time.monotonic() - self.started_at, 3),
            "clientsCount": len(sessions),
            "pollingClientsCount": sum(1 for s in sessions if str(s.transport) == "polling"),
            "aggregatedEvents": self.observer.buffer.take(),
            "namespaces": [{"name": n.name, "socketsCount": len(n.sockets)} for n in self.realtime.namespaces()],
        }

    async def emit_stats(self) -> None:
        self.observer.refresh()
        await self._admin_emit("server_stats", self.server_stats())

    # The stats timer runs from the server's start (or instrument() called on a running one, or
    # the first connection) until the server shuts down: the shutdown hook ends it, and so do
    # connections closed for shutdown and a tick that finds the server shutting down.
    async def _stats_loop(self) -> None:
        manager = self.realtime.manager
        try:
            while not manager.shutting_down:
                try:
                    await self.emit_stats()
                except Exception:
                    logger.warning("server_stats could not be broadcast", exc_info=True)
                await asyncio.sleep(self.stats_interval)
        finally:
            if self._stats_task is asyncio.current_task():
                self._stats_task = None

    @property
    def stats_running(self) -> bool:
        return self._stats_task is not None

    def _start(self) -> None:
        if self._stats_task is None and not self.realtime.manager.shutting_down:
            self._stats_task = asyncio.get_running_loop().create_task(self._stats_loop())

    def _stop(self) -> None:
        task, self._stats_task = self._stats_task, None
        if task is not None:
            task.cancel()

    # -- UI files ---------------------------------------------------------------------------------
    def _add_ui_routes(self, ui_path: str) -> None:
        assert self.ui_app is not None
        prefix = "/" + ui_path.strip("/")
        if prefix == "/":
            raise ValueError("ui_path must not be '/'")
        endpoint = self.ui_app.endpoint(prefix)
        # Routes of realtime.router: present in the app when instrument() runs before include_router.
        self.realtime.router.add_route(prefix, endpoint, methods=["GET"], include_in_schema=False)
        self.realtime.router.add_route(prefix + "/{path:path}", endpoint, methods=["GET"], include_in_schema=False)


# The function form of the class, as Node's `instrument(io, options)`: one signature, one place.
instrument = Instrumentation
