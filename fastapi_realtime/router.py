"""Routers: handlers declared with decorators, grouped per namespace, included like APIRouters."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from .handlers import Handler, HandlerSpec
from .socketio.packet import RESERVED_EVENTS

if TYPE_CHECKING:
    from .socket import Socket

H = TypeVar("H", bound=Handler)
Middleware = Callable[["Socket"], Awaitable[None]]
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


@dataclass(slots=True)
class HandlerTable:
    """Everything registered for one namespace (or one dynamic namespace pattern)."""

    events: dict[str, HandlerSpec] = field(default_factory=dict)
    any: HandlerSpec | None = None
    connect: HandlerSpec | None = None
    disconnect: HandlerSpec | None = None
    middlewares: list[Middleware] = field(default_factory=list)

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
        self.middlewares.extend(other.middlewares)


class RealtimeRouter:
    """A group of handlers for one namespace; `Realtime.include_router` adds it to a server."""

    def __init__(self, namespace: NamespaceSpec = "/") -> None:
        _check_namespace(namespace)
        self.namespace = namespace
        self.table = HandlerTable()
        self.routers: list[tuple[RealtimeRouter, NamespaceSpec | None]] = []

    def on(self, event: str, *, concurrent: bool = False) -> Callable[[H], H]:
        """Register a handler for `event`; its return value is the ack.

        `connect` handlers receive the auth payload and may raise ConnectionRejected;
        `disconnect` handlers receive the reason. Events from one client are handled one at a
        time in arrival order; `concurrent=True` runs each call of this handler in its own task.
        """
        if not isinstance(event, str) or not event:
            raise TypeError("event must be a non-empty string")
        if event in RESERVED_EVENTS and event not in LIFECYCLE_EVENTS:
            raise ValueError(f"{event!r} is a reserved event name")

        def decorator(func: H) -> H:
            spec = HandlerSpec.from_callable(func, concurrent=concurrent)
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
            single = HandlerTable(any=HandlerSpec.from_callable(func, concurrent=concurrent))
            self.table.merge(single, repr(self.namespace))
            return func

        return decorator

    def use(self, middleware: Middleware) -> Middleware:
        """Add a connect middleware: `async def mw(socket)`, raising ConnectionRejected to refuse.

        Usable as a decorator.
        """
        if not callable(middleware):
            raise TypeError("middleware must be an async callable")
        self.table.middlewares.append(middleware)
        return middleware

    def include_router(self, router: RealtimeRouter, *, namespace: NamespaceSpec | None = None) -> None:
        """Nest `router`; its handlers join this router's namespace unless `namespace` says otherwise."""
        if router is self:
            raise ValueError("a router cannot include itself")
        if namespace is not None:
            _check_namespace(namespace)
        self.routers.append((router, namespace))

    def flatten(self, namespace: NamespaceSpec | None = None) -> list[tuple[NamespaceSpec, HandlerTable]]:
        """(namespace, table) pairs for this router and every router nested in it."""
        own = self.namespace if namespace is None else namespace
        out: list[tuple[NamespaceSpec, HandlerTable]] = [(own, self.table)]
        for child, child_namespace in self.routers:
            target = child_namespace
            if target is None and child.namespace == "/" and own != "/":
                # A nested router that names no namespace lives in its parent's.
                target = own
            out.extend(child.flatten(target))
        return out
