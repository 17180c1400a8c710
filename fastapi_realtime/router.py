"""Routers: handlers declared with decorators, grouped per namespace, included like APIRouters."""

from __future__ import annotations

import re
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn, Protocol, TypeVar, overload

from fastapi import params
from starlette.applications import Starlette
from starlette.routing import Router

from .handlers import (
    UNSET,
    EventMiddleware,
    ExceptionHandler,
    ExceptionHandlers,
    Handler,
    HandlerSpec,
    _is_subclass,
    check_callable,
)
from .socketio.packet import RESERVED_EVENTS

if TYPE_CHECKING:
    from .socket import Socket

H = TypeVar("H", bound=Handler)
# `async def mw(socket)` (or a plain def); raises ConnectionRejected to refuse.
Middleware = Callable[["Socket"], Any]
# A namespace: an exact name, a pattern, or a callable deciding from (name, auth).
NamespaceMatcher = Callable[[str, Any], "bool | Awaitable[bool]"]
NamespaceSpec = str | re.Pattern[str] | NamespaceMatcher

LIFECYCLE_EVENTS = ("connect", "disconnect")


def _check_namespace(namespace: NamespaceSpec) -> None:
    if isinstance(namespace, str):
        if not namespace.startswith("/"):
            raise ValueError(f"namespace {namespace!r} must start with '/'")
    elif not isinstance(namespace, re.Pattern) and not callable(namespace):
        raise TypeError("namespace must be a string, a compiled pattern or a callable")


def check_router(router: object, parent: object, namespace: NamespaceSpec | None = None) -> RealtimeRouter:
    """What `parent.include_router(router, namespace=...)` was given, checked before anything is
    merged: anything but a RealtimeRouter is a TypeError saying what to pass instead, and a
    router already included there with the same namespace a ValueError. `mark_included`
    records the include once it has succeeded."""
    if not isinstance(router, RealtimeRouter):
        raise TypeError(_not_a_router(router))
    target = router.namespace if namespace is None else namespace
    if any(target == seen for seen in router._included_in.get(parent, ())):
        raise ValueError(
            f"router {router!r} is already included in {_describe(parent)} (namespace {target!r}); "
            "include it once, or pass namespace=... to serve its handlers in another namespace as well"
        )
    return router


def mark_included(router: RealtimeRouter, parent: object, namespace: NamespaceSpec | None = None) -> None:
    """Record that `parent` includes `router` (see `check_router`)."""
    router._included_in.setdefault(parent, []).append(router.namespace if namespace is None else namespace)


def _not_a_router(obj: object) -> str:
    if isinstance(obj, (Router, Starlette)):
        # The FastAPI way round: the server's HTTP routes go into the app, not the other way.
        return (
            f"include_router takes a RealtimeRouter, not {type(obj).__name__}; to serve the realtime "
            "endpoint in a FastAPI app use app.include_router(realtime.router)"
        )
    if _is_subclass(type(obj), "Realtime"):
        return "include_router takes a RealtimeRouter, not a Realtime server; declare the handlers on a RealtimeRouter"
    if obj is RealtimeRouter:
        return "include_router takes a RealtimeRouter instance, not the class: RealtimeRouter(...)"
    return f"include_router takes a RealtimeRouter, not {type(obj).__name__}"


def _describe(parent: object) -> str:
    return "the server" if _is_subclass(type(parent), "Realtime") else repr(parent)


class NotAnAPIRouterError(TypeError, AttributeError):
    """A TypeError for the user; an AttributeError too, so that `getattr(obj, name, default)`
    and `hasattr` (Starlette's Mount reads `routes` that way) keep working."""


class NotAnAPIRouter:
    """Set on `Realtime` as the attributes FastAPI's `include_router` reads first (`routes`,
    `_contains_router`, depending on the version), so that `app.include_router(realtime)` says
    what to write instead of failing deep inside FastAPI."""

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> NotAnAPIRouter: ...
    @overload
    def __get__(self, obj: object, owner: type[Any]) -> NoReturn: ...
    def __get__(self, obj: object, owner: type[Any]) -> NotAnAPIRouter:
        if obj is None:
            return self
        raise NotAnAPIRouterError(
            "the Realtime server is not an APIRouter: use app.include_router(realtime.router), "
            "or app.mount(path, realtime)"
        )


@dataclass(slots=True)
class HandlerTable:
    """Everything registered for one namespace (or one dynamic namespace pattern)."""

    events: dict[str, HandlerSpec] = field(default_factory=dict)
    any: HandlerSpec | None = None
    connect: HandlerSpec | None = None
    disconnect: HandlerSpec | None = None
    middlewares: list[Middleware] = field(default_factory=list)
    event_middlewares: list[EventMiddleware[Socket]] = field(default_factory=list)
    exception_handlers: dict[type[BaseException], ExceptionHandler[Socket]] = field(default_factory=dict)
    # Handlers of events other nodes send with server_side_emit: (*args) -> answer.
    server_side: dict[str, Handler] = field(default_factory=dict)

    def concurrent_events(self, event: Any) -> bool:
        spec = self.events.get(event) if type(event) is str else None
        if spec is None:
            spec = self.any
        return spec is not None and spec.concurrent

    def scoped(
        self,
        dependencies: Sequence[params.Depends],
        event_middlewares: Sequence[EventMiddleware[Socket]],
        exception_handlers: ExceptionHandlers[Socket],
    ) -> HandlerTable:
        """A copy whose handlers carry their routers' dependencies, event middlewares and
        exception handlers, so that those apply to these handlers only."""

        def add(spec: HandlerSpec | None) -> HandlerSpec | None:
            return None if spec is None else spec.scoped(dependencies, event_middlewares, exception_handlers)

        return HandlerTable(
            {event: spec.scoped(dependencies, event_middlewares, exception_handlers) for event, spec in self.events.items()},
            add(self.any), add(self.connect), add(self.disconnect), list(self.middlewares),
            server_side=dict(self.server_side),
        )

    def copy(self) -> HandlerTable:
        return HandlerTable(
            dict(self.events), self.any, self.connect, self.disconnect, list(self.middlewares),
            list(self.event_middlewares), dict(self.exception_handlers), dict(self.server_side),
        )

    def merge(self, other: HandlerTable, where: str) -> None:
        """Add `other`'s handlers; two handlers for one event are an error, not a silent override."""
        for event, spec in other.events.items():
            if event in self.events:
                raise ValueError(f"two handlers for event {event!r} in namespace {where}")
            self.events[event] = spec
        for name in ("any", "connect", "disconnect"):
            spec = getattr(other, name)
            if spec is None:
                continue
            if getattr(self, name) is not None:
                label = "catch-all" if name == "any" else repr(name)
                raise ValueError(f"two {label} handlers in namespace {where}")
            setattr(self, name, spec)
        for event, handler in other.server_side.items():
            if event in self.server_side:
                raise ValueError(f"two server-side handlers for {event!r} in namespace {where}")
            self.server_side[event] = handler
        # Event middlewares and exception handlers travel with the handlers (see `scoped`).
        self.middlewares.extend(other.middlewares)


class Hooks(Protocol):
    """Where connect middlewares, event middlewares and exception handlers are kept."""

    middlewares: list[Middleware]
    event_middlewares: list[EventMiddleware[Socket]]
    exception_handlers: dict[type[BaseException], ExceptionHandler[Socket]]


class UsesMiddlewares:
    """`use`: connect middlewares, for the server, routers and namespaces alike."""

    def _hooks(self) -> Hooks:
        raise NotImplementedError

    def use(self, middleware: Middleware) -> Middleware:
        """Add a connect middleware: `async def mw(socket)`, raising ConnectionRejected to refuse.

        Usable as a decorator.
        """
        check_callable(middleware, "middleware")
        self._hooks().middlewares.append(middleware)
        return middleware


class RegistersHooks(UsesMiddlewares):
    """`use`, `event_middleware` and `exception_handler`, for the server (every namespace) and
    routers (their handlers and their nested routers')."""

    def event_middleware(self, middleware: EventMiddleware[Socket]) -> EventMiddleware[Socket]:
        """Add a per-event middleware (Node's `socket.use`); usable as a decorator.

        `async def mw(socket, event, args, call_next)`: inspect or change the event and its
        arguments and `return await call_next(event, args)` (its result is the ack), or raise to
        refuse the event (the exception handlers decide what the client hears).
        """
        check_callable(middleware, "event middleware")
        self._hooks().event_middlewares.append(middleware)
        return middleware

    def exception_handler(
        self, exc_type: type[BaseException]
    ) -> Callable[[ExceptionHandler[Socket]], ExceptionHandler[Socket]]:
        """Handle `exc_type` raised by the handlers in scope: `async def h(socket, exc)`. Its
        return value is the ack when the client asked for one.

        The most specific exception class wins; for one class, the innermost router's handler.
        """
        if not (isinstance(exc_type, type) and issubclass(exc_type, BaseException)):
            raise TypeError("exception_handler takes an exception class")

        def decorator(handler: ExceptionHandler[Socket]) -> ExceptionHandler[Socket]:
            check_callable(handler, "exception handler")
            self._hooks().exception_handlers[exc_type] = handler
            return handler

        return decorator


class RealtimeRouter(RegistersHooks):
    """A group of handlers for one namespace; `Realtime.include_router` adds it to a server."""

    def __init__(self, namespace: NamespaceSpec = "/", *, dependencies: Sequence[params.Depends] = ()) -> None:
        _check_namespace(namespace)
        self.namespace = namespace
        self.dependencies = list(dependencies)
        self.table = HandlerTable()
        self.routers: list[tuple[RealtimeRouter, NamespaceSpec | None, list[params.Depends]]] = []
        # Who includes this router, and with which namespaces: to refuse the same include twice.
        # Weak: a router declared at module level must not keep every server it served alive.
        self._included_in: weakref.WeakKeyDictionary[object, list[NamespaceSpec]] = weakref.WeakKeyDictionary()

    def _hooks(self) -> Hooks:
        return self.table

    def __repr__(self) -> str:
        events = [*(["connect"] if self.table.connect else []), *self.table.events]
        shown = ", ".join(events[:3]) + (", ..." if len(events) > 3 else "")
        return f"<RealtimeRouter {self.namespace!r}" + (f" events: {shown}>" if events else ">")

    def on(
        self,
        event: str,
        *,
        concurrent: bool = False,
        dependencies: Sequence[params.Depends] = (),
        response_model: Any = UNSET,
    ) -> Callable[[H], H]:
        """Register a handler for `event`; its return value is the ack.

        `connect` handlers receive the auth payload and may raise ConnectionRejected;
        `disconnect` handlers receive the reason. Events from one client are handled one at a
        time in arrival order; `concurrent=True` runs each call of this handler in its own task.
        `dependencies` run before the handler (their values unused); `response_model` (or the
        return annotation) validates and serialises the ack.
        """
        if not isinstance(event, str) or not event:
            raise TypeError("event must be a non-empty string")
        if event in RESERVED_EVENTS and event not in LIFECYCLE_EVENTS:
            raise ValueError(f"{event!r} is a reserved event name")

        def decorator(func: H) -> H:
            spec = HandlerSpec.from_callable(
                func,
                concurrent=concurrent,
                dependencies=[*self.dependencies, *dependencies],
                response_model=response_model,
                role="connect" if event == "connect" else "disconnect" if event == "disconnect" else "event",
            )
            single = HandlerTable()
            if event == "connect":
                single.connect = spec
            elif event == "disconnect":
                single.disconnect = spec
            else:
                single.events[event] = spec
            self.table.merge(single, repr(self.namespace))
            return func

        return decorator

    def on_any(self, *, concurrent: bool = False) -> Callable[[H], H]:
        """Register a catch-all for events that have no handler of their own: (socket, event, *args)."""

        def decorator(func: H) -> H:
            single = HandlerTable(
                any=HandlerSpec.from_callable(func, concurrent=concurrent, dependencies=self.dependencies, role="any")
            )
            self.table.merge(single, repr(self.namespace))
            return func

        return decorator

    def on_server_side(self, event: str) -> Callable[[H], H]:
        """Handle `event` sent by another node with `server_side_emit` (Node's `io.on(event)`
        for server-side emits): `async def h(*args)`, called with the event's arguments; its
        return value is this node's answer to `server_side_emit_with_ack`."""
        if not isinstance(event, str) or not event:
            raise TypeError("event must be a non-empty string")

        def decorator(func: H) -> H:
            check_callable(func, "handler")
            self.table.merge(HandlerTable(server_side={event: func}), repr(self.namespace))
            return func

        return decorator

    def include_router(
        self,
        router: RealtimeRouter,
        *,
        namespace: NamespaceSpec | None = None,
        dependencies: Sequence[params.Depends] = (),
    ) -> None:
        """Nest `router`; its handlers join this router's namespace unless `namespace` says otherwise."""
        router = check_router(router, self, namespace)
        if router is self:
            raise ValueError("a router cannot include itself")
        if router._includes(self):
            raise ValueError(
                f"router {router!r} already includes {self!r} (directly or through routers nested in it); "
                "including it here would make a cycle"
            )
        if namespace is not None:
            _check_namespace(namespace)
        self.routers.append((router, namespace, list(dependencies)))
        mark_included(router, self, namespace)

    def _includes(self, target: RealtimeRouter) -> bool:
        """Is `target` nested in this router, at any depth?"""
        seen: set[int] = set()
        stack = [child for child, _, _ in self.routers]
        while stack:
            router = stack.pop()
            if router is target:
                return True
            if id(router) not in seen:
                seen.add(id(router))
                stack.extend(child for child, _, _ in router.routers)
        return False

    def flatten(
        self,
        namespace: NamespaceSpec | None = None,
        dependencies: Sequence[params.Depends] = (),
        event_middlewares: Sequence[EventMiddleware[Socket]] = (),
        exception_handlers: ExceptionHandlers[Socket] = (),
    ) -> list[tuple[NamespaceSpec, HandlerTable]]:
        """(namespace, table) pairs for this router and every router nested in it; each handler
        carries what its enclosing routers add (dependencies, event middlewares, exception handlers)."""
        own = self.namespace if namespace is None else namespace
        middlewares = (*event_middlewares, *self.table.event_middlewares)
        handlers = (*self.table.exception_handlers.items(), *exception_handlers)
        out = [(own, self.table.scoped(dependencies, middlewares, handlers))]
        for child, child_namespace, child_dependencies in self.routers:
            target = child_namespace
            if target is None and child.namespace == "/" and own != "/":
                # A nested router that names no namespace lives in its parent's.
                target = own
            # Like APIRouter: the parent's own dependencies reach the routers nested in it.
            inherited = [*dependencies, *self.dependencies, *child_dependencies]
            out.extend(child.flatten(target, inherited, middlewares, handlers))
        return out
