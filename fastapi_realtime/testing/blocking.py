"""The blocking facade: the async client's methods, run on its event loop's thread.

`with RealtimeTestClient(app)` runs the client's event loop in a background thread (an anyio
`BlockingPortal`). A facade shows one async object to sync code; its class declares what it
shows, and nothing is written twice:

```python
class BlockingClientSocket(Facade[ClientSocket]):
    emit = blocking(ClientSocket.emit)     # sio.emit("x", 1) runs `await socket.emit("x", 1)` there
    id = Mirror[str | None]()              # sio.id reads socket.id
```

`blocking(method)` is a descriptor. It takes the method's parameters as a `ParamSpec` (the
method is given unbound, `Concatenate[target type, P]`) and its awaited result as a type
variable, so on a facade instance it is a `Callable[P, R]`: mypy --strict checks each call
against the async method's own signature, and a change there reaches the facade with no edit.
At run time the function it returns sends the call to the loop thread and blocks until the
coroutine is done; its name, docstring and `inspect.signature` are those of the async method.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Concatenate, Generic, Never, ParamSpec, Self, TypeVar, cast, overload

from anyio.from_thread import BlockingPortal

from .socket import ClientSocket

__all__ = ["Blocking", "BlockingClientSocket", "Facade", "Mirror", "blocking", "on_loop"]

A = TypeVar("A")  # the async object a facade shows
P = ParamSpec("P")
R = TypeVar("R")
W = TypeVar("W")
T = TypeVar("T")


class Facade(Generic[A]):
    """The sync face of `target`, an object that lives on the event loop run by `portal`."""

    def __init__(self, target: A, portal: BlockingPortal) -> None:
        self._target = target
        self._portal = portal

    def __repr__(self) -> str:
        return repr(self._target)


class Blocking(Generic[A, P, R]):
    """A facade method: calls `method` on the facade's target in the loop thread, returns its result.

    Made by `blocking()` or `on_loop()`, which type it; `wrap`, when given, turns the result into
    what the caller gets (e.g. another facade on the same portal).
    """

    def __init__(
        self,
        method: Callable[Concatenate[A, P], Any],
        wrap: Callable[[Any, BlockingPortal], R] | None = None,
    ) -> None:
        self._method = method
        self._wrap = wrap
        signature = inspect.signature(method)
        parameters = list(signature.parameters.values())[1:]  # without the target (self)
        returns = signature.return_annotation if wrap is None else inspect.Signature.empty
        self._signature = signature.replace(parameters=parameters, return_annotation=returns)

    @overload
    def __get__(self, obj: None, owner: type[Any] | None = None) -> Self: ...

    @overload
    def __get__(self, obj: Facade[A], owner: type[Any] | None = None) -> Callable[P, R]: ...

    def __get__(self, obj: Facade[A] | None, owner: type[Any] | None = None) -> Self | Callable[P, R]:
        if obj is None:
            return self
        method, wrap, target, portal = self._method, self._wrap, obj._target, obj._portal

        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            # portal.call awaits the result when it is awaitable (a coroutine method)
            result = portal.call(functools.partial(method, target, *args, **kwargs))
            return cast(R, result) if wrap is None else wrap(result, portal)

        functools.update_wrapper(call, method)
        call.__signature__ = self._signature  # type: ignore[attr-defined]
        return call


@overload
def blocking(method: Callable[Concatenate[A, P], Awaitable[R]]) -> Blocking[A, P, R]: ...


@overload
def blocking(
    method: Callable[Concatenate[A, P], Awaitable[R]], wrap: Callable[[R, BlockingPortal], W]
) -> Blocking[A, P, W]: ...


def blocking(
    method: Callable[Concatenate[A, P], Awaitable[Any]], wrap: Callable[[Any, BlockingPortal], Any] | None = None
) -> Blocking[A, P, Any]:
    """The blocking form of the async `method`, given unbound (`ClientSocket.call`).

    With `wrap`, the caller gets `wrap(result, portal)` instead of the result.
    """
    return Blocking(method, wrap)


def on_loop(method: Callable[Concatenate[A, P], R]) -> Blocking[A, P, R]:
    """A plain (not async) `method` of the target, run on the loop thread, where its state lives."""
    return Blocking(method)


class Mirror(Generic[T]):
    """A read-only attribute of the facade that reads the target's attribute of the same name.

    For plain values that are replaced, never mutated in place, so safe to read from any thread.
    """

    name = ""

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type[Any] | None = None) -> Self: ...

    @overload
    def __get__(self, obj: Facade[Any], owner: type[Any] | None = None) -> T: ...

    def __get__(self, obj: Facade[Any] | None, owner: type[Any] | None = None) -> Self | T:
        if obj is None:
            return self
        return cast(T, getattr(obj._target, self.name))

    def __set__(self, obj: Facade[Any], value: Never) -> None:  # read-only, for mypy too
        raise AttributeError(f"{self.name!r} is read-only here; set it on the async object")


class BlockingClientSocket(Facade[ClientSocket]):
    """The sync face of a `ClientSocket`: the same methods, blocking. Handlers given to `on`
    run on the client's event loop thread."""

    id = Mirror[str | None]()
    pid = Mirror[str | None]()
    offset = Mirror[str | None]()
    connected = Mirror[bool]()
    recovered = Mirror[bool]()
    disconnect_reason = Mirror[str | None]()

    emit = blocking(ClientSocket.emit)
    call = blocking(ClientSocket.call)
    wait_for = blocking(ClientSocket.wait_for)
    disconnect = blocking(ClientSocket.disconnect)
    drop = blocking(ClientSocket.drop)
    reconnect = blocking(ClientSocket.reconnect)
    on = on_loop(ClientSocket.on)

    @property
    def socket(self) -> ClientSocket:
        """The async socket behind this facade (its loop runs in another thread)."""
        return self._target

    @property
    def received(self) -> list[tuple[str, tuple[Any, ...]]]:
        """A copy of `ClientSocket.received`, taken on the loop thread."""
        return self._portal.call(lambda: list(self._target.received))
