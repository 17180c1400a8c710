"""The server object: options, namespaces, routers, lifespan, and the ASGI entry points."""

from __future__ import annotations

import contextlib
import importlib
import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar, Unpack

from fastapi import APIRouter, params
from fastapi.encoders import jsonable_encoder
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute

from ._types import Receive, Scope, Send
from .adapters.base import Adapter
from .adapters.memory import MemoryAdapter
from .asgi import EngineApp
from .broadcast import Broadcaster, BroadcastOperator
from .client import ClientManager
from .engineio.handshake import generate_sid
from .errors import client_error, internal_error
from .handlers import UNSET, EventMiddleware, ExceptionHandler, call_exception_handler, find_exception_handler
from .lifecycle import Lifecycle
from .namespace import Namespace
from .observe import Observation, Observer
from .options import Settings, split_settings
from .recovery import MemoryRecoveryStore, RecoveryOptions, RecoveryStore, SessionSnapshot
from .router import (
    H,
    HandlerTable,
    Hooks,
    Middleware,
    NamespaceSpec,
    NotAnAPIRouter,
    RealtimeRouter,
    RegistersHooks,
    check_router,
    mark_included,
)
from .sessions import SessionManager
from .socket import Socket
from .socketio import msgpack_codec

logger = logging.getLogger("fastapi_realtime")

AdapterFactory = Callable[[Namespace], Adapter]
RecoveryStoreFactory = Callable[[Namespace, RecoveryOptions], RecoveryStore]
# Every method reaches the engine, which answers the unexpected ones as Node does.
HTTP_METHODS = ("GET", "POST", "OPTIONS", "PUT", "PATCH", "DELETE", "HEAD")
# Routes served beside the endpoint by modules above the server (the AsyncAPI docs): an extension
# is called with the server and gives GET endpoints by sub-path of its path (`"/asyncapi"`).
RouteEndpoint = Callable[[Request], Awaitable[Response]]
RouteExtension = Callable[["Realtime"], Mapping[str, RouteEndpoint]]


def _json_default(obj: Any) -> Any:
    # Models, dataclasses, datetimes, UUIDs and enums are encoded as FastAPI encodes responses.
    return jsonable_encoder(obj)


def _tool(module: str, name: str) -> Callable[..., Any]:
    tool: Callable[..., Any] = getattr(importlib.import_module(module), name)
    return tool


class Realtime(Broadcaster, RegistersHooks):
    """A Socket.IO server (Engine.IO v4, Socket.IO v5) for FastAPI and Starlette.

    Include `realtime.router` into a FastAPI app, or mount the object itself as an ASGI app.
    """

    # What FastAPI's include_router reads first: `app.include_router(realtime)` says what to write.
    routes = _contains_router = NotAnAPIRouter()
    # Installed by the package entry (fastapi_realtime/__init__.py): the server imports none of them.
    route_extensions: ClassVar[list[RouteExtension]] = []

    def __init__(
        self,
        *,
        adapter: AdapterFactory | None = None,
        recovery: RecoveryOptions | bool | None = None,
        recovery_store: RecoveryStoreFactory | None = None,
        **settings: Unpack[Settings],
    ) -> None:
        # The defaults and the checks live in the option dataclasses (fastapi_realtime.options).
        self.engine_options, options = split_settings(settings)
        self.options = options
        if options.parser == "msgpack":
            msgpack_codec.require()  # at construction, not at the first client
        if adapter is not None and not callable(adapter):
            raise ValueError("adapter must be a callable taking the namespace")
        self.path = options.path
        self.docs = options.docs
        self.docs_title = options.docs_title
        self.docs_version = options.docs_version
        self.docs_description = options.docs_description
        self.adapter_factory: AdapterFactory = adapter or MemoryAdapter
        self.json_default: Callable[[Any], Any] = _json_default
        if recovery is True:
            recovery = RecoveryOptions()
        if recovery is not None and recovery is not False and not isinstance(recovery, RecoveryOptions):
            raise ValueError("recovery must be RecoveryOptions, True or None")
        if recovery_store is not None and not callable(recovery_store):
            raise ValueError("recovery_store must be a callable taking the namespace and the options")
        self.recovery: RecoveryOptions | None = recovery or None
        self._recovery_store = recovery_store
        self.skip_recovery_middlewares = self.recovery is not None and self.recovery.skip_middlewares
        self.middlewares: list[Middleware] = []
        self.event_middlewares: list[EventMiddleware[Socket]] = []
        self.exception_handlers: dict[type[BaseException], ExceptionHandler[Socket]] = {}
        self._static: dict[str, HandlerTable] = {"/": HandlerTable()}
        self._dynamic: list[tuple[NamespaceSpec, HandlerTable]] = []
        self._namespaces: dict[str, Namespace] = {}
        self.route_name = f"fastapi_realtime:{id(self):x}"
        self.lifecycle = Lifecycle(self)
        # The observers' one slot (Admin UI, metrics, traces), shared with the sessions and namespaces.
        self.observation = Observation()
        self.manager = SessionManager(self.engine_options, ClientManager(self), self.observation)
        self.app = EngineApp(self.manager)
        self.router = self._make_router()

    # -- FastAPI / ASGI integration -----------------------------------------------------------
    def _make_router(self) -> APIRouter:
        router = APIRouter(lifespan=self.lifespan)
        base = "" if self.path == "/" else self.path
        for path in sorted({base + "/", base} - {""}, reverse=True):
            # Named, so that start-up can ask the app where a prefix put it (`url_path_for`).
            name = self.route_name if path.endswith("/") else None
            router.routes.append(
                Route(path, self.app, methods=list(HTTP_METHODS), include_in_schema=False, name=name)
            )
            router.routes.append(WebSocketRoute(path, self.app))
        # Served when mounted too (see __call__), under the mount path.
        self._extension_routes = {sub: ep for extension in self.route_extensions for sub, ep in extension(self).items()}
        self._extension_suffixes = tuple(self._extension_routes)
        for sub, endpoint in self._extension_routes.items():
            router.add_api_route(base + sub, endpoint, methods=["GET"], include_in_schema=False)
        return router

    def handler_tables(self) -> list[tuple[NamespaceSpec, HandlerTable]]:
        """Every namespace with its handler table, the named ones first (what the AsyncAPI docs read)."""
        return [*self._static.items(), *self._dynamic]

    def _extension_endpoint(self, path: str) -> RouteEndpoint | None:
        """The extension route a request under the mount path is for (whatever the mount path)."""
        path = path.rstrip("/")
        # One C call rules out the usual case, an Engine.IO request (every polling request
        # passes here).
        if not path.endswith(self._extension_suffixes):
            return None
        return next((endpoint for sub, endpoint in self._extension_routes.items() if path.endswith(sub)), None)

    @property
    def connect_timeout(self) -> float:
        return self.options.connect_timeout

    @property
    def max_attachments(self) -> int:
        return self.options.max_attachments

    # -- lifespan (fastapi_realtime.lifecycle) --------------------------------------------------
    def lifespan(self, app: Any = None) -> contextlib.AbstractAsyncContextManager[None]:
        """Start the adapters; on exit disconnect everyone with reason `server shutting down`."""
        return self.lifecycle.lifespan(app)

    async def startup(self) -> None:
        await self.lifecycle.startup()

    async def shutdown(self, timeout: float = 5.0) -> None:
        """Disconnect every client (reason `server shutting down`) and wait for their handlers."""
        await self.lifecycle.shutdown(timeout)

    def declare_namespaces(self) -> None:
        for name in list(self._static):
            self.of(name)

    def namespaces(self) -> list[Namespace]:
        return list(self._namespaces.values())

    # -- observation (fastapi_realtime.observe) ---------------------------------------------------
    def observe(self, observer: Observer) -> None:
        """Tell `observer` what happens from now on: connections, packets, sockets, rooms, events
        and handler runs (the Admin UI, the metrics and the traces are observers)."""
        self.observation.add(observer)
        if self.lifecycle.started:
            observer.server_started(self)

    def unobserve(self, observer: Observer) -> None:
        self.observation.remove(observer)

    # The optional tools, each in its own package with its own extra; looked up when called, so
    # the server depends on none of them (and a missing extra is an error only for its user).
    def instrument(self, **options: Any) -> Any:
        """Serve the Socket.IO Admin UI's protocol (fastapi_realtime.admin.instrument; extra `admin`)."""
        return _tool("fastapi_realtime.admin", "instrument")(self, **options)

    def enable_metrics(self, **options: Any) -> Any:
        """Prometheus metrics of this server (fastapi_realtime.metrics.enable_metrics; extra `metrics`)."""
        return _tool("fastapi_realtime.metrics", "enable_metrics")(self, **options)

    def metrics_router(self, **options: Any) -> APIRouter:
        """A router serving the metrics at /metrics (fastapi_realtime.metrics.metrics_router)."""
        router: APIRouter = _tool("fastapi_realtime.metrics", "metrics_router")(self, **options)
        return router

    def enable_tracing(self, **options: Any) -> Any:
        """OpenTelemetry spans for connects and events (fastapi_realtime.tracing.enable_tracing; extra `tracing`)."""
        return _tool("fastapi_realtime.tracing", "enable_tracing")(self, **options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve as a plain ASGI app (for `app.mount(path, realtime)` or on its own)."""
        self.lifecycle.first_request(scope)
        if scope["type"] == "lifespan":
            await self.lifecycle.serve_lifespan(receive, send)
        elif scope["type"] == "http" and (endpoint := self._extension_endpoint(scope["path"])) is not None:
            # Mounted, the extensions' routes (the docs) live under the mount path too.
            response = await endpoint(Request(scope, receive))
            await response(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    # -- handlers and routers -------------------------------------------------------------------
    def _table(self, namespace: NamespaceSpec) -> HandlerTable:
        if isinstance(namespace, str):
            table = self._static.get(namespace)
            if table is None:
                table = self._static[namespace] = HandlerTable()
            return table
        for spec, table in self._dynamic:
            if spec is namespace or (isinstance(spec, re.Pattern) and spec == namespace):
                return table
        table = HandlerTable()
        self._dynamic.append((namespace, table))
        return table

    def include_router(
        self,
        router: RealtimeRouter,
        *,
        namespace: NamespaceSpec | None = None,
        dependencies: Sequence[params.Depends] = (),
    ) -> None:
        """Add a router's handlers (and those of routers nested in it).

        `dependencies` run before each of its handlers, like `APIRouter` includes.
        """
        router = check_router(router, self, namespace)
        pairs = [(self._table(spec), table, repr(spec)) for spec, table in router.flatten(namespace, dependencies)]
        # Merge into copies first: a conflict anywhere leaves the server as it was.
        trial: dict[int, HandlerTable] = {}
        for target, table, where in pairs:
            trial.setdefault(id(target), target.copy()).merge(table, where)
        for target, table, where in pairs:
            target.merge(table, where)
        mark_included(router, self, namespace)

    def _hooks(self) -> Hooks:
        return self  # server-wide: for every namespace

    def exception_handler_for(self, exc: BaseException) -> ExceptionHandler[Socket] | None:
        return find_exception_handler(tuple(self.exception_handlers.items()), exc)

    async def handle_exception(self, socket: Socket, exc: Exception, event: Any, wants_ack: bool) -> Any:
        """What the client hears when a handler raised (its routers' exception handlers did not
        take it): the ack to send, or None."""
        handler = self.exception_handler_for(exc)
        if handler is not None:
            try:
                return await call_exception_handler(handler, socket, exc)
            except Exception:
                logger.exception("exception handler failed for %r on %s", event, socket.namespace)
                return internal_error() if wants_ack else None
        body = client_error(exc)
        if body is not None:
            if wants_ack:
                return body
            # Without an ack to carry it, the error goes to the client as an "error" event.
            await socket.emit("error", {"event": event, **body})
            return None
        logger.exception("handler for %r failed on %s", event, socket.namespace, exc_info=exc)
        return internal_error() if wants_ack else None

    def on(
        self,
        event: str,
        *,
        namespace: str = "/",
        concurrent: bool = False,
        dependencies: Sequence[params.Depends] = (),
        response_model: Any = UNSET,
    ) -> Callable[[H], H]:
        """Register a handler directly on the server (a shortcut for a one-off router)."""
        router = RealtimeRouter(namespace)

        def decorator(func: H) -> H:
            router.on(event, concurrent=concurrent, dependencies=dependencies, response_model=response_model)(func)
            self.include_router(router)
            return func

        return decorator

    # -- namespaces ------------------------------------------------------------------------------
    def of(self, name: str) -> Namespace:
        """The namespace `name`, created if needed."""
        nsp = self._namespaces.get(name)
        if nsp is None:
            nsp = self._namespaces[name] = Namespace(self, name, self._table(name))
            if self.lifecycle.started:
                # Made while serving: its adapter starts now (shutdown waits for it).
                self.lifecycle.spawn(nsp.adapter.init())
        return nsp

    async def namespace_for(self, name: str, auth: Any) -> Namespace | None:
        """The namespace a client asked for: declared, or matching a dynamic spec; else None."""
        nsp = self._namespaces.get(name)
        if nsp is not None:
            return nsp
        if name in self._static:
            return self.of(name)
        for spec, table in self._dynamic:
            if isinstance(spec, re.Pattern):
                matched = spec.fullmatch(name) is not None
            elif callable(spec):
                verdict = spec(name, auth)
                matched = bool(await verdict) if inspect.isawaitable(verdict) else bool(verdict)
            else:
                continue
            if matched:
                nsp = self._namespaces[name] = Namespace(self, name, table)
                await nsp.adapter.init()
                return nsp
        return None

    def recovery_factory(self, nsp: Namespace) -> RecoveryStore | None:
        if self.recovery is None:
            return None
        if self._recovery_store is not None:
            return self._recovery_store(nsp, self.recovery)
        # An adapter that keeps events for every node (Redis Streams) keeps sessions too.
        provided = getattr(nsp.adapter, "recovery_store", None)
        if callable(provided):
            store: RecoveryStore = provided(self.recovery)
            return store
        return MemoryRecoveryStore(self.recovery)

    def generate_socket_id(self) -> str:
        return generate_sid()

    def persist_later(self, store: RecoveryStore, snapshot: SessionSnapshot) -> None:
        """Keep a disconnected socket's state in its namespace's store; shutdown waits for these writes."""
        self.lifecycle.spawn(store.persist(snapshot))

    def of_any(self, name: str) -> Namespace:
        # Encoding needs a namespace object; the root one serves for names that do not exist.
        return self._namespaces.get(name) or self.of("/")

    # -- server-wide operations act on "/" (Broadcaster) ---------------------------------------------
    def _all(self) -> BroadcastOperator:
        return self.of("/")._all()
