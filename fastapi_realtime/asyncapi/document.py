"""The AsyncAPI 3.0 document, built from the handler tables alone.

The model: one server (Socket.IO v5 at the path clients connect to), one channel per namespace
(a dynamic namespace is one channel whose address is the parameter `{namespace}`), one message
per event the server handles, and a `receive` operation per message whose `reply` is the ack
when the handler returns something. Events the application emits are not declared anywhere;
the only `send` operation is the server's own `error` event.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..handlers import HandlerSpec
from ..router import HandlerTable, NamespaceSpec
from .info import DocsInfo
from .messages import (
    CONNECT_ERROR,
    CONNECTED,
    DISCONNECT,
    DISCONNECT_REASONS,
    ERROR_ACK,
    ERROR_EVENT,
    PROTOCOL_MESSAGES,
)
from .payloads import Pending, ack_schema, payload_schema, plan_handler
from .schemas import Schemas, titled
from .signature import Param, handler_signature

__all__ = ["ASYNCAPI_VERSION", "build_document"]

ASYNCAPI_VERSION = "3.0.0"
_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")  # component keys must match ^[\w\d.\-_]+$


def build_document(
    namespaces: Iterable[tuple[NamespaceSpec, HandlerTable]],
    info: DocsInfo,
    *,
    path: str,
    transports: Sequence[str],
    host: str | None = None,
) -> dict[str, Any]:
    """An AsyncAPI 3.0.0 document (a JSON-ready dict) for these namespaces and their handlers.

    `namespaces` pairs each namespace (a name, a pattern or a matcher) with its handler table.
    `path` is where clients connect (prefixes, mounts and root_path included) and `transports`
    the Engine.IO transports offered. `host` is the server's host[:port] when known (e.g. from
    the request serving the document); otherwise the server's host is the variable `{host}`.
    """
    schemas = Schemas()
    channel_keys = _Keys()
    channels: list[_Channel] = []
    dynamic = 0
    for namespace, table in namespaces:
        if isinstance(namespace, str):
            key = channel_keys(namespace.strip("/") or "root")
        else:
            dynamic += 1
            key = channel_keys(f"dynamic_{dynamic}")
        auth = None
        if table.connect is not None:
            connect_sig = handler_signature(table.connect)
            if connect_sig.params:
                first = connect_sig.params[0]
                auth = (first, schemas.add(first.annotation, "validation"))
        channels.append(
            _Channel(
                key=key,
                namespace=namespace,
                table=table,
                events=[(event, spec, plan_handler(spec, schemas)) for event, spec in table.events.items()],
                # The catch-all's first event parameter receives the event name itself.
                any=None if table.any is None else plan_handler(table.any, schemas, skip_first=True),
                auth=auth,
            )
        )
    schemas.resolve()

    document: dict[str, Any] = {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {"title": info.title, "version": info.version},
        "defaultContentType": "application/json",
        "servers": {"socketio": _server(transports, host, path)},
        "channels": {},
        "operations": {},
        "components": {},
    }
    if info.description is not None:
        document["info"]["description"] = info.description
    operation_keys = _Keys()
    for channel in channels:
        channel_doc, operations = _channel(channel, schemas, operation_keys)
        document["channels"][channel.key] = channel_doc
        document["operations"].update(operations)
    if schemas.definitions:
        document["components"]["schemas"] = dict(sorted(schemas.definitions.items()))
    document["components"]["messages"] = json.loads(json.dumps(PROTOCOL_MESSAGES))  # a private copy
    return document


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


@dataclass(slots=True)
class _Channel:
    key: str
    namespace: NamespaceSpec
    table: HandlerTable
    events: list[tuple[str, HandlerSpec, Pending]]
    any: Pending | None
    auth: tuple[Param, int] | None


def _server(transports: Sequence[str], host: str | None, path: str) -> dict[str, Any]:
    listed = ", ".join(transports)
    server: dict[str, Any] = {
        "host": host if host is not None else "{host}",
        "pathname": path,
        "protocol": "socket.io",
        "protocolVersion": "5",
        "title": "Socket.IO",
        "description": (
            f"Socket.IO v5 over Engine.IO v4 (transports: {listed}). Connect with a Socket.IO client "
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
    channel: _Channel, schemas: Schemas, operation_keys: _Keys
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    ref = f"#/channels/{channel.key}"
    table = channel.table
    shared = {
        "connected": CONNECTED, "connect_error": CONNECT_ERROR, "disconnect": DISCONNECT,
        "error": ERROR_EVENT, "error_ack": ERROR_ACK,
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
            "way the socket ends, with the reason: " + ", ".join(f"`{r}`" for r in DISCONNECT_REASONS) + "."
        )
    operations[operation_keys(f"{channel.key}.disconnect")] = disconnect_op

    handled: list[tuple[str | None, Callable[..., Any], Pending]] = [
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
            "payload": payload_schema(pending, schemas),
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
                "payload": ack_schema(pending.returns, schemas),
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


def _connect_message(channel: _Channel, schemas: Schemas) -> dict[str, Any]:
    message: dict[str, Any] = {
        "name": "connect",
        "title": "Connect",
        "summary": "CONNECT packet: its payload is the client's `auth` option.",
        "x-socketio-packet": "CONNECT",
    }
    table = channel.table
    if channel.auth is not None and table.connect is not None:
        param, ticket = channel.auth
        message["payload"] = titled(param.name, schemas[ticket])
        message["description"] = (
            f"The `auth` object (`io(url, {{auth}})`) is passed to `{_handler_name(table.connect.func)}` "
            f"as `{param.name}`."
        )
    else:
        message["payload"] = {"type": "object", "title": "auth"}
        message["description"] = "An optional `auth` object; no connect handler of this namespace reads it."
    return message
