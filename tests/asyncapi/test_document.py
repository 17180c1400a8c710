"""The document (asyncapi/document.py and the modules it builds on): structure, shared schemas, validity."""

from __future__ import annotations

import datetime
import json
from typing import Any

from fastapi import FastAPI

from fastapi_realtime import Realtime, RealtimeRouter, Socket
from fastapi_realtime.asyncapi import build_asyncapi
from fastapi_realtime.testing import RealtimeTestClient
from tests.asyncapi.app import EVIL_EVENT, ChatMessage, Receipt, make_realtime
from tests.asyncapi.helpers import (
    ack_of,
    assert_valid_asyncapi,
    official_validator,
    operation_for,
    payload_of,
    refs,
    resolve,
    validator_for,
)

# -- structure ----------------------------------------------------------------------------------------

def test_top_level_and_server(document: dict[str, Any]) -> None:
    assert document["asyncapi"] == "3.0.0"
    assert document["info"] == {"title": "Test app", "version": "2.1.0", "description": "For the tests."}
    (server,) = document["servers"].values()
    assert server["protocol"] == "socket.io" and server["protocolVersion"] == "5"
    assert server["pathname"] == "/socket.io"
    assert server["host"] == "{host}" and "host" in server["variables"]


def test_one_channel_per_namespace(document: dict[str, Any]) -> None:
    channels = document["channels"]
    assert {key: c["address"] for key, c in channels.items()} == {
        "root": "/",
        "chat": "/chat",
        "dynamic_1": "{namespace}",
    }
    dynamic = channels["dynamic_1"]
    assert dynamic["x-namespace-pattern"] == r"^/team-\d+$"
    assert r"^/team-\d+$" in dynamic["parameters"]["namespace"]["description"]
    root_events = {m.get("name") for m in channels["root"]["messages"].values() if "name" in m}
    assert {"say", "draw", "raw", EVIL_EVENT, "*"} <= root_events


def test_every_ref_resolves(document: dict[str, Any]) -> None:
    found = refs(document)
    assert len(found) > 20
    for ref in found:
        resolve(document, ref)


def test_operations_receive_with_reply_only_when_the_handler_returns(document: dict[str, Any]) -> None:
    sends = [key for key, operation in document["operations"].items() if operation["action"] == "send"]
    assert sends == ["root.error", "chat.error", "dynamic_1.error"]  # the server's own `error` event
    assert all(op["action"] == "receive" for key, op in document["operations"].items() if key not in sends)
    say = operation_for(document, "root", "say")
    assert say["summary"] == "Post a message to the lobby."
    reply_ref = say["reply"]["messages"][0]["$ref"]
    assert reply_ref.startswith("#/channels/root/messages/")
    assert say["reply"]["channel"] == {"$ref": "#/channels/root"}
    assert ack_of(document, "root", "draw") is None  # -> None: no ack
    assert ack_of(document, "root", EVIL_EVENT) is None
    assert ack_of(document, "root", "say") == {
        "type": "array",
        "items": [{"$ref": "#/components/schemas/Receipt"}],
        "additionalItems": False,
        "minItems": 1,
    }
    # A tuple is several ack arguments; an optional return may ack with none.
    assert ack_of(document, "root", "raw") == {
        "type": "array",
        "items": [{"type": "integer"}, {"type": "string"}],
        "additionalItems": False,
        "minItems": 2,
    }
    optional = ack_of(document, "chat", "message")
    assert optional is not None and "minItems" not in optional
    assert ack_of(document, "dynamic_1", "score") == {
        "type": "array", "items": [{"type": "integer"}], "additionalItems": False, "minItems": 1,
    }


def test_payload_is_the_argument_list(document: dict[str, Any]) -> None:
    # Socket and Realtime parameters are injected, not sent; *tags takes the extra arguments.
    assert payload_of(document, "root", "draw") == {
        "type": "array",
        "items": [
            {"title": "at", "allOf": [{"$ref": "#/components/schemas/Point"}]},
            {"title": "opacity", "type": "integer", "minimum": 0, "maximum": 100, "default": 100},
        ],
        "additionalItems": {"title": "tags", "type": "string"},
        "minItems": 1,
    }
    # Unannotated -> {}, Depends -> not an argument.
    assert payload_of(document, "root", "raw") == {
        "type": "array", "items": [{"title": "anything"}], "additionalItems": False, "minItems": 1,
    }
    assert payload_of(document, "root", EVIL_EVENT) == {"type": "array", "maxItems": 0}
    # The catch-all's event-name parameter is the event itself, not an argument.
    assert payload_of(document, "root", "*") == {"type": "array", "items": {"title": "args"}}
    # Request and Header() parameters come from the handshake; response_model describes the ack.
    assert payload_of(document, "chat", "lookup") == {
        "type": "array", "items": [{"title": "sku", "type": "string"}], "additionalItems": False, "minItems": 1,
    }
    lookup_ack = ack_of(document, "chat", "lookup")
    assert lookup_ack is not None and lookup_ack["items"][0]["$ref"].endswith("__Item")
    mystery = payload_of(document, "chat", "mystery")["items"]
    assert mystery[0] == {"title": "known", "type": "integer"}
    assert mystery[1]["title"] == "unknown" and "NotDefinedAnywhere" in mystery[1]["description"]
    score = payload_of(document, "dynamic_1", "score")["items"]
    assert score[0] == {"title": "points", "type": "integer", "exclusiveMinimum": 0}


def test_lifecycle(document: dict[str, Any]) -> None:
    connect = operation_for(document, "root", "connect")
    assert "on_connect" in connect["description"]
    replies = [resolve(document, r["$ref"])["name"] for r in connect["reply"]["messages"]]
    assert replies == ["connect", "connect_error"]
    auth = payload_of(document, "root", "connect")
    assert auth["title"] == "auth"
    assert {"$ref": "#/components/schemas/AuthPayload"} in auth["anyOf"]
    # No connect handler on /chat: any auth object.
    assert payload_of(document, "chat", "connect")["type"] == "object"
    disconnect = operation_for(document, "root", "disconnect")
    assert "on_disconnect" in disconnect["description"] and "ping timeout" in disconnect["description"]


def test_shared_models_appear_once(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert list(schemas).count("ChatMessage") == 1
    chat_message_refs = [r for r in refs(document) if r == "#/components/schemas/ChatMessage"]
    assert len(chat_message_refs) >= 2  # "say" on / and "message" on /chat
    assert schemas["Mood"] == {"enum": ["happy", "grumpy"], "title": "Mood", "type": "string"}
    assert schemas["ChatMessage"]["properties"]["sent_at"]["format"] == "date-time"
    assert schemas["ChatMessage"]["properties"]["text"]["minLength"] == 1
    # Two different classes called Item: two entries, neither lost.
    items = [name for name, schema in schemas.items() if schema.get("title") == "Item"]
    assert len(items) == 2
    assert {frozenset(schemas[name]["properties"]) for name in items} == {
        frozenset({"sku", "quantity"}), frozenset({"label"}),
    }


def test_payload_schemas_validate_real_arguments(document: dict[str, Any]) -> None:
    message = ChatMessage(room="lobby", text="hi", sent_at=datetime.datetime(2024, 1, 2, 3, 4, 5))
    say = validator_for(document, payload_of(document, "root", "say"))
    assert say.is_valid([message.model_dump(mode="json")])
    assert not say.is_valid([])  # the message is required
    assert not say.is_valid([{**message.model_dump(mode="json"), "text": ""}])  # min_length
    assert not say.is_valid([message.model_dump(mode="json"), "extra"])  # no *args
    draw = validator_for(document, payload_of(document, "root", "draw"))
    assert draw.is_valid([{"x": 1, "y": 2}, 50, "a", "b"])
    assert not draw.is_valid([{"x": 1, "y": 2}, 101])
    assert not draw.is_valid([{"x": 1, "y": 2}, 50, 7])  # *tags: str
    ack = validator_for(document, ack_of(document, "root", "say") or {})
    assert ack.is_valid([Receipt(ok=True, stored_at=datetime.datetime(2024, 1, 1)).model_dump(mode="json")])


def ack_args(value: Any) -> list[Any]:
    """The test client's `call` result (None, one value or a tuple) back to the ACK's arguments."""
    if value is None:
        return []
    return list(value) if isinstance(value, tuple) else [value]


def test_document_matches_the_running_server(document: dict[str, Any]) -> None:
    """What the server really sends validates against what the document says it sends."""
    app = FastAPI()
    app.include_router(make_realtime().router)
    message = ChatMessage(room="lobby", text="hi", sent_at=datetime.datetime(2024, 1, 2)).model_dump(mode="json")
    say_ack = validator_for(document, ack_of(document, "root", "say") or {})
    error_ack = validator_for(document, resolve(document, "#/components/messages/fastapi_realtime.error_ack")["payload"])
    error_event = validator_for(document, resolve(document, "#/components/messages/fastapi_realtime.error")["payload"])
    raw_ack = validator_for(document, ack_of(document, "root", "raw") or {})
    with RealtimeTestClient(app) as client:
        sio = client.connect(auth={"token": "t"})
        assert validator_for(document, payload_of(document, "root", "connect")).is_valid({"token": "t"})
        good = ack_args(sio.call("say", message))
        assert say_ack.is_valid(good), good
        assert not error_ack.is_valid(good)
        bad = ack_args(sio.call("say", {"room": "lobby"}))
        assert error_ack.is_valid(bad) and not say_ack.is_valid(bad), bad
        assert raw_ack.is_valid(ack_args(sio.call("raw", {"any": "thing"})))
        sio.emit("say", "not a message")
        error = sio.wait_for("error")
        assert error_event.is_valid(ack_args(error)), error


def test_document_is_json(document: dict[str, Any]) -> None:
    assert json.loads(json.dumps(document)) == document


def test_empty_server() -> None:
    document = build_asyncapi(Realtime(path="/ws/"))
    assert list(document["channels"]) == ["root"]
    assert document["servers"]["socketio"]["pathname"] == "/ws"
    assert "schemas" not in document["components"]
    assert_valid_asyncapi(document)


def test_known_host() -> None:
    server = build_asyncapi(Realtime(), host="example.com:8443")["servers"]["socketio"]
    assert server["host"] == "example.com:8443" and "variables" not in server


def test_callable_dynamic_namespace() -> None:
    def tenant_namespace(name: str, auth: Any) -> bool:
        return name.startswith("/tenant-")

    router = RealtimeRouter(namespace=tenant_namespace)

    @router.on("ping")
    async def ping(socket: Socket) -> str:
        return "pong"

    rt = Realtime()
    rt.include_router(router)
    document = build_asyncapi(rt)
    channel = document["channels"]["dynamic_1"]
    assert "tenant_namespace" in channel["description"]
    assert ack_of(document, "dynamic_1", "ping") == {
        "type": "array", "items": [{"type": "string"}], "additionalItems": False, "minItems": 1,
    }
    assert_valid_asyncapi(document)


# -- validity against the official AsyncAPI 3.0.0 JSON Schema -------------------------------------

def test_valid_against_the_official_schema(document: dict[str, Any]) -> None:
    assert_valid_asyncapi(document)


def test_the_official_schema_catches_mistakes(document: dict[str, Any]) -> None:
    """The validator is not vacuous: a wrong action, a missing host, a bad discriminator fail."""
    validator = official_validator()
    broken = json.loads(json.dumps(document))
    next(iter(broken["operations"].values()))["action"] = "publish"
    assert not validator.is_valid(broken)
    broken = json.loads(json.dumps(document))
    del broken["servers"]["socketio"]["host"]
    assert not validator.is_valid(broken)
    broken = json.loads(json.dumps(document))
    broken["components"]["schemas"]["Mood"]["discriminator"] = {"propertyName": "kind"}
    assert not validator.is_valid(broken)
