"""Handler signature analysis, done once at registration; resolution at call time.

A handler's parameters come from three places:
- by annotation, the `Socket` and the `Realtime` server;
- FastAPI's own dependency machinery, for `Depends(...)` (plain, async and generator, with
  sub-dependencies, per-event caching and `app.dependency_overrides`), `Header()`, `Cookie()`,
  `Query()` and `Request`/`HTTPConnection` parameters, all read from the connection's
  handshake request;
- the event's arguments, in order, for the remaining positional parameters (`*args` takes
  the rest); annotated ones are validated and converted by pydantic.
A handler with no dependencies and no annotations costs nothing beyond the call.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol, TypeVar, get_args, get_origin

from fastapi import params
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_dependant, solve_dependencies
from pydantic import (
    PydanticSchemaGenerationError,
    PydanticUndefinedAnnotation,
    PydanticUserError,
    TypeAdapter,
    ValidationError,
)
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection, Request

from .exceptions import EventValidationError

if TYPE_CHECKING:
    from .sessions import EngineSession

Handler = Callable[..., Any]
CallNext = Callable[[Any, list[Any]], Awaitable[Any]]
# Generic in the socket they are called with: this module sits below the Socket class, so
# what it only keeps and passes on takes `Any` there; the router and the server name `Socket`.
SocketT = TypeVar("SocketT")
EventMiddleware = Callable[[SocketT, Any, list[Any], CallNext], Awaitable[Any]]
# `async def h(socket, exc)` (or a plain def); its return value is the ack.
ExceptionHandler = Callable[[SocketT, Any], Any]
ExceptionHandlers = tuple[tuple[type[BaseException], ExceptionHandler[SocketT]], ...]
# What a handler is registered for: it decides what a refusal message suggests.
HandlerRole = Literal["event", "connect", "disconnect", "any"]
CallbackRole = Literal["handler", "exception handler", "middleware", "event middleware"]

# Parameter sources in a call plan (non-negative values are event argument indexes).
_SOCKET = -1
_SERVER = -2
_REST = -3
_INJECTED = -4

SOCKET_SCOPE_KEY = "fastapi_realtime.socket"
UNSET: Any = object()
MISSING: Any = object()  # a parameter with no default


class _Connection(Protocol):
    @property
    def session(self) -> EngineSession: ...


class HandlerSocket(Protocol):
    """The socket as a handler call uses it (socket.Socket is one; that module is above this
    one): its connection's request scope for dependencies, its server for a `Realtime` parameter."""

    @property
    def client(self) -> _Connection: ...

    @property
    def server(self) -> object: ...


def _is_subclass(annotation: Any, name: str) -> bool:
    if isinstance(annotation, str):
        # An annotation that could not be resolved (imported only inside a function, say):
        # its spelling is all there is to go on.
        return annotation == name or annotation.endswith("." + name)
    if not inspect.isclass(annotation):
        return False
    return any(klass.__name__ == name and klass.__module__.startswith("fastapi_realtime") for klass in annotation.__mro__)


def resolve_annotation(annotation: Any, namespace: dict[str, Any]) -> Any:
    """A string annotation evaluated in the handler's module, one parameter at a time, so one
    unresolvable annotation does not hide the others."""
    if not isinstance(annotation, str):
        return annotation
    try:
        return eval(annotation, namespace)  # noqa: S307 - the module's own annotation text
    except Exception:
        return annotation


def _is_injected(annotation: Any, default: Any) -> bool:
    """Is this parameter FastAPI's business (a dependency or request data)?"""
    if isinstance(default, (params.Depends, params.Param)):
        return True
    if get_origin(annotation) is Annotated:
        if any(isinstance(extra, (params.Depends, params.Param)) for extra in get_args(annotation)[1:]):
            return True
        annotation = get_args(annotation)[0]
    return inspect.isclass(annotation) and issubclass(annotation, HTTPConnection)


def _needs_validation(annotation: Any) -> bool:
    return annotation is not inspect.Parameter.empty and annotation is not Any and not isinstance(annotation, str)


def _name(func: Any) -> str:
    name = getattr(func, "__name__", None)
    return name if isinstance(name, str) else type(func).__name__


def _type_name(annotation: Any) -> str:
    if inspect.isclass(annotation):
        return str(annotation.__qualname__)
    # `list[Foo] | None`, not `list[my.package.module.Foo] | None` (quoted literals left alone).
    return re.sub(r"(?<![\w'\".])(?:[A-Za-z_]\w*\.)+(?=[A-Za-z_])", "", inspect.formatannotation(annotation))


# What to do instead, by what the annotation was on.
_PARAMETER_ADVICE = (
    "annotate it with a pydantic model, a dataclass or another type pydantic supports, "
    "with Any to take the value as sent, or get it from Depends(...)"
)
_RESPONSE_ADVICE = "use a type pydantic supports, or pass response_model=None to send the return value as it is"


def _adapter(annotation: Any, func: Handler, subject: str, advice: str) -> TypeAdapter[Any] | None:
    """The validator for an annotation, built now: a type pydantic cannot handle is the
    registration's error, not every call's.

    `subject` names what was annotated ("parameter 'board'") in the error message.
    """
    if not _needs_validation(annotation):
        return None
    try:
        adapter = TypeAdapter(annotation)
    except PydanticUserError as exc:
        raise _not_validatable(exc, annotation, func, subject, advice) from exc
    return _build(adapter, annotation, func, subject, advice, final=False)


def _build(
    adapter: TypeAdapter[Any], annotation: Any, func: Handler, subject: str, advice: str, *, final: bool
) -> TypeAdapter[Any]:
    """Finish an adapter pydantic left incomplete: a model declared with `defer_build`, or one
    whose forward references are not defined yet.

    A name not defined yet may be a model declared further down the module, so at registration
    it is left for later; `final` (at include time, when the modules are loaded) refuses it.
    """
    if _complete(adapter):
        return adapter
    try:
        adapter.rebuild(raise_errors=True)
    except PydanticUndefinedAnnotation as exc:
        if final:
            raise TypeError(
                f"handler {_name(func)}: {subject} has type {_type_name(annotation)}, which refers to "
                f"{exc.name!r}, a name that is not defined; define or import it before the router is included"
            ) from exc
    except PydanticUserError as exc:
        raise _not_validatable(exc, annotation, func, subject, advice) from exc
    return adapter


def _complete(adapter: TypeAdapter[Any]) -> bool:
    # getattr: pydantic before 2.10 builds every adapter at once, so nothing is left to finish.
    return bool(getattr(adapter, "pydantic_complete", True))


def _not_validatable(exc: PydanticUserError, annotation: Any, func: Handler, subject: str, advice: str) -> TypeError:
    head = f"handler {_name(func)}: {subject} has type {_type_name(annotation)}"
    if isinstance(exc, PydanticSchemaGenerationError):
        return TypeError(f"{head}, which pydantic cannot validate; {advice}")
    return TypeError(f"{head}, which pydantic refuses ({exc.message}); {advice}")


def check_callable(func: Any, role: CallbackRole) -> None:
    """Refuse, at registration, what cannot serve as a handler, middleware or exception
    handler: a non-callable, or a generator function (its `yield`s would never be awaited)."""
    if not callable(func):
        raise TypeError(f"{role} {func!r} is not callable")
    call = getattr(func, "__call__", None)  # a callable object's method counts too
    if inspect.isasyncgenfunction(func) or inspect.isasyncgenfunction(call):
        kind = "an async generator function"
    elif inspect.isgeneratorfunction(func) or inspect.isgeneratorfunction(call):
        kind = "a generator function"
    else:
        return
    if role == "middleware":
        instead = "a connect middleware runs once and refuses by raising ConnectionRejected: remove the `yield`"
    elif role == "event middleware":
        instead = "an event middleware returns the ack: `return await call_next(event, args)` instead of yielding"
    elif role == "exception handler":
        instead = "an exception handler returns the ack: `return` it instead of yielding it"
    else:
        instead = (
            "a handler returns its ack: `return` the value instead of yielding it "
            "(to send several messages, `await socket.emit(...)` each one)"
        )
    raise TypeError(f"{role} {_name(func)} is {kind} (it uses `yield`); {instead}")


def _render(param: inspect.Parameter) -> str:
    # By hand, not str(param): string annotations (PEP 563) should read as written, unquoted.
    stars = "*" if param.kind is param.VAR_POSITIONAL else "**" if param.kind is param.VAR_KEYWORD else ""
    text = stars + param.name
    if param.annotation is not param.empty:
        annotation = param.annotation
        text += ": " + (annotation if isinstance(annotation, str) else str(inspect.formatannotation(annotation)))
    if param.default is not param.empty:
        text += (" = " if param.annotation is not param.empty else "=") + repr(param.default)
    return text


def _refuse_socketio_style(func: Handler, signature: inspect.Signature, sources: dict[str, int], role: HandlerRole) -> None:
    """python-socketio passes the sid first (`async def message(sid, data)`); here the handler
    asks for the Socket. Such a handler would get the event's first argument as its "sid", so it
    is refused with the signature to write instead. Only the first parameter counts (the second
    after `event` for a catch-all), and only in a handler that asks for no Socket at all."""
    if _SOCKET in sources.values():
        return
    params = list(signature.parameters.values())
    first = [p.name for p in params[:2] if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if first[:1] == ["sid"]:
        sid = params[0]
    elif role == "any" and first == ["event", "sid"]:
        sid = params[1]  # python-socketio's catch-all: (event, sid, data)
    else:
        return
    if sources.get(sid.name, _INJECTED) < 0:
        return  # `sid: str = Depends(get_sid)` or `sid: Realtime`: asked for on purpose
    rest = [p for p in params if p is not sid]
    uses = ["socket.id for the sid"]
    if role == "connect" and any(p.name == "environ" for p in rest):
        rest = [p for p in rest if p.name != "environ"]
        uses.append("socket.handshake for the environ")
    name = _name(func)
    suggestion = ", ".join(["socket: Socket", *map(_render, rest)])
    prefix = "async def" if inspect.iscoroutinefunction(func) else "def"
    written = ", ".join(map(_render, params))
    raise TypeError(
        f"handler {name}({written}) looks like a python-socketio handler; here the first parameter is "
        f"the Socket: {prefix} {name if name.isidentifier() else 'handler'}({suggestion}): ... "
        f"(use {' and '.join(uses)})"
    )


@dataclass(frozen=True, slots=True)
class HandlerSpec:
    func: Handler
    # One entry per parameter passed positionally: an argument index or a source constant.
    plan: tuple[int, ...]
    names: tuple[str, ...]
    defaults: tuple[Any, ...]
    validators: tuple[TypeAdapter[Any] | None, ...]
    is_async: bool
    concurrent: bool = False
    dependant: Dependant | None = None
    keyword_injected: tuple[str, ...] = ()
    response: TypeAdapter[Any] | None = None
    spread_response: bool = False
    dependencies: tuple[params.Depends, ...] = ()
    response_model: Any = UNSET
    # The event middlewares (outermost first) and exception handlers (innermost router first)
    # of the routers this handler was declared in.
    event_middlewares: tuple[EventMiddleware[Any], ...] = ()
    exception_handlers: ExceptionHandlers[Any] = ()
    # Derived: an async handler with no dependencies, validation or response model is called
    # directly with `bind`'s arguments (the per-event hot path), and the common signature
    # (socket, a, b, ...) binds by slicing.
    plain: bool = field(init=False, default=False)
    _socket_then: int = field(init=False, default=-1)

    def __post_init__(self) -> None:
        plain = (
            self.is_async and self.dependant is None and self.response is None and not self.keyword_injected
            and all(validator is None for validator in self.validators)
            and _REST not in self.plan and _INJECTED not in self.plan
        )
        object.__setattr__(self, "plain", plain)
        count = len(self.plan) - 1
        if self.plan[:1] == (_SOCKET,) and self.plan[1:] == tuple(range(count)):
            object.__setattr__(self, "_socket_then", count)

    def bind(self, socket: HandlerSocket, args: Sequence[Any]) -> list[Any]:
        """A plain handler's positional arguments: the event's, missing ones from defaults or None."""
        count = self._socket_then
        if count >= 0 and len(args) >= count:
            return [socket, *args[:count]]
        positional: list[Any] = []
        have = len(args)
        for source, default in zip(self.plan, self.defaults):
            if source >= 0:
                if source < have:
                    positional.append(args[source])
                else:
                    positional.append(None if default is MISSING else default)
            elif source == _SOCKET:
                positional.append(socket)
            else:
                positional.append(socket.server)
        return positional

    def scoped(
        self,
        dependencies: Sequence[params.Depends],
        event_middlewares: Sequence[EventMiddleware[Any]],
        exception_handlers: ExceptionHandlers[Any],
    ) -> HandlerSpec:
        """The same handler inside its routers: their dependencies run before its own."""
        spec = self
        if dependencies:
            spec = HandlerSpec.from_callable(
                self.func,
                concurrent=self.concurrent,
                dependencies=[*dependencies, *self.dependencies],
                response_model=self.response_model,
            )
        spec.finish_validators()
        return replace(
            spec,
            event_middlewares=(*event_middlewares, *self.event_middlewares),
            exception_handlers=(*self.exception_handlers, *exception_handlers),
        )

    def finish_validators(self) -> None:
        """Build the validators registration left incomplete (forward references to names not
        defined then); called as the handler is included, when a name still missing is an error."""
        pending = [
            (name, source, validator)
            for name, source, validator in zip(self.names, self.plan, self.validators)
            if validator is not None and not _complete(validator)
        ]
        if not pending and (self.response is None or _complete(self.response)):
            return
        # Only on this rare path: the annotations again, for the error messages.
        namespace = getattr(inspect.unwrap(self.func), "__globals__", {})
        signature = inspect.signature(self.func)
        for name, source, validator in pending:
            annotation = resolve_annotation(signature.parameters[name].annotation, namespace)
            subject = f"parameter {'*' + name if source == _REST else name!r}"
            _build(validator, annotation, self.func, subject, _PARAMETER_ADVICE, final=True)
        if self.response is not None and not _complete(self.response):
            if self.response_model is UNSET:
                subject, annotation = "the return annotation", resolve_annotation(signature.return_annotation, namespace)
            else:
                subject, annotation = "response_model", self.response_model
            _build(self.response, annotation, self.func, subject, _RESPONSE_ADVICE, final=True)

    def exception_handler_for(self, exc: BaseException) -> ExceptionHandler[Any] | None:
        """The handler its routers registered for `exc`, by the exception's MRO (like FastAPI)."""
        return find_exception_handler(self.exception_handlers, exc)

    @classmethod
    def from_callable(
        cls,
        func: Handler,
        *,
        concurrent: bool = False,
        dependencies: Sequence[params.Depends] = (),
        response_model: Any = UNSET,
        role: HandlerRole = "event",
    ) -> HandlerSpec:
        """Analyse `func` once; a signature that cannot work is a TypeError saying what to write."""
        check_callable(func, "handler")
        signature = inspect.signature(func)
        namespace = getattr(inspect.unwrap(func), "__globals__", {})
        plan: list[int] = []
        names: list[str] = []
        defaults: list[Any] = []
        validators: list[TypeAdapter[Any] | None] = []
        injected: list[inspect.Parameter] = []
        keyword_injected: list[str] = []
        # (position in validators, annotation, what it is on): built once the signature passed.
        to_validate: list[tuple[int, Any, str]] = []
        index = 0
        for param in signature.parameters.values():
            annotation = resolve_annotation(param.annotation, namespace)
            default = MISSING if param.default is param.empty else param.default
            if param.kind is param.VAR_KEYWORD:
                continue
            if _is_injected(annotation, param.default):
                injected.append(param.replace(annotation=annotation, kind=param.KEYWORD_ONLY))
                if param.kind is param.KEYWORD_ONLY:
                    keyword_injected.append(param.name)
                    continue
                source = _INJECTED
            elif param.kind is param.KEYWORD_ONLY:
                if param.default is param.empty:
                    raise TypeError(f"{func.__qualname__}: keyword-only parameter {param.name!r} needs a default")
                continue
            elif param.kind is param.VAR_POSITIONAL:
                source = _REST
                to_validate.append((len(validators), annotation, f"parameter {'*' + param.name!r}"))
                validators.append(None)
                plan.append(source)
                names.append(param.name)
                defaults.append(None)
                continue
            elif _is_subclass(annotation, "Socket"):
                source = _SOCKET
            elif _is_subclass(annotation, "Realtime"):
                source = _SERVER
            else:
                source = index
                index += 1
            plan.append(source)
            names.append(param.name)
            defaults.append(default)
            if source >= 0:
                to_validate.append((len(validators), annotation, f"parameter {param.name!r}"))
            validators.append(None)
        _refuse_socketio_style(func, signature, dict(zip(names, plan)), role)
        for position, annotation, subject in to_validate:
            validators[position] = _adapter(annotation, func, subject, _PARAMETER_ADVICE)
        dependant = None
        if injected or dependencies:
            dependant = _build_dependant(func, injected, dependencies)
        response_model_arg = response_model
        if response_model is UNSET:
            response_model = resolve_annotation(signature.return_annotation, namespace)
        response = None
        spread = False
        if _needs_validation(response_model) and response_model is not None and response_model is not type(None):
            subject = "the return annotation" if response_model_arg is UNSET else "response_model"
            response = _adapter(response_model, func, subject, _RESPONSE_ADVICE)
            spread = get_origin(response_model) is tuple
        is_async = inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(getattr(func, "__call__", None))
        return cls(
            func, tuple(plan), tuple(names), tuple(defaults), tuple(validators), is_async, concurrent,
            dependant, tuple(keyword_injected), response, spread, tuple(dependencies), response_model_arg,
        )

    @property
    def arity(self) -> int:
        """How many event arguments bind to named parameters."""
        return sum(1 for source in self.plan if source >= 0)

    async def call(self, socket: HandlerSocket, args: Sequence[Any]) -> Any:
        """Run the handler on an event's arguments; raises EventValidationError on bad input."""
        if self.dependant is None:
            return await self._invoke(socket, args, {})
        async with AsyncExitStack() as stack:
            # Generator dependencies are cleaned up when this block ends: after the handler.
            injected = await self._solve(socket, stack)
            return await self._invoke(socket, args, injected)

    async def _solve(self, socket: HandlerSocket, stack: AsyncExitStack) -> dict[str, Any]:
        assert self.dependant is not None
        scope = dict(socket.client.session.scope)
        scope.update(
            {
                "type": "http",
                "method": scope.get("method", "GET"),
                "path_params": {},
                "fastapi_inner_astack": stack,
                "fastapi_function_astack": stack,
                SOCKET_SCOPE_KEY: socket,
            }
        )
        request = Request(scope)
        solved = await solve_dependencies(
            request=request,
            dependant=self.dependant,
            dependency_overrides_provider=scope.get("app"),
            async_exit_stack=stack,
            embed_body_fields=False,
        )
        if solved.errors:
            raise EventValidationError(list(solved.errors))
        return solved.values

    async def _invoke(self, socket: HandlerSocket, args: Sequence[Any], injected: dict[str, Any]) -> Any:
        positional: list[Any] = []
        errors: list[dict[str, Any]] = []
        count = len(args)
        for source, name, default, validator in zip(self.plan, self.names, self.defaults, self.validators):
            if source >= 0:
                if source < count:
                    value = args[source]
                    if validator is not None:
                        value = _validate(validator, value, name, errors)
                    positional.append(value)
                elif default is not MISSING:
                    positional.append(default)
                elif validator is not None:
                    # An annotated parameter with no default is required, as in FastAPI.
                    errors.append({"type": "missing", "loc": ("args", name), "msg": "Field required", "input": None})
                    positional.append(None)
                else:
                    positional.append(None)  # unannotated: lenient, like a JS handler
            elif source == _SOCKET:
                positional.append(socket)
            elif source == _SERVER:
                positional.append(socket.server)
            elif source == _INJECTED:
                positional.append(injected[name])
            else:
                rest = args[self.arity:]
                if validator is not None:
                    rest = [_validate(validator, item, f"{name}[{i}]", errors) for i, item in enumerate(rest)]
                positional.extend(rest)
        if errors:
            raise EventValidationError(errors)
        keywords = {name: injected[name] for name in self.keyword_injected}
        if self.is_async:
            result = await self.func(*positional, **keywords)
        else:
            # As FastAPI runs plain `def` endpoints: in a worker thread, off the event loop.
            result = await run_in_threadpool(self.func, *positional, **keywords)
            if inspect.isawaitable(result):
                result = await result
        if self.response is not None and result is not None:
            # Python mode keeps bytes as bytes (they travel as attachments); the packet encoder
            # turns the rest (datetimes, UUIDs...) into JSON as FastAPI would.
            result = self.response.dump_python(self.response.validate_python(result))
            if self.spread_response:
                result = tuple(result)
        return result


def find_exception_handler(handlers: ExceptionHandlers[SocketT], exc: BaseException) -> ExceptionHandler[SocketT] | None:
    for klass in type(exc).__mro__:
        for exc_type, handler in handlers:
            if exc_type is klass:
                return handler
    return None


async def call_exception_handler(handler: ExceptionHandler[SocketT], socket: SocketT, exc: BaseException) -> Any:
    result = handler(socket, exc)
    return await result if inspect.isawaitable(result) else result


def _validate(validator: TypeAdapter[Any], value: Any, name: str, errors: list[dict[str, Any]]) -> Any:
    try:
        return validator.validate_python(value)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            errors.append({**error, "loc": ("args", name, *error["loc"])})
        return None


def _build_dependant(func: Handler, injected: list[inspect.Parameter], dependencies: Sequence[params.Depends]) -> Dependant:
    """A FastAPI Dependant for the handler's injected parameters plus router dependencies.

    FastAPI analyses a signature, so the injected parameters are given one of their own.
    """
    extra = [
        inspect.Parameter(f"__router_dependency_{i}", inspect.Parameter.KEYWORD_ONLY, default=dep)
        for i, dep in enumerate(dependencies)
    ]

    def injected_only(**values: Any) -> None:  # never called: it only carries a signature
        raise AssertionError

    injected_only.__signature__ = inspect.Signature([*extra, *injected])  # type: ignore[attr-defined]
    injected_only.__qualname__ = getattr(func, "__qualname__", "handler")
    return get_dependant(path="", call=injected_only)
