"""Start-up and shutdown of a Realtime: its adapters, the orderly goodbye, the signal hook.

The server object composes namespaces and routers; this module owns when things start and
stop, and the background tasks shutdown waits for (session snapshots being stored, a
signal-started disconnect, adapters of namespaces made while serving).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from ._logging import follow_server_logging
from ._types import Receive, Send
from .observe import Observation
from .options import ServerOptions

if TYPE_CHECKING:
    from .namespace import Namespace
    from .sessions import SessionManager

logger = logging.getLogger("fastapi_realtime")


class LifecycleServer(Protocol):
    """The server as its lifecycle uses it (server.Realtime is one; that module is above this one)."""

    @property
    def options(self) -> ServerOptions: ...

    @property
    def route_name(self) -> str: ...

    @property
    def manager(self) -> SessionManager: ...

    @property
    def observation(self) -> Observation: ...

    def declare_namespaces(self) -> None: ...

    def namespaces(self) -> Sequence[Namespace]: ...


class Lifecycle:
    """When one Realtime starts serving and stops."""

    def __init__(self, server: LifecycleServer) -> None:
        self.server = server
        self.started = False
        self.signals_hooked = False
        self.announced = False
        self._background: set[asyncio.Task[Any]] = set()

    # -- background work shutdown waits for ---------------------------------------------------
    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)  # held: the loop keeps only a weak reference
        task.add_done_callback(self._background.discard)

    # -- lifespan ----------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any = None) -> AsyncIterator[None]:
        await self.startup()
        self.announce(self.served_path(app))
        try:
            yield
        finally:
            await self.shutdown()

    async def serve_lifespan(self, receive: Receive, send: Send) -> None:
        """The ASGI lifespan protocol, for a Realtime served on its own."""
        message = await receive()
        assert message["type"] == "lifespan.startup"
        await self.startup()
        self.announce("")
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await self.shutdown()
        await send({"type": "lifespan.shutdown.complete"})

    def first_request(self, scope: Any) -> None:
        """A mounted app gets no lifespan events: hook the signals and announce on first use."""
        if scope["type"] == "lifespan":
            return
        if not self.signals_hooked:
            self.hook_signals()
        if not self.announced:
            self.announce(str(scope.get("root_path", "")).rstrip("/"))

    def served_path(self, app: Any) -> str:
        """Where the app serves this endpoint, whatever prefix include_router gave it."""
        server = self.server
        try:
            return str(app.url_path_for(server.route_name)).rstrip("/")
        except Exception:  # not included in this app (mounted, or served on its own)
            return "" if server.options.path == "/" else server.options.path

    def announce(self, base: str) -> None:
        """One INFO line when the endpoint starts serving: where, and where its docs are."""
        if self.announced:
            return
        self.announced = True
        follow_server_logging()
        docs = f"; AsyncAPI docs at {base}/asyncapi" if self.server.options.docs else ""
        logger.info("Socket.IO endpoint at %s/ (Engine.IO v4, Socket.IO v5)%s", base, docs)

    async def startup(self) -> None:
        server = self.server
        self.hook_signals()
        server.manager.shutting_down = False
        # Every declared namespace exists from the start, as in Node: a cluster adapter must be
        # listening (and counted as a node) before the first client arrives.
        server.declare_namespaces()
        self.started = True
        for nsp in server.namespaces():
            await nsp.adapter.init()
        observer = server.observation.observer
        if observer is not None:
            observer.server_started(server)

    async def shutdown(self, timeout: float = 5.0) -> None:
        """Disconnect every client (reason `server shutting down`) and wait for their handlers."""
        observer = self.server.observation.observer
        if observer is not None:
            observer.server_stopping(self.server)
        await self.disconnect_everyone(timeout)
        if self._background:
            await asyncio.wait(list(self._background), timeout=timeout)
        # The server restores its own signal handlers as it exits; a later run hooks them again.
        self.signals_hooked = False
        self.started = False
        for nsp in self.server.namespaces():
            await nsp.adapter.close()
            if nsp.recovery is not None:
                await nsp.recovery.close()
        # Let disconnect handlers that were just scheduled run.
        await asyncio.sleep(0)

    async def disconnect_everyone(self, timeout: float = 5.0) -> None:
        manager = self.server.manager
        clients = [s.context for s in manager.sessions.values() if s.context is not None]
        await manager.shutdown()
        if clients:
            idle = [asyncio.ensure_future(c.wait_idle()) for c in clients]
            await asyncio.wait(idle, timeout=timeout)

    def hook_signals(self) -> None:
        """Begin the orderly shutdown as soon as the server is told to stop.

        uvicorn closes its connections (WebSockets with 1012, long-polls when they end) before
        it runs the lifespan shutdown, which would then find no client left to tell; and a
        mounted app gets no lifespan events at all. So the signal handler the server installed
        is wrapped: clients are disconnected with `server shutting down` and pending long-polls
        answered first, then the server's own handler runs. Only in the main thread, and only
        over a Python handler (a server that installed none is not shutting down gracefully).
        """
        if self.signals_hooked or threading.current_thread() is not threading.main_thread():
            return
        self.signals_hooked = True
        loop = asyncio.get_running_loop()

        def begin() -> None:
            self.spawn(self.disconnect_everyone())

        for signum in (signal.SIGINT, signal.SIGTERM):
            previous = signal.getsignal(signum)
            if not callable(previous):
                continue

            def handler(sig: int, frame: Any, previous: Callable[[int, Any], Any] = previous) -> None:
                loop.call_soon_threadsafe(begin)
                previous(sig, frame)

            signal.signal(signum, handler)
