"""Handler signature analysis, done once at registration.

The `Socket` parameter is found by its annotation (so is the `Realtime` server); the other
positional parameters bind to the event's arguments in order, and `*args` takes the rest.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .socket import Socket

Handler = Callable[..., Any]

# Parameter sources in a call plan.
_SOCKET = -1
_SERVER = -2
_REST = -3


def _is_subclass(annotation: Any, name: str) -> bool:
    if isinstance(annotation, str):
        # An annotation that could not be resolved (imported only inside a function, say):
        # its spelling is all there is to go on.
        return annotation == name or annotation.endswith("." + name)
    if not inspect.isclass(annotation):
        return False
    return any(klass.__name__ == name and klass.__module__.startswith("fastapi_realtime") for klass in annotation.__mro__)


def _resolve(annotation: Any, namespace: dict[str, Any]) -> Any:
    """A string annotation evaluated in the handler's module, one parameter at a time, so one
    unresolvable annotation does not hide the others."""
    if not isinstance(annotation, str):
        return annotation
    try:
        return eval(annotation, namespace)  # noqa: S307 - the module's own annotation text
    except Exception:
        return annotation


@dataclass(frozen=True, slots=True)
class HandlerSpec:
    func: Handler
    # One entry per parameter passed positionally: an argument index or a source constant.
    plan: tuple[int, ...]
    defaults: tuple[Any, ...]
    is_async: bool
    concurrent: bool = False

    @classmethod
    def from_callable(cls, func: Handler, *, concurrent: bool = False) -> HandlerSpec:
        if not callable(func):
            raise TypeError(f"handler {func!r} is not callable")
        signature = inspect.signature(func)
        namespace = getattr(inspect.unwrap(func), "__globals__", {})
        plan: list[int] = []
        defaults: list[Any] = []
        index = 0
        for param in signature.parameters.values():
            annotation = _resolve(param.annotation, namespace)
            if param.kind is param.VAR_POSITIONAL:
                plan.append(_REST)
                defaults.append(None)
                continue
            if param.kind in (param.KEYWORD_ONLY, param.VAR_KEYWORD):
                if param.kind is param.KEYWORD_ONLY and param.default is param.empty:
                    raise TypeError(f"{func.__qualname__}: keyword-only parameter {param.name!r} needs a default")
                continue
            if _is_subclass(annotation, "Socket"):
                plan.append(_SOCKET)
            elif _is_subclass(annotation, "Realtime"):
                plan.append(_SERVER)
            else:
                plan.append(index)
                index += 1
            defaults.append(None if param.default is param.empty else param.default)
        is_async = inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(getattr(func, "__call__", None))
        return cls(func, tuple(plan), tuple(defaults), is_async, concurrent)

    @property
    def arity(self) -> int:
        """How many event arguments bind to named parameters."""
        return sum(1 for source in self.plan if source >= 0)

    async def call(self, socket: Socket, args: Sequence[Any]) -> Any:
        positional: list[Any] = []
        count = len(args)
        for source, default in zip(self.plan, self.defaults):
            if source >= 0:
                positional.append(args[source] if source < count else default)
            elif source == _SOCKET:
                positional.append(socket)
            elif source == _SERVER:
                positional.append(socket.server)
            else:
                positional.extend(args[self.arity:])
        result = self.func(*positional)
        if self.is_async or inspect.isawaitable(result):
            result = await typing.cast(Awaitable[Any], result)
        return result
