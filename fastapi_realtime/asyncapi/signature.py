"""Which parameters of a handler are event arguments, with their annotations resolved.

Read from the handler's call plan (`HandlerSpec.plan`), so the document binds exactly as the
server does: the Socket, the server, dependencies and request data are left out.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..handlers import UNSET, HandlerSpec, resolve_annotation

__all__ = ["Param", "Signature", "handler_signature"]


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    annotation: Any  # inspect.Parameter.empty when unannotated; a str when it could not be resolved
    default: Any  # inspect.Parameter.empty when required


@dataclass(frozen=True, slots=True)
class Signature:
    params: tuple[Param, ...]  # the parameters bound to event arguments, in order
    rest: Param | None  # *args
    returns: Any  # inspect.Parameter.empty when there is no return annotation


def _type_hints(func: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(func, include_extras=True)
    except Exception:
        # One unresolvable annotation makes get_type_hints give up on all; callers fall back per parameter.
        return {}


def _resolve(annotation: Any, hints: dict[str, Any], name: str, namespace: dict[str, Any]) -> Any:
    # The server's own rule (one parameter at a time) where get_type_hints gave up.
    return hints[name] if name in hints else resolve_annotation(annotation, namespace)


def handler_signature(spec: HandlerSpec) -> Signature:
    """The event parameters as the server binds them, with their resolved annotations."""
    func = spec.func
    target = inspect.unwrap(func)
    if not (inspect.isfunction(target) or inspect.ismethod(target)) and callable(target):
        target = type(target).__call__  # a callable object: its __call__ carries the annotations
    hints = _type_hints(target)
    namespace: dict[str, Any] = getattr(target, "__globals__", {})
    parameters = inspect.signature(func).parameters

    def param(name: str) -> Param:
        found = parameters[name]
        return Param(name, _resolve(found.annotation, hints, name, namespace), found.default)

    # Non-negative plan entries are event argument indexes; the rest are injected (Socket,
    # server, dependencies, request data) or `*args`.
    bound = sorted((source, name) for source, name in zip(spec.plan, spec.names) if source >= 0)
    rest = next((p.name for p in parameters.values() if p.kind is p.VAR_POSITIONAL), None)
    if spec.response_model is not UNSET:
        returns = spec.response_model
    else:
        returns = _resolve(inspect.signature(func).return_annotation, hints, "return", namespace)
    return Signature(tuple(param(name) for _, name in bound), None if rest is None else param(rest), returns)
