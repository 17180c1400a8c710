"""The test client: the app's lifespan, and sockets connected to it, async or through the blocking facade."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

import anyio.from_thread
from anyio.from_thread import BlockingPortal

from .blocking import BlockingClientSocket, Facade, blocking
from .driver import DEFAULT_TIMEOUT, ASGIApp, AsgiDriver
from .socket import ClientSocket, TransportName
from .transports import Target

__all__ = ["BlockingClient", "RealtimeTestClient"]

P = ParamSpec("P")
T = TypeVar("T")


class RealtimeTestClient:
    """Drives an ASGI app holding realtime routes, in-process, with real Engine.IO/Socket.IO bytes.

    `app` is a FastAPI/Starlette app that includes `realtime.router` (pass `path` with any
    prefix, e.g. "/api/socket.io"), or a `Realtime` itself. Use `async with` in async tests and
    plain `with` in sync ones (that one returns a `BlockingClient`). The app's lifespan runs on
    enter and exit, so leaving the block runs the realtime shutdown. Exceptions the app raised
    (and those of `on` handlers) are re-raised on exit unless `raise_server_exceptions=False`.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        path: str = "/socket.io",
        headers: Mapping[str, str] | None = None,
        raise_server_exceptions: bool = True,
    ) -> None:
        self.app = app
        self.path = path.rstrip("/") + "/"
        self.headers = dict(headers or {})
        self.raise_server_exceptions = raise_server_exceptions
        self.sockets: list[ClientSocket] = []
        self._asgi = AsgiDriver(app)
        self._tasks: set[asyncio.Task[None]] = set()
        self._exit_stack: contextlib.ExitStack | None = None
        self._portal: BlockingPortal | None = None

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def connect(
        self,
        namespace: str = "/",
        *,
        auth: dict[str, Any] | None = None,
        transport: TransportName = "websocket",
        headers: Mapping[str, str] | None = None,
        query: Mapping[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> ClientSocket:
        """Open an Engine.IO session and connect to `namespace`; return the connected socket.

        Raises ConnectionRefused (with the CONNECT_ERROR's `message` and `data`) when the server
        refuses, and TimeoutError when it does not answer within `timeout` seconds.
        """
        merged = {name.lower(): value for name, value in [*self.headers.items(), *(headers or {}).items()]}
        target = Target(self.path, dict(query or {}), list(merged.items()))
        socket = ClientSocket(self._asgi, self._spawn, target, namespace, auth, transport)
        await socket._open(timeout)
        self.sockets.append(socket)
        return socket

    async def __aenter__(self) -> RealtimeTestClient:
        self._asgi = AsgiDriver(self.app)
        await self._asgi.startup()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # Shutdown first: that is what the realtime server's clients see when the app stops.
        await self._asgi.shutdown()
        for socket in self.sockets:
            await socket._terminate()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._asgi.wait_idle(DEFAULT_TIMEOUT)
        self.sockets.clear()
        if exc is None and self.raise_server_exceptions and self._asgi.errors:
            raise self._asgi.errors[0]

    def __enter__(self) -> BlockingClient:
        with contextlib.ExitStack() as stack:
            portal = stack.enter_context(anyio.from_thread.start_blocking_portal("asyncio"))
            portal.call(self.__aenter__)
            self._portal = portal
            self._exit_stack = stack.pop_all()
        return BlockingClient(self, portal)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._exit_stack is not None and self._portal is not None
        portal, stack = self._portal, self._exit_stack
        self._portal = self._exit_stack = None
        with stack:
            portal.call(self.__aexit__, exc_type, exc, tb)


class BlockingClient(Facade[RealtimeTestClient]):
    """The sync face of `RealtimeTestClient` (what `with RealtimeTestClient(app)` returns).

    The client's event loop runs in a background thread; every method blocks until done there.
    """

    # Declared beside the client rather than in `blocking`: `__enter__` above makes it and it
    # takes `connect` from the client, so either module would need the other (an import circle).

    connect = blocking(RealtimeTestClient.connect, BlockingClientSocket)

    @property
    def client(self) -> RealtimeTestClient:
        """The async client behind this facade (its loop runs in another thread)."""
        return self._target

    @property
    def portal(self) -> BlockingPortal:
        """The portal to the client's event loop thread."""
        return self._portal

    def run(self, func: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `await func(*args, **kwargs)` on the app's loop, e.g. `client.run(rt.emit, "news", 1)`."""
        return self._portal.call(functools.partial(func, *args, **kwargs))
