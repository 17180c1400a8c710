"""A handler's event arguments and ack as the payload schemas of its messages.

A message payload is the event's argument list, in order, as Socket.IO sends it:
`socket.emit("move", a, b)` carries `[a, b]`. The ack is what the server builds from the
handler's result (its `response_model` or return annotation).
"""

from __future__ import annotations

import inspect
import types
import typing
from dataclasses import dataclass
from typing import Any, Union

from ..handlers import HandlerSpec
from .schemas import Schemas, jsonable, titled
from .signature import Param, handler_signature

__all__ = ["AckPlan", "Pending", "ack_schema", "payload_schema", "plan_handler"]


@dataclass(slots=True)
class Pending:
    """Schema tickets for one handler, turned into payload schemas once pydantic has run."""

    params: list[tuple[Param, int]]
    rest: tuple[Param, int] | None
    returns: AckPlan | None


@dataclass(frozen=True, slots=True)
class AckPlan:
    tickets: tuple[int, ...]  # one per ack argument; when variadic, the one for every argument (or none: any)
    variadic: bool
    optional: bool  # None is a possible return: the ack may carry no argument


def _plan_ack(annotation: Any, schemas: Schemas) -> AckPlan | None:
    """The ack's argument list, as the server builds it from the handler's result.

    None -> no argument; a `tuple[...]` annotation -> one argument per item (the server spreads
    it); anything else -> one argument. No annotation, None or NoReturn -> no reply documented.
    """
    if annotation is inspect.Parameter.empty or annotation is None or annotation is type(None):
        return None
    if annotation is typing.NoReturn or annotation is typing.Never:
        return None
    if isinstance(annotation, str) or annotation is Any or annotation is object:
        # Not validated: whatever the handler returns, a tuple spread into several arguments.
        return AckPlan((schemas.add(annotation, "serialization"),) if isinstance(annotation, str) else (), True, True)
    if typing.get_origin(annotation) is tuple:
        args = typing.get_args(annotation)
        if len(args) == 2 and args[1] is Ellipsis:
            return AckPlan((schemas.add(args[0], "serialization"),), True, False)
        if args == ((),):
            return AckPlan((), False, False)
        return AckPlan(tuple(schemas.add(a, "serialization") for a in args), False, False)
    optional = False
    if typing.get_origin(annotation) in (Union, types.UnionType):
        # A None result is an ack without arguments, not a null argument.
        members = [m for m in typing.get_args(annotation) if m is not type(None)]
        optional = len(members) < len(typing.get_args(annotation))
        annotation = members[0] if len(members) == 1 else Union[tuple(members)]  # noqa: UP007 - a runtime list
    return AckPlan((schemas.add(annotation, "serialization"),), False, optional)


def plan_handler(spec: HandlerSpec, schemas: Schemas, *, skip_first: bool = False) -> Pending:
    sig = handler_signature(spec)
    bound = list(sig.params[1:] if skip_first else sig.params)
    return Pending(
        params=[(p, schemas.add(p.annotation, "validation")) for p in bound],
        rest=None if sig.rest is None else (sig.rest, schemas.add(sig.rest.annotation, "validation")),
        returns=_plan_ack(sig.returns, schemas),
    )


def _args_schema(items: list[dict[str, Any]], required: int, rest: dict[str, Any] | None) -> dict[str, Any]:
    """An argument list as a draft-07 array.

    An array is what travels (Socket.IO events carry a list of arguments); `items` as a list
    is draft-07's tuple form, the dialect of AsyncAPI 3.0 Schema Objects, so generic validators
    and AsyncAPI tools check each position (2020-12's `prefixItems` would be silently ignored).
    Arguments beyond the named ones are refused unless the handler takes `*args`.
    """
    schema: dict[str, Any] = {"type": "array"}
    if items:
        schema["items"] = items
        schema["additionalItems"] = rest if rest is not None else False
    elif rest is not None:
        schema["items"] = rest
    else:
        schema["maxItems"] = 0
    if required:
        schema["minItems"] = required
    return schema


def payload_schema(pending: Pending, schemas: Schemas) -> dict[str, Any]:
    items: list[dict[str, Any]] = []
    required = 0
    for position, (param, ticket) in enumerate(pending.params, 1):
        item = titled(param.name, schemas[ticket])
        if param.default is inspect.Parameter.empty:
            required = position
        else:
            ok, value = jsonable(param.default)
            if ok:
                item["default"] = value
        items.append(item)
    rest = None if pending.rest is None else titled(pending.rest[0].name, schemas[pending.rest[1]])
    return _args_schema(items, required, rest)


def ack_schema(plan: AckPlan, schemas: Schemas) -> dict[str, Any]:
    if plan.variadic:
        return {"type": "array", "items": schemas[plan.tickets[0]]} if plan.tickets else {"type": "array"}
    items = [schemas[t] for t in plan.tickets]
    return _args_schema(items, 0 if plan.optional else len(items), None)
