"""AsyncAPI 3.0 description of a Realtime server, read from its registered handlers.

The model: one server (Socket.IO v5 at `realtime.path`), one channel per namespace (a dynamic
namespace is one channel whose address is the parameter `{namespace}`), one message per event
the server handles, and a `receive` operation per message whose `reply` is the ack when the
handler returns something (its `response_model` or return annotation). A message payload is
the event's argument list, in order, as Socket.IO sends it: `socket.emit("move", a, b)`
carries `[a, b]`.

Which parameters are event arguments is read from the handler's call plan (`HandlerSpec.plan`),
so the document binds exactly as the server does. Events the application emits are not
declared anywhere; the only `send` operation is the server's own `error` event.
"""

from __future__ import annotations

import html
import inspect
import json
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Union

from pydantic import TypeAdapter
from pydantic.json_schema import JsonSchemaMode

from .handlers import UNSET, HandlerSpec
from .router import HandlerTable, NamespaceSpec

if TYPE_CHECKING:
    from .server import Realtime

__all__ = ["DocsInfo", "asyncapi_html", "build_asyncapi", "info_from_scope"]

ASYNCAPI_VERSION = "3.0.0"
DEFAULT_TITLE = "fastapi-realtime"
DEFAULT_VERSION = "1.0.0"
REF_TEMPLATE = "#/components/schemas/{model}"
_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")  # component keys must match ^[\w\d.\-_]+$

# Protocol messages shared by every namespace: defined once in components.messages.
_CONNECTED = "socketio.connected"
_CONNECT_ERROR = "socketio.connect_error"
_DISCONNECT = "socketio.disconnect"
_ERROR_ACK = "fastapi_realtime.error_ack"
_ERROR_EVENT = "fastapi_realtime.error"
# The error bodies of fastapi_realtime.errors: FastAPI's 422 `detail`, tagged.
_VALIDATION_ERROR: dict[str, Any] = {
    "type": "object",
    "title": "Validation error",
    "properties": {
        "error": {"const": "validation_error"},
        "detail": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {"type": "array", "items": {"type": ["string", "integer"]}},
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
    "required": ["error", "detail"],
}
_INTERNAL_ERROR: dict[str, Any] = {
    "type": "object",
    "title": "Internal error",
    "properties": {"error": {"const": "internal_error"}, "message": {"type": "string"}},
    "required": ["error", "message"],
}
_PROTOCOL_MESSAGES: dict[str, dict[str, Any]] = {
    _CONNECTED: {
        "name": "connect",
        "title": "Connected",
        "summary": "CONNECT reply: the client joined the namespace.",
        "payload": {
            "type": "object",
            "properties": {
                "sid": {"type": "string", "description": "The socket id in this namespace."},
                "pid": {
                    "type": "string",
                    "description": "Private id for connection state recovery (only when recovery is on).",
                },
            },
            "required": ["sid"],
        },
        "x-socketio-packet": "CONNECT",
    },
    _CONNECT_ERROR: {
        "name": "connect_error",
        "title": "Connection refused",
        "summary": "CONNECT_ERROR: a middleware or the connect handler raised ConnectionRejected.",
        "payload": {
            "type": "object",
            "properties": {"message": {"type": "string"}, "data": {}},
            "required": ["message"],
        },
        "x-socketio-packet": "CONNECT_ERROR",
    },
    _DISCONNECT: {
        "name": "disconnect",
        "title": "Disconnect",
        "summary": "DISCONNECT packet: the client leaves the namespace.",
        "x-socketio-packet": "DISCONNECT",
    },
    _ERROR_ACK: {
        "name": "(error ack)",
        "title": "Error ack",
        "summary": "The ack instead of the handler's result when the arguments fail validation or the "
        "handler raises (an exception handler may answer otherwise).",
        "payload": {
            "type": "array",
            "items": [{"oneOf": [_VALIDATION_ERROR, _INTERNAL_ERROR]}],
            "additionalItems": False,
            "minItems": 1,
        },
        "x-socketio-packet": "ACK",
    },
    _ERROR_EVENT: {
        "name": "error",
        "title": "error",
        "summary": "Emitted by the server when an event sent without an ack callback fails validation.",
        "payload": {
            "type": "array",
            "items": [
                {
                    "allOf": [_VALIDATION_ERROR],
                    "properties": {"event": {"description": "The event that failed."}},
                    "required": ["event"],
                }
            ],
            "additionalItems": False,
            "minItems": 1,
        },
        "x-socketio-packet": "EVENT",
    },
}
_DISCONNECT_REASONS = (
    "client namespace disconnect", "server namespace disconnect", "transport close", "transport error",
    "ping timeout", "parse error", "forced close", "forced server close", "server shutting down",
)


# -- reading handler signatures ------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Param:
    name: str
    annotation: Any  # inspect.Parameter.empty when unannotated; a str when it could not be resolved
    default: Any  # inspect.Parameter.empty when required


@dataclass(frozen=True, slots=True)
class _Signature:
    params: tuple[_Param, ...]  # the parameters bound to event arguments, in order
    rest: _Param | None  # *args
    returns: Any  # inspect.Parameter.empty when there is no return annotation


def _type_hints(func: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(func, include_extras=True)
    except Exception:
        # One unresolvable annotation makes get_type_hints give up on all; callers fall back per parameter.
        return {}


def _resolve(annotation: Any, hints: dict[str, Any], name: str, namespace: dict[str, Any]) -> Any:
    if name in hints:
        return hints[name]
    if isinstance(annotation, str):
        try:
            return eval(annotation, namespace)  # noqa: S307 - the handler module's own annotation text
        except Exception:
            return annotation
    return annotation


def _signature(spec: HandlerSpec) -> _Signature:
    """The event parameters as the server binds them, with their resolved annotations."""
    func = spec.func
    target = inspect.unwrap(func)
    if not (inspect.isfunction(target) or inspect.ismethod(target)) and callable(target):
        target = type(target).__call__  # a callable object: its __call__ carries the annotations
    hints = _type_hints(target)
    namespace: dict[str, Any] = getattr(target, "__globals__", {})
    parameters = inspect.signature(func).parameters

    def param(name: str) -> _Param:
        found = parameters[name]
        return _Param(name, _resolve(found.annotation, hints, name, namespace), found.default)

    # Non-negative plan entries are event argument indexes; the rest are injected (Socket,
    # server, dependencies, request data) or `*args`.
    bound = sorted((source, name) for source, name in zip(spec.plan, spec.names) if source >= 0)
    rest = next((p.name for p in parameters.values() if p.kind is p.VAR_POSITIONAL), None)
    if spec.response_model is not UNSET:
        returns = spec.response_model
    else:
        returns = _resolve(inspect.signature(func).return_annotation, hints, "return", namespace)
    return _Signature(tuple(param(name) for _, name in bound), None if rest is None else param(rest), returns)


# -- JSON Schemas through pydantic ----------------------------------------------------------------

class _Schemas:
    """Collects annotations, then has pydantic describe them all in one pass.

    One pass shares one set of definitions: a model used by several events lands once in
    components.schemas, two different models with the same class name get distinct keys, and a
    model whose input and output forms differ gets `Name-Input` / `Name-Output`.
    """

    def __init__(self) -> None:
        self._adapters: list[tuple[int, JsonSchemaMode, TypeAdapter[Any]]] = []
        self._fallback: dict[int, dict[str, Any]] = {}
        self._done: dict[int, dict[str, Any]] = {}
        self.definitions: dict[str, Any] = {}

    def add(self, annotation: Any, mode: JsonSchemaMode) -> int:
        """Register an annotation; the returned ticket gives its schema after `resolve()`."""
        ticket = len(self._adapters) + len(self._fallback)
        if annotation is inspect.Parameter.empty:
            self._fallback[ticket] = {}
        elif isinstance(annotation, str):
            self._fallback[ticket] = {"description": f"Unresolved annotation {annotation!r}."}
        else:
            try:
                adapter: TypeAdapter[Any] = TypeAdapter(annotation)
                adapter.json_schema(mode=mode)
            except Exception:
                # A type pydantic cannot describe must cost one schema, not the whole document.
                self._fallback[ticket] = {"description": f"Python type {_type_name(annotation)} (no JSON Schema)."}
            else:
                self._adapters.append((ticket, mode, adapter))
        return ticket

    def resolve(self) -> None:
        if not self._adapters:
            return
        by_key, definitions = TypeAdapter.json_schemas(self._adapters, ref_template=REF_TEMPLATE)
        self._done = {ticket: _draft07(schema) for (ticket, _mode), schema in by_key.items()}
        self.definitions = {name: _draft07(schema) for name, schema in definitions.get("$defs", {}).items()}
        self._merge_duplicates()

    def _merge_duplicates(self) -> None:
        """Keep one of several identical definitions.

        When two classes share a name, pydantic names the input and output forms of a model
        apart (`Item-Output` beside `module__Item`) even when they are the same schema. Equal
        schemas (titles included) validate the same, so merging loses nothing. Merging can make
        the schemas that refer to them equal in turn, hence the repeat, bounded by their number.
        """
        for _ in range(len(self.definitions)):
            groups: dict[str, list[str]] = {}
            for name, schema in self.definitions.items():
                groups.setdefault(json.dumps(schema, sort_keys=True), []).append(name)
            renames: dict[str, str] = {}
            for names in groups.values():
                # Prefer a name without the -Input/-Output suffix, then the shortest.
                keep = min(names, key=lambda n: (n.endswith(("-Input", "-Output")), len(n), n))
                renames.update({f"#/components/schemas/{n}": f"#/components/schemas/{keep}" for n in names if n != keep})
            if not renames:
                return
            self.definitions = {
                name: _rename_refs(schema, renames)
                for name, schema in self.definitions.items()
                if f"#/components/schemas/{name}" not in renames
            }
            self._done = {ticket: _rename_refs(schema, renames) for ticket, schema in self._done.items()}

    def __getitem__(self, ticket: int) -> dict[str, Any]:
        return dict(self._fallback[ticket] if ticket in self._fallback else self._done[ticket])


def _rename_refs(node: Any, renames: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {
            key: renames.get(value, value) if key == "$ref" and isinstance(value, str) else _rename_refs(value, renames)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_rename_refs(item, renames) for item in node]
    return node


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__qualname__", None) or repr(annotation)


_SUBSCHEMA = ("additionalItems", "additionalProperties", "contains", "else", "if", "items", "not", "propertyNames", "then")
_SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "items")
_SUBSCHEMA_MAPS = ("$defs", "definitions", "dependencies", "patternProperties", "properties")


def _draft07(schema: Any) -> Any:
    """Rewrite pydantic's JSON Schema 2020-12 into the draft-07 dialect AsyncAPI 3.0 schemas use.

    Two keywords differ in what pydantic emits: a tuple's `prefixItems` (+ `items` for the rest)
    is draft-07's `items: [...]` (+ `additionalItems`), and `discriminator`, an object in
    OpenAPI, is the property name alone in AsyncAPI. Only schema positions are walked, so a
    model field that happens to be called `discriminator` is left alone.
    """
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _SUBSCHEMA_LISTS and isinstance(value, list):
            out[key] = [_draft07(item) for item in value]
        elif key in _SUBSCHEMA:
            out[key] = _draft07(value)
        elif key in _SUBSCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: _draft07(item) for name, item in value.items()}
        elif key == "discriminator" and isinstance(value, dict):
            out[key] = value.get("propertyName")
        else:
            out[key] = value
    if "prefixItems" in out:
        prefix = [_draft07(item) for item in out.pop("prefixItems")]
        if "items" in out:
            out["additionalItems"] = out.pop("items")
        if prefix:
            out["items"] = prefix
    return out


def _titled(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    # Draft-07 ignores keywords beside $ref, so a titled reference wraps it in allOf.
    if "$ref" in schema:
        return {"title": name, "allOf": [schema]}
    return {"title": name, **schema}


def _jsonable(value: Any) -> tuple[bool, Any]:
    try:
        return True, TypeAdapter(Any).dump_python(value, mode="json")
    except Exception:
        return False, None


# -- payloads and acks ----------------------------------------------------------------------------

@dataclass(slots=True)
class _Pending:
    """Schema tickets for one handler, turned into payload schemas once pydantic has run."""

    params: list[tuple[_Param, int]]
    rest: tuple[_Param, int] | None
    returns: _Return | None


@dataclass(frozen=True, slots=True)
class _Return:
    tickets: tuple[int, ...]  # one per ack argument; when variadic, the one for every argument (or none: any)
    variadic: bool
    optional: bool  # None is a possible return: the ack may carry no argument


def _plan_return(annotation: Any, schemas: _Schemas) -> _Return | None:
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
        return _Return((schemas.add(annotation, "serialization"),) if isinstance(annotation, str) else (), True, True)
    if typing.get_origin(annotation) is tuple:
        args = typing.get_args(annotation)
        if len(args) == 2 and args[1] is Ellipsis:
            return _Return((schemas.add(args[0], "serialization"),), True, False)
        if args == ((),):
            return _Return((), False, False)
        return _Return(tuple(schemas.add(a, "serialization") for a in args), False, False)
    optional = False
    if typing.get_origin(annotation) in (Union, types.UnionType):
        # A None result is an ack without arguments, not a null argument.
        members = [m for m in typing.get_args(annotation) if m is not type(None)]
        optional = len(members) < len(typing.get_args(annotation))
        annotation = members[0] if len(members) == 1 else Union[tuple(members)]  # noqa: UP007 - a runtime list
    return _Return((schemas.add(annotation, "serialization"),), False, optional)


def _plan(spec: HandlerSpec, schemas: _Schemas, *, skip_first: bool = False) -> _Pending:
    sig = _signature(spec)
    bound = list(sig.params[1:] if skip_first else sig.params)
    return _Pending(
        params=[(p, schemas.add(p.annotation, "validation")) for p in bound],
        rest=None if sig.rest is None else (sig.rest, schemas.add(sig.rest.annotation, "validation")),
        returns=_plan_return(sig.returns, schemas),
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


def _payload(pending: _Pending, schemas: _Schemas) -> dict[str, Any]:
    items: list[dict[str, Any]] = []
    required = 0
    for position, (param, ticket) in enumerate(pending.params, 1):
        item = _titled(param.name, schemas[ticket])
        if param.default is inspect.Parameter.empty:
            required = position
        else:
            ok, value = _jsonable(param.default)
            if ok:
                item["default"] = value
        items.append(item)
    rest = None if pending.rest is None else _titled(pending.rest[0].name, schemas[pending.rest[1]])
    return _args_schema(items, required, rest)


def _ack_payload(plan: _Return, schemas: _Schemas) -> dict[str, Any]:
    if plan.variadic:
        return {"type": "array", "items": schemas[plan.tickets[0]]} if plan.tickets else {"type": "array"}
    items = [schemas[t] for t in plan.tickets]
    return _args_schema(items, 0 if plan.optional else len(items), None)


# -- the document ---------------------------------------------------------------------------------

class _Keys:
    """Unique, $ref-safe keys derived from free text (event and namespace names)."""

    def __init__(self, taken: Iterable[str] = ()) -> None:
        self._taken = set(taken)

    def __call__(self, text: str) -> str:
        base = _KEY_UNSAFE.sub("_", text) or "_"
        key, n = base, 1
        while key in self._taken:
            n += 1
            key = f"{base}_{n}"
        self._taken.add(key)
        return key


def _doc(func: Callable[..., Any]) -> tuple[str | None, str | None]:
    text = inspect.getdoc(func)
    if not text:
        return None, None
    return text.strip().splitlines()[0], text


def _handler_name(func: Callable[..., Any]) -> str:
    # The qualified name only, as FastAPI's operation ids: module paths are nobody's business.
    name = getattr(func, "__qualname__", None) or getattr(type(func), "__qualname__", None)
    return str(name)


def _namespaces(realtime: Realtime) -> list[tuple[NamespaceSpec, HandlerTable]]:
    return [*realtime._static.items(), *realtime._dynamic]


@dataclass(slots=True)
class _Channel:
    key: str
    namespace: NamespaceSpec
    table: HandlerTable
    events: list[tuple[str, HandlerSpec, _Pending]]
    any: _Pending | None
    auth: tuple[_Param, int] | None


class DocsInfo(NamedTuple):
    """The document's `info`: what the page is called and which version of the API it describes."""

    title: str
    version: str
    description: str | None


def info_from_scope(
    scope: Mapping[str, Any],
    *,
    title: str | None = None,
    version: str | None = None,
    description: str | None = None,
) -> DocsInfo:
    """The `info` for a document served in answer to the request `scope`.

    Each of the explicit values wins when it is not None. Otherwise it comes from the app serving
    the request, `scope["app"]`: Starlette sets it to the innermost Starlette/FastAPI app the
    request went through, so the app that includes the realtime router or mounts the realtime
    server, and with nested mounts the inner one. A FastAPI app has `title`, `version` and
    `description` (the ones its OpenAPI docs show); a plain Starlette app or no app at all leaves
    fastapi-realtime's defaults. An empty description counts as none.
    """
    app = scope.get("app")
    return DocsInfo(
        title=title if title is not None else _app_text(app, "title") or DEFAULT_TITLE,
        version=version if version is not None else _app_text(app, "version") or DEFAULT_VERSION,
        description=(description if description is not None else _app_text(app, "description")) or None,
    )


def _app_text(app: Any, name: str) -> str | None:
    value = getattr(app, name, None)
    return value if isinstance(value, str) and value else None


def build_asyncapi(
    realtime: Realtime,
    *,
    title: str = DEFAULT_TITLE,
    version: str = DEFAULT_VERSION,
    description: str | None = None,
    host: str | None = None,
    path: str | None = None,
) -> dict[str, Any]:
    """An AsyncAPI 3.0.0 document (a JSON-ready dict) for every namespace and event registered.

    `host` is the server's host[:port] when known (e.g. from the request serving the document);
    otherwise the server's host is the variable `{host}`. `path` is where clients connect
    (prefixes, mounts and root_path included); by default the server's own `path`.
    """
    path = realtime.path if path is None else path
    schemas = _Schemas()
    channel_keys = _Keys()
    channels: list[_Channel] = []
    dynamic = 0
    for namespace, table in _namespaces(realtime):
        if isinstance(namespace, str):
            key = channel_keys(namespace.strip("/") or "root")
        else:
            dynamic += 1
            key = channel_keys(f"dynamic_{dynamic}")
        auth = None
        if table.connect is not None:
            connect_sig = _signature(table.connect)
            if connect_sig.params:
                first = connect_sig.params[0]
                auth = (first, schemas.add(first.annotation, "validation"))
        channels.append(
            _Channel(
                key=key,
                namespace=namespace,
                table=table,
                events=[(event, spec, _plan(spec, schemas)) for event, spec in table.events.items()],
                # The catch-all's first event parameter receives the event name itself.
                any=None if table.any is None else _plan(table.any, schemas, skip_first=True),
                auth=auth,
            )
        )
    schemas.resolve()

    document: dict[str, Any] = {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {"title": title, "version": version},
        "defaultContentType": "application/json",
        "servers": {"socketio": _server(realtime, host, path)},
        "channels": {},
        "operations": {},
        "components": {},
    }
    if description is not None:
        document["info"]["description"] = description
    operation_keys = _Keys()
    for channel in channels:
        channel_doc, operations = _channel(channel, schemas, operation_keys)
        document["channels"][channel.key] = channel_doc
        document["operations"].update(operations)
    if schemas.definitions:
        document["components"]["schemas"] = dict(sorted(schemas.definitions.items()))
    document["components"]["messages"] = json.loads(json.dumps(_PROTOCOL_MESSAGES))  # a private copy
    return document


def _server(realtime: Realtime, host: str | None, path: str) -> dict[str, Any]:
    transports = ", ".join(realtime.engine_options.transports)
    server: dict[str, Any] = {
        "host": host if host is not None else "{host}",
        "pathname": path,
        "protocol": "socket.io",
        "protocolVersion": "5",
        "title": "Socket.IO",
        "description": (
            f"Socket.IO v5 over Engine.IO v4 (transports: {transports}). Connect with a Socket.IO client "
            f"and the option `path: \"{path.rstrip('/')}/\"`. Each channel is a namespace and each "
            "message an event; a message payload is the event's argument list "
            "(`socket.emit(\"event\", a, b)` sends `[a, b]`), and a reply is the acknowledgement: the "
            "arguments the client's ack callback receives (an error object instead when the arguments "
            "fail validation or the handler raises). Events the application emits are not declared to "
            "fastapi-realtime, so the only one listed is the server's own `error` event."
        ),
    }
    if host is None:
        server["variables"] = {
            "host": {
                "description": "Host (and port) the application is served on.",
                "examples": ["localhost:8000"],
            }
        }
    return server


def _channel(
    channel: _Channel, schemas: _Schemas, operation_keys: _Keys
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    ref = f"#/channels/{channel.key}"
    table = channel.table
    shared = {
        "connected": _CONNECTED, "connect_error": _CONNECT_ERROR, "disconnect": _DISCONNECT,
        "error": _ERROR_EVENT, "error_ack": _ERROR_ACK,
    }
    message_keys = _Keys(["connect", *shared])
    messages: dict[str, Any] = {"connect": _connect_message(channel, schemas)}
    messages.update({key: {"$ref": f"#/components/messages/{name}"} for key, name in shared.items()})
    operations: dict[str, dict[str, Any]] = {}

    def message_ref(key: str) -> dict[str, str]:
        return {"$ref": f"{ref}/messages/{key}"}

    connect_op: dict[str, Any] = {
        "action": "receive",
        "channel": {"$ref": ref},
        "title": "Connect",
        "summary": "Join the namespace.",
        "messages": [message_ref("connect")],
        "reply": {"channel": {"$ref": ref}, "messages": [message_ref("connected"), message_ref("connect_error")]},
    }
    if table.connect is not None:
        connect_op["description"] = f"Runs the connect handler `{_handler_name(table.connect.func)}`."
    operations[operation_keys(f"{channel.key}.connect")] = connect_op
    disconnect_op: dict[str, Any] = {
        "action": "receive",
        "channel": {"$ref": ref},
        "title": "Disconnect",
        "summary": "Leave the namespace.",
        "messages": [message_ref("disconnect")],
    }
    if table.disconnect is not None:
        disconnect_op["description"] = (
            f"The disconnect handler `{_handler_name(table.disconnect.func)}` runs on this and on every other "
            "way the socket ends, with the reason: " + ", ".join(f"`{r}`" for r in _DISCONNECT_REASONS) + "."
        )
    operations[operation_keys(f"{channel.key}.disconnect")] = disconnect_op

    handled: list[tuple[str | None, Callable[..., Any], _Pending]] = [
        (event, spec.func, pending) for event, spec, pending in channel.events
    ]
    if channel.any is not None and table.any is not None:
        handled.append((None, table.any.func, channel.any))
    for event, func, pending in handled:
        summary, doc = _doc(func)
        key = message_keys(event if event is not None else "any")
        message: dict[str, Any] = {
            "name": event if event is not None else "*",
            "title": event if event is not None else "Any other event",
            "payload": _payload(pending, schemas),
            "x-socketio-packet": "EVENT",
            "x-handler": _handler_name(func),
        }
        if event is None:
            message["summary"] = "Events without a handler of their own go to the catch-all."
            message["description"] = "The catch-all receives the event name, then the arguments described here."
        if summary is not None:
            message["summary"] = summary
        if doc is not None and doc != summary:
            message["description"] = doc
        messages[key] = message
        operation: dict[str, Any] = {
            "action": "receive",
            "channel": {"$ref": ref},
            "title": event if event is not None else "Any other event",
            "messages": [message_ref(key)],
        }
        if summary is not None:
            operation["summary"] = summary
        if pending.returns is not None:
            ack_key = message_keys(f"{key}.ack")
            messages[ack_key] = {
                "name": f"{event if event is not None else '*'} (ack)",
                "title": f"{event} ack" if event is not None else "Ack of any other event",
                "summary": "ACK packet: the handler's return value (a tuple is several arguments), "
                "sent when the client emitted with an ack callback.",
                "payload": _ack_payload(pending.returns, schemas),
                "x-socketio-packet": "ACK",
            }
            operation["reply"] = {"channel": {"$ref": ref}, "messages": [message_ref(ack_key), message_ref("error_ack")]}
        operations[operation_keys(f"{channel.key}.{key}")] = operation
    operations[operation_keys(f"{channel.key}.error")] = {
        "action": "send",
        "channel": {"$ref": ref},
        "title": "error",
        "summary": "Validation failures of events sent without an ack callback.",
        "messages": [message_ref("error")],
    }

    doc_channel: dict[str, Any] = {}
    namespace = channel.namespace
    if isinstance(namespace, str):
        doc_channel["address"] = namespace
        doc_channel["title"] = f"Namespace {namespace}"
        doc_channel["description"] = f"The Socket.IO namespace `{namespace}`."
    else:
        # Any matching name is its own namespace with these handlers: a templated address.
        doc_channel["address"] = "{namespace}"
        if isinstance(namespace, re.Pattern):
            rule = f"matching the regular expression `{namespace.pattern}`"
            doc_channel["title"] = f"Namespaces matching {namespace.pattern}"
            doc_channel["x-namespace-pattern"] = namespace.pattern
        else:
            rule = f"accepted by `{_handler_name(namespace)}(name, auth)`"
            doc_channel["title"] = f"Namespaces accepted by {getattr(namespace, '__name__', 'a callable')}"
        doc_channel["description"] = f"Dynamic namespaces: every namespace name {rule}."
        doc_channel["parameters"] = {"namespace": {"description": f"A namespace name {rule}."}}
    doc_channel["messages"] = messages
    return doc_channel, operations


def _connect_message(channel: _Channel, schemas: _Schemas) -> dict[str, Any]:
    message: dict[str, Any] = {
        "name": "connect",
        "title": "Connect",
        "summary": "CONNECT packet: its payload is the client's `auth` option.",
        "x-socketio-packet": "CONNECT",
    }
    table = channel.table
    if channel.auth is not None and table.connect is not None:
        param, ticket = channel.auth
        message["payload"] = _titled(param.name, schemas[ticket])
        message["description"] = (
            f"The `auth` object (`io(url, {{auth}})`) is passed to `{_handler_name(table.connect.func)}` "
            f"as `{param.name}`."
        )
    else:
        message["payload"] = {"type": "object", "title": "auth"}
        message["description"] = "An optional `auth` object; no connect handler of this namespace reads it."
    return message


# -- HTML -----------------------------------------------------------------------------------------

_CSS = """
:root { color-scheme: light dark; --muted: #6a737d; --line: #d0d7de; --code: #f6f8fa; --accent: #0969da; }
@media (prefers-color-scheme: dark) { :root { --muted: #8b949e; --line: #30363d; --code: #161b22; --accent: #58a6ff; } }
body { font: 15px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; }
h1 small, .muted { color: var(--muted); font-weight: normal; }
h2 { border-bottom: 1px solid var(--line); padding-bottom: .3rem; margin-top: 2.5rem; }
section.op { border: 1px solid var(--line); border-radius: 6px; padding: .2rem 1rem 1rem; margin: 1rem 0; }
pre { background: var(--code); padding: .75rem; border-radius: 6px; overflow-x: auto; font-size: 13px; }
code { background: var(--code); padding: .1rem .3rem; border-radius: 4px; }
summary { cursor: pointer; font-weight: 600; margin: .8rem 0 .4rem; }
pre code { background: none; padding: 0; }
a { color: var(--accent); }
.badge { font-size: 12px; border: 1px solid var(--line); border-radius: 1rem; padding: .05rem .5rem; margin-left: .5rem; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0; font-size: 14px; }
th, td { border: 1px solid var(--line); padding: .3rem .6rem; text-align: left; vertical-align: top; }
th { background: var(--code); }
details details > summary { font-weight: normal; font-size: 13px; }
""".strip()


def _pointer(document: dict[str, Any], ref: str) -> Any:
    """The value a local `#/a/b` reference points at, or None."""
    if not ref.startswith("#/"):
        return None
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _deref(document: dict[str, Any], value: Any) -> Any:
    for _ in range(8):  # references to references, bounded
        if not (isinstance(value, dict) and isinstance(value.get("$ref"), str)):
            break
        value = _pointer(document, value["$ref"])
    return value


_SCHEMA_REF = re.compile(r"&quot;#/components/schemas/([A-Za-z0-9_.\-]+)&quot;")
_SCHEMAS_PREFIX = "#/components/schemas/"


def _json_block(value: Any) -> str:
    text = html.escape(json.dumps(value, indent=2, ensure_ascii=False))
    linked = _SCHEMA_REF.sub(lambda m: f'<a href="#schema-{m.group(1)}">{m.group(0)}</a>', text)
    return f"<pre><code>{linked}</code></pre>"


def _raw_schema(value: Any) -> str:
    # The tables are a reading of the schema; the schema itself stays one click away.
    return f"<details><summary>JSON Schema</summary>{_json_block(value)}</details>"


def _code(value: Any) -> str:
    """A JSON value as inline code."""
    return f"<code>{html.escape(json.dumps(value, ensure_ascii=False))}</code>"


def _inline(text: str) -> str:
    """Escaped text with only CommonMark `inline code` rendered."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


# -- HTML: schemas read as types and tables -------------------------------------------------------
# Every function here returns HTML in which all text from the document is escaped.

def _type(schema: Any) -> str:
    """A readable type: `string (date-time)`, `array of Item`, `Item | null`, models linked."""
    if not isinstance(schema, dict):
        return "any"
    if isinstance(schema.get("$ref"), str):
        return _ref_link(schema["$ref"])
    for combinator in ("anyOf", "oneOf"):
        if isinstance(schema.get(combinator), list) and schema[combinator]:
            return " | ".join(_type(member) for member in schema[combinator])
    if isinstance(schema.get("allOf"), list) and schema["allOf"]:
        return " &amp; ".join(_grouped(member) for member in schema["allOf"])
    if "const" in schema:
        return _code(schema["const"])
    kind = schema.get("type")
    if isinstance(kind, list):
        return " | ".join(html.escape(str(k)) for k in kind)
    if kind == "array":
        return _array_type(schema)
    if kind == "object" or (kind is None and isinstance(schema.get("properties"), dict)):
        return _object_type(schema)
    if isinstance(kind, str):
        fmt = schema.get("format")
        return html.escape(f"{kind} ({fmt})" if isinstance(fmt, str) else kind)
    return "any"


def _ref_link(ref: str) -> str:
    name = html.escape(ref.rsplit("/", 1)[-1])
    return f'<a href="#schema-{name}">{name}</a>' if ref.startswith(_SCHEMAS_PREFIX) else name


def _grouped(schema: Any) -> str:
    # Parentheses keep `array of (A | B)` apart from `(array of A) | B`.
    text = _type(schema)
    return f"({text})" if _is_combination(schema) else text


def _is_combination(schema: Any) -> bool:
    """Is the type a union or an intersection of several (where `_type` joins with | or &)?"""
    if not isinstance(schema, dict) or "$ref" in schema:
        return False
    for combinator in ("anyOf", "oneOf", "allOf"):
        members = schema.get(combinator)
        if isinstance(members, list) and members:
            return len(members) > 1 or _is_combination(members[0])
    return isinstance(schema.get("type"), list) and len(schema["type"]) > 1


def _array_type(schema: dict[str, Any]) -> str:
    items = schema.get("items")
    if isinstance(items, list):  # draft-07's tuple form
        parts = [_type(item) for item in items]
        rest = schema.get("additionalItems")
        if isinstance(rest, dict):
            parts.append(f"...{_grouped(rest)}")
        return f"[{', '.join(parts)}]"
    if isinstance(items, dict):
        return f"array of {_grouped(items)}"
    return "array"


def _object_type(schema: dict[str, Any]) -> str:
    extra = schema.get("additionalProperties")
    if not schema.get("properties") and isinstance(extra, dict):
        return f"map of {_grouped(extra)}"  # dict[str, X]
    title = schema.get("title")
    # An inline object (not a model of components.schemas) is best known by its title.
    return html.escape(title) if isinstance(title, str) and schema.get("properties") else "object"


_BOUNDS = (
    ("minLength", "min length {}"), ("maxLength", "max length {}"),
    ("minimum", "≥ {}"), ("exclusiveMinimum", "&gt; {}"), ("maximum", "≤ {}"), ("exclusiveMaximum", "&lt; {}"),
    ("multipleOf", "multiple of {}"), ("minItems", "min items {}"), ("maxItems", "max items {}"),
    ("minProperties", "min properties {}"), ("maxProperties", "max properties {}"),
)


def _constraints(schema: Any, prefix: str = "") -> list[str]:
    """The validation keywords of a schema, readable; its union members' and array items' too."""
    if not isinstance(schema, dict):
        return []
    out: list[str] = []
    tuple_length = len(schema["items"]) if isinstance(schema.get("items"), list) else None
    for key, template in _BOUNDS:
        value = schema.get(key)
        if value is None or (key in ("minItems", "maxItems") and value == tuple_length):
            continue  # a tuple's length is already in its type
        out.append(prefix + template.format(html.escape(json.dumps(value))))
    if isinstance(schema.get("pattern"), str):
        out.append(f"{prefix}pattern <code>{html.escape(schema['pattern'])}</code>")
    if schema.get("uniqueItems") is True:
        out.append(f"{prefix}unique items")
    if isinstance(schema.get("enum"), list):
        out.append(f"{prefix}one of " + ", ".join(_code(value) for value in schema["enum"]))
    if isinstance(schema.get("discriminator"), str):
        out.append(f"{prefix}discriminator <code>{html.escape(schema['discriminator'])}</code>")
    for combinator in ("anyOf", "oneOf", "allOf"):
        for member in schema.get(combinator) or []:
            out.extend(_constraints(member, prefix))
    if isinstance(schema.get("items"), dict):
        out.extend(_constraints(schema["items"], f"{prefix}items: "))
    return out


def _default(schema: dict[str, Any]) -> str:
    return _code(schema["default"]) if "default" in schema else ""


def _notes(schema: dict[str, Any]) -> str:
    parts: list[str] = []
    if isinstance(schema.get("description"), str):
        parts.append(_inline(schema["description"]))
    if schema.get("deprecated") is True:
        parts.append("<strong>Deprecated.</strong>")
    if isinstance(schema.get("examples"), list) and schema["examples"]:
        parts.append("Examples: " + ", ".join(_code(example) for example in schema["examples"]))
    return " ".join(parts)


def _table(headers: tuple[str, ...], rows: list[list[str]], optional: tuple[str, ...]) -> list[str]:
    """A table of HTML cells; an `optional` column that is empty in every row is left out."""
    keep = [i for i, header in enumerate(headers) if header not in optional or any(row[i] for row in rows)]
    out = ["<table>", "<thead><tr>" + "".join(f"<th>{headers[i]}</th>" for i in keep) + "</tr></thead>", "<tbody>"]
    out.extend("<tr>" + "".join(f"<td>{row[i]}</td>" for i in keep) + "</tr>" for row in rows)
    out.append("</tbody></table>")
    return out


def _fields_html(schema: dict[str, Any]) -> list[str]:
    """An object's properties, one row each."""
    properties: dict[str, Any] = schema["properties"]
    required = set(schema.get("required") or [])
    rows: list[list[str]] = []
    for name, field in properties.items():
        field = field if isinstance(field, dict) else {}
        rows.append([
            f"<code>{html.escape(str(name))}</code>", _type(field), "yes" if name in required else "no",
            _default(field), "; ".join(_constraints(field)), _notes(field),
        ])
    out = (
        _table(("Field", "Type", "Required", "Default", "Constraints", "Description"), rows,
               optional=("Default", "Constraints", "Description"))
        if rows else ['<p class="muted">No fields.</p>']
    )
    extra = schema.get("additionalProperties")
    if extra is False:
        out.append('<p class="muted">No other fields are allowed.</p>')
    elif isinstance(extra, dict):
        out.append(f"<p>Other fields: {_type(extra)}</p>")
    return out


def _schema_body(schema: dict[str, Any]) -> list[str]:
    """A component schema: a model's field table, an enum's values, or else its type."""
    if isinstance(schema.get("properties"), dict):
        return _fields_html(schema)
    if isinstance(schema.get("enum"), list):
        out = [f"<p>Type: {_type(schema)}</p>"] if "type" in schema else []
        rows = [[_code(value)] for value in schema["enum"]]
        return [*out, *_table(("Value",), rows, optional=())]
    out = [f"<p>Type: {_type(schema)}</p>"]
    constraints = _constraints(schema)
    if constraints:
        out.append(f"<p>Constraints: {'; '.join(constraints)}</p>")
    return out


def _schema_html(name: str, schema: Any) -> list[str]:
    esc = html.escape
    out = [f'<section class="schema" id="schema-{esc(name)}">', f"<h3>{esc(name)}</h3>"]
    if isinstance(schema, dict):
        title = schema.get("title")
        if isinstance(title, str) and title != name:  # a key made unique by its module path
            out.append(f'<p class="muted">{esc(title)}</p>')
        out.extend(_prose(schema.get("description"), set()))
        out.extend(_schema_body(schema))
    out.append(_raw_schema(schema))
    out.append("</section>")
    return out


def _argument_row(position: str, item: Any, required: bool) -> list[str]:
    item = item if isinstance(item, dict) else {}
    title = item.get("title")
    name = f"<code>{html.escape(title)}</code>" if isinstance(title, str) else ""
    return [
        position, name, _type(item), "yes" if required else "no",
        _default(item), "; ".join(_constraints(item)), _notes(item),
    ]


def _arguments_html(payload: Any) -> list[str]:
    """An event's or ack's argument list, one row per position; another payload by its type."""
    if not isinstance(payload, dict):
        return []
    if payload.get("type") != "array":
        return _fields_html(payload) if isinstance(payload.get("properties"), dict) else [f"<p>Type: {_type(payload)}</p>"]
    items = payload.get("items")
    required = payload.get("minItems", 0)
    rows: list[list[str]] = []
    if isinstance(items, list):
        rows = [_argument_row(str(n), item, n <= required) for n, item in enumerate(items, 1)]
        if isinstance(payload.get("additionalItems"), dict):
            rows.append(_argument_row(f"{len(items) + 1}…", payload["additionalItems"], False))
    elif isinstance(items, dict):
        rows.append(_argument_row("1…", items, False))
    if not rows:
        none = payload.get("maxItems") == 0
        return [f'<p class="muted">{"No arguments." if none else "Any arguments."}</p>']
    headers = ("#", "Name", "Type", "Required", "Default", "Constraints", "Description")
    return _table(headers, rows, optional=("Name", "Default", "Constraints", "Description"))


def _signature_line(name: str, payload: Any) -> str:
    esc = html.escape
    if not isinstance(payload, dict):
        return f"emit({esc(json.dumps(name))}, …)"
    parts: list[str] = []
    required = payload.get("minItems", 0)
    items = payload.get("items")
    if isinstance(items, list):
        for index, item in enumerate(items):
            title = item.get("title", f"arg{index}") if isinstance(item, dict) else f"arg{index}"
            optional = "?" if index >= required else ""
            parts.append(f"{esc(str(title))}{optional}: {_type(item)}")
        rest = payload.get("additionalItems")
        if isinstance(rest, dict):
            parts.append(f"...{esc(str(rest.get('title', 'args')))}: {_type(rest)}")
    elif isinstance(items, dict):
        parts.append(f"...{esc(str(items.get('title', 'args')))}: {_type(items)}")
    elif payload.get("type") != "array":
        parts.append(_type(payload))
    return f"emit({', '.join([esc(json.dumps(name)), *parts])})"


# -- HTML: the page -------------------------------------------------------------------------------

def asyncapi_html(document: dict[str, Any], *, json_url: str | None = None) -> str:
    """A self-contained HTML page (no scripts, no external resources) documenting `document`.

    `json_url`, when given, is linked as the machine-readable document.
    """
    esc = html.escape
    info = document.get("info", {})
    title = str(info.get("title", "AsyncAPI"))
    out: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>{esc(title)} <small>{esc(str(info.get('version', '')))}</small></h1>",
    ]
    out.extend(_prose(info.get("description"), set()))
    out.append(f'<p class="muted">AsyncAPI {esc(str(document.get("asyncapi", "")))}')
    if json_url is not None:
        out.append(f' · <a href="{esc(json_url)}">machine-readable document</a>')
    out.append("</p>")

    for server in (document.get("servers") or {}).values():
        if not isinstance(server, dict):
            continue
        out.append(
            f"<p><strong>Server</strong> <code>{esc(str(server.get('protocol', '')))} "
            f"{esc(str(server.get('protocolVersion', '')))}</code> at path "
            f"<code>{esc(str(server.get('pathname', '/')))}</code></p>"
        )
        out.extend(_prose(server.get("description"), set()))

    channels: dict[str, Any] = document.get("channels") or {}
    operations: dict[str, Any] = document.get("operations") or {}
    schemas: dict[str, Any] = (document.get("components") or {}).get("schemas") or {}
    out.append("<nav><h2>Namespaces</h2><ul>")
    for key, channel in channels.items():
        label = channel.get("title") or channel.get("address") or key
        out.append(f'<li><a href="#channel-{esc(key)}">{esc(str(label))}</a></li>')
    if schemas:
        out.append('<li><a href="#schemas">Schemas</a></li>')
    out.append("</ul></nav>")

    for key, channel in channels.items():
        out.append(f'<section id="channel-{esc(key)}">')
        out.append(f"<h2>{esc(str(channel.get('title') or key))}</h2>")
        if channel.get("address") is not None:
            out.append(f"<p>Address <code>{esc(str(channel['address']))}</code></p>")
        out.extend(_prose(channel.get("description"), set()))
        ref = f"#/channels/{key}"
        for op_key, operation in operations.items():
            if not isinstance(operation, dict) or (operation.get("channel") or {}).get("$ref") != ref:
                continue
            out.extend(_operation_html(document, op_key, operation))
        out.append("</section>")

    if schemas:
        out.append('<section id="schemas"><h2>Schemas</h2>')
        for name, schema in schemas.items():
            out.extend(_schema_html(name, schema))
        out.append("</section>")
    out.append("</body>")
    out.append("</html>")
    return "\n".join(out) + "\n"


def _operation_html(document: dict[str, Any], key: str, operation: dict[str, Any]) -> list[str]:
    esc = html.escape
    direction = "client → server" if operation.get("action") == "receive" else "server → client"
    out = [f'<section class="op" id="op-{esc(key)}">']
    out.append(f"<h3>{esc(str(operation.get('title') or key))}<span class=\"badge\">{direction}</span></h3>")
    shown: set[str] = set()  # a docstring is both the operation's and the message's summary: say it once
    for field_name in ("summary", "description"):
        out.extend(_prose(operation.get(field_name), shown))
    for ref in operation.get("messages") or []:
        message = _deref(document, ref)
        if isinstance(message, dict):
            out.extend(_message_html(message, shown, reply=False, shared=_is_shared(document, ref)))
    reply = _deref(document, operation.get("reply"))
    if isinstance(reply, dict):
        for ref in reply.get("messages") or []:
            message = _deref(document, ref)
            if isinstance(message, dict):
                out.extend(_message_html(message, shown, reply=True, shared=_is_shared(document, ref)))
    out.append("</section>")
    return out


def _prose(text: Any, shown: set[str]) -> list[str]:
    """Paragraphs of a CommonMark description, with only `inline code` rendered."""
    if not isinstance(text, str):
        return []
    out: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text.strip()):
        paragraph = paragraph.strip()
        if not paragraph or paragraph in shown:
            continue
        shown.add(paragraph)
        out.append(f"<p>{_inline(paragraph)}</p>")
    return out


def _is_shared(document: dict[str, Any], ref: Any) -> bool:
    """Does this message reference lead to components.messages (the same in every namespace)?"""
    for _ in range(8):
        if not (isinstance(ref, dict) and isinstance(ref.get("$ref"), str)):
            return False
        if ref["$ref"].startswith("#/components/messages/"):
            return True
        ref = _pointer(document, ref["$ref"])
    return False


def _message_html(message: dict[str, Any], shown: set[str], *, reply: bool, shared: bool) -> list[str]:
    esc = html.escape
    packet = message.get("x-socketio-packet")
    out: list[str] = []
    if reply:
        out.append(f"<h4>Reply: {esc(str(message.get('title') or message.get('name') or ''))}</h4>")
    if packet == "EVENT" and isinstance(message.get("name"), str):
        out.append(f"<p><code>{_signature_line(message['name'], message.get('payload'))}</code></p>")
    out.extend(_prose(message.get("summary"), shown))
    out.extend(_prose(message.get("description"), shown))
    if "payload" in message:
        label = {"EVENT": "Arguments", "ACK": "Ack arguments"}.get(str(packet), "Payload")
        # Messages shared by every namespace start folded: they would repeat in each one.
        attribute = "" if shared else " open"
        out.append(f"<details{attribute}><summary>{label}</summary>")
        out.extend(_arguments_html(message["payload"]))
        out.append(_raw_schema(message["payload"]))
        out.append("</details>")
    return out
