"""AsyncAPI 3.0 generation: structure, shared schemas, validity against the official schema, HTML."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import re
from typing import Annotated, Any, Literal

import jsonschema
import pytest
from fastapi import APIRouter, Depends, FastAPI, Header, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field
from starlette.applications import Starlette
from starlette.testclient import TestClient

from fastapi_realtime import Realtime, RealtimeRouter, Socket
from fastapi_realtime.asyncapi import DocsInfo, asyncapi_html, build_asyncapi, info_from_scope
from fastapi_realtime.testing import RealtimeTestClient
from tests.asyncapi.helpers import assert_valid_asyncapi, h1, official_validator, parse, section, tables


# -- the application described ---------------------------------------------------------------------

class Mood(enum.Enum):
    HAPPY = "happy"
    GRUMPY = "grumpy"


class ChatMessage(BaseModel):
    room: str
    text: Annotated[str, Field(min_length=1, max_length=500)]
    mood: Mood = Mood.HAPPY
    sent_at: datetime.datetime


class Receipt(BaseModel):
    ok: bool
    stored_at: datetime.datetime


class AuthPayload(BaseModel):
    token: str


@dataclasses.dataclass
class Point:
    x: float
    y: float


def _other_item() -> type[BaseModel]:
    class Item(BaseModel):  # same class name as the module-level Item, a different model
        label: str

    return Item


class Item(BaseModel):
    sku: str
    quantity: Annotated[int, Field(ge=1)]


OtherItem = _other_item()
Percent = Annotated[int, Field(ge=0, le=100)]
EVIL_EVENT = "<script>alert(1)</script>"


def current_user() -> str:
    return "alice"


root = RealtimeRouter()
chat = RealtimeRouter(namespace="/chat")
teams = RealtimeRouter(namespace=re.compile(r"^/team-\d+$"))


@root.on("connect")
async def on_connect(socket: Socket, auth: AuthPayload | None) -> None:
    """Accept everyone."""


@root.on("disconnect")
async def on_disconnect(socket: Socket, reason: str) -> None: ...


@root.on("say")
async def say(socket: Socket, msg: ChatMessage) -> Receipt:
    """Post a message to the lobby.

    The ack says when it was stored.
    """
    return Receipt(ok=True, stored_at=msg.sent_at)


@root.on("draw")
async def draw(socket: Socket, server: Realtime, at: Point, opacity: Percent = 100, *tags: str) -> None:
    """Draw a point; nothing to acknowledge."""


@root.on("raw")
async def raw(socket: Socket, anything, user: str = Depends(current_user)) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    return 1, "ok"


@root.on(EVIL_EVENT)
async def evil(socket: Socket) -> None: ...


@root.on_any()
async def fallback(socket: Socket, event: str, *args: Any) -> None: ...


@chat.on("message")
async def chat_message(socket: Socket, msg: ChatMessage, when: datetime.date | None = None) -> Receipt | None:
    return None


@chat.on("order")
async def order(socket: Socket, first: Item, second: OtherItem) -> list[Item]:  # type: ignore[valid-type]
    return [first]


@chat.on("lookup", response_model=Item)
async def lookup(socket: Socket, request: Request, sku: str, agent: str = Header(default="?")) -> dict[str, Any]:
    """`response_model` wins over the return annotation; request data is not an argument."""
    return {"sku": sku, "quantity": 1}


@chat.on("mystery")
async def mystery(socket: Socket, known: int, unknown: NotDefinedAnywhere) -> None:  # type: ignore[name-defined] # noqa: F821
    """An annotation that cannot be resolved costs only its own parameter."""


@teams.on("score")
async def score(socket: Socket, points: Annotated[int, Field(gt=0)], mood: Mood) -> int:
    return points


def make_realtime() -> Realtime:
    rt = Realtime(path="/socket.io")
    for router in (root, chat, teams):
        rt.include_router(router)
    return rt


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build_asyncapi(make_realtime(), title="Test app", version="2.1.0", description="For the tests.")


# -- helpers ------------------------------------------------------------------------------------------

def resolve(document: dict[str, Any], ref: str) -> Any:
    """What a local reference points at, following references to references."""
    for _ in range(5):
        assert ref.startswith("#/"), ref
        node: Any = document
        for part in ref[2:].split("/"):
            assert isinstance(node, dict) and part in node, f"dangling $ref {ref}"
            node = node[part]
        if not (isinstance(node, dict) and isinstance(node.get("$ref"), str)):
            return node
        ref = node["$ref"]
    raise AssertionError(f"reference chain too long at {ref}")


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in refs(value)]
    return []


def operation_for(document: dict[str, Any], channel: str, event: str) -> dict[str, Any]:
    for operation in document["operations"].values():
        if operation["channel"]["$ref"] != f"#/channels/{channel}":
            continue
        for ref in operation["messages"]:
            message = resolve(document, ref["$ref"])
            if message.get("name") == event:
                return dict(operation)
    raise AssertionError(f"no operation for {event!r} in {channel}")


def payload_of(document: dict[str, Any], channel: str, event: str) -> dict[str, Any]:
    operation = operation_for(document, channel, event)
    return dict(resolve(document, operation["messages"][0]["$ref"])["payload"])


def ack_of(document: dict[str, Any], channel: str, event: str) -> dict[str, Any] | None:
    """The success ack's payload; the reply's other message is the shared error ack."""
    reply = operation_for(document, channel, event).get("reply")
    if reply is None:
        return None
    ack, error = (resolve(document, ref["$ref"]) for ref in reply["messages"])
    assert error["title"] == "Error ack"
    return dict(ack["payload"])


def validator_for(document: dict[str, Any], schema: dict[str, Any]) -> jsonschema.Draft7Validator:
    """A draft-07 validator for a schema inside the document: its #/components refs resolve."""
    return jsonschema.Draft7Validator({**schema, "components": document["components"]})


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


# -- HTML ---------------------------------------------------------------------------------------------

def test_html_lists_namespaces_events_and_schemas(document: dict[str, Any]) -> None:
    page = asyncapi_html(document, json_url="asyncapi.json")
    assert page.startswith("<!DOCTYPE html>")
    checker = parse(page)
    text = "".join(checker.text)
    for needle in ("Test app", "/chat", r"^/team-\d+$", "say", "draw", "message", "order", "score",
                   "ChatMessage", "Receipt", "Mood", "say ack", EVIL_EVENT):
        assert needle in text, needle
    assert 'emit("draw", at: Point, opacity?: integer, ...tags: string)' in text
    # Self-contained: no scripts, no external resources; the event name was escaped, not run.
    assert "script" not in checker.tags
    hrefs = [value or "" for name, value in checker.attrs if name in ("href", "src")]
    assert all(h.startswith("#") or h == "asyncapi.json" for h in hrefs), hrefs
    assert 'href="#schema-ChatMessage"' in page and 'id="schema-ChatMessage"' in page


def test_model_fields_are_tables(document: dict[str, Any]) -> None:
    page = asyncapi_html(document)
    (fields,) = tables(section(page, "schema-ChatMessage"))
    assert fields == [
        {"Field": "room", "Type": "string", "Required": "yes", "Default": "", "Constraints": ""},
        {"Field": "text", "Type": "string", "Required": "yes", "Default": "", "Constraints": "min length 1; max length 500"},
        {"Field": "mood", "Type": "Mood", "Required": "no", "Default": '"happy"', "Constraints": ""},
        {"Field": "sent_at", "Type": "string (date-time)", "Required": "yes", "Default": "", "Constraints": ""},
    ]
    assert tables(section(page, "schema-Mood")) == [[{"Value": '"happy"'}, {"Value": '"grumpy"'}]]
    # A dataclass is a model too; the raw JSON Schema stays one click away.
    point = section(page, "schema-Point")
    assert [row["Field"] for row in tables(point)[0]] == ["x", "y"]
    assert "<summary>JSON Schema</summary>" in point and "&quot;required&quot;" in point


def test_event_arguments_are_tables(document: dict[str, Any]) -> None:
    page = asyncapi_html(document)
    arguments, *_ = tables(section(page, "op-root.draw"))
    assert arguments == [
        {"#": "1", "Name": "at", "Type": "Point", "Required": "yes", "Default": "", "Constraints": ""},
        {
            "#": "2", "Name": "opacity", "Type": "integer", "Required": "no", "Default": "100",
            "Constraints": "≥ 0; ≤ 100",
        },
        {"#": "3…", "Name": "tags", "Type": "string", "Required": "no", "Default": "", "Constraints": ""},
    ]
    # The ack's arguments have no names: a tuple is two positions.
    _arguments, raw_ack, error_ack = tables(section(page, "op-root.raw"))
    assert raw_ack == [{"#": "1", "Type": "integer", "Required": "yes"}, {"#": "2", "Type": "string", "Required": "yes"}]
    assert error_ack == [{"#": "1", "Type": "Validation error | Internal error", "Required": "yes"}]
    evil_key = re.sub(r"[^A-Za-z0-9_.\-]", "_", EVIL_EVENT)  # operation keys are $ref-safe
    assert "No arguments." in section(page, f"op-root.{evil_key}")


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Address(BaseModel):
    """Where to send things."""

    city: str


EVIL_DESCRIPTION = "<script>alert('bio')</script>"


class Profile(BaseModel):
    """A user's `profile`."""

    name: Annotated[str, Field(min_length=1, max_length=40, description="Shown as `name`.")]
    nickname: str | None = None
    age: Annotated[int, Field(ge=0, lt=150)] = 18
    tags: set[str] = Field(default_factory=set)
    home: Address | None = None
    addresses: list[Address] = []
    level: Level = Level.LOW
    code: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    kind: Literal["user", "admin"] = "user"
    bio: str = Field("", description=EVIL_DESCRIPTION)
    motto: str = Field("</td><script>x</script>", alias="<b>motto</b>", examples=["<i>carpe</i>"])


def profile_document() -> dict[str, Any]:
    router = RealtimeRouter(namespace="/profiles")

    @router.on("update")
    async def update(
        socket: Socket, profile: Profile, note: Annotated[str, Field(max_length=10)] = "none", *extra: int
    ) -> Profile:
        return profile

    rt = Realtime()
    rt.include_router(router)
    return build_asyncapi(rt, title="Profiles", version="0.3.0")


def test_field_table_rows() -> None:
    page = asyncapi_html(profile_document())
    profile = section(page, "schema-Profile")
    assert "A user&#x27;s <code>profile</code>." in profile
    rows = {row["Field"]: row for row in tables(profile)[0]}
    assert rows["name"] == {
        "Field": "name", "Type": "string", "Required": "yes", "Default": "",
        "Constraints": "min length 1; max length 40", "Description": "Shown as name.",
    }
    assert '<td>Shown as <code>name</code>.</td>' in profile
    assert rows["nickname"]["Type"] == "string | null" and rows["nickname"]["Default"] == "null"
    assert (rows["age"]["Required"], rows["age"]["Default"], rows["age"]["Constraints"]) == ("no", "18", "≥ 0; < 150")
    assert rows["tags"]["Type"] == "array of string" and rows["tags"]["Constraints"] == "unique items"
    assert rows["tags"]["Default"] == ""  # a default_factory has no JSON default
    assert rows["home"]["Type"] == "Address | null"
    assert rows["addresses"]["Type"] == "array of Address" and rows["addresses"]["Default"] == "[]"
    assert rows["level"]["Type"] == "Level" and rows["level"]["Default"] == "1"
    assert rows["code"]["Required"] == "yes" and rows["code"]["Constraints"] == "pattern ^[A-Z]{3}$"
    assert rows["kind"]["Type"] == "string" and rows["kind"]["Constraints"] == 'one of "user", "admin"'
    # Model types link to their own tables.
    assert '<a href="#schema-Address">Address</a> | null' in profile
    assert tables(section(page, "schema-Level")) == [[{"Value": "1"}, {"Value": "2"}]]
    assert "<p>Type: integer</p>" in section(page, "schema-Level")
    assert "Where to send things." in section(page, "schema-Address")
    (arguments, ack, _error) = tables(section(page, "op-profiles.update"))
    assert arguments == [
        {"#": "1", "Name": "profile", "Type": "Profile", "Required": "yes", "Default": "", "Constraints": ""},
        {"#": "2", "Name": "note", "Type": "string", "Required": "no", "Default": '"none"', "Constraints": "max length 10"},
        {"#": "3…", "Name": "extra", "Type": "integer", "Required": "no", "Default": "", "Constraints": ""},
    ]
    assert ack == [{"#": "1", "Type": "Profile", "Required": "yes"}]


def test_user_text_is_escaped() -> None:
    page = asyncapi_html(profile_document())
    checker = parse(page)
    assert "script" not in checker.tags and "b" not in checker.tags and "i" not in checker.tags
    assert "<script" not in page
    rows = {row["Field"]: row for row in tables(section(page, "schema-Profile"))[0]}
    assert rows["bio"]["Description"] == EVIL_DESCRIPTION
    assert rows["<b>motto</b>"]["Default"] == '"</td><script>x</script>"'
    assert rows["<b>motto</b>"]["Description"] == 'Examples: "<i>carpe</i>"'


def test_page_title_and_version() -> None:
    page = asyncapi_html(profile_document())
    assert h1(page) == "Profiles 0.3.0"
    assert "<title>Profiles</title>" in page


@pytest.mark.parametrize(
    ("scope", "explicit", "expected"),
    [
        ({"app": FastAPI(title="Chat", version="2.1.0", description="Rooms.")}, {}, ("Chat", "2.1.0", "Rooms.")),
        # FastAPI's own defaults, as its OpenAPI docs show them; an empty description is none.
        ({"app": FastAPI()}, {}, ("FastAPI", "0.1.0", None)),
        ({"app": Starlette()}, {}, ("fastapi-realtime", "1.0.0", None)),
        ({}, {}, ("fastapi-realtime", "1.0.0", None)),
        (
            {"app": FastAPI(title="Chat", version="2.1.0", description="Rooms.")},
            {"title": "Explicit", "description": ""},
            ("Explicit", "2.1.0", None),
        ),
        ({}, {"title": "T", "version": "9", "description": "D"}, ("T", "9", "D")),
    ],
)
def test_info_from_scope(scope: dict[str, Any], explicit: dict[str, str], expected: tuple[str, str, str | None]) -> None:
    info = info_from_scope(scope, **explicit)
    assert info == DocsInfo(*expected)


def test_info_from_the_app_makes_a_valid_document() -> None:
    app = FastAPI(title="Chat <b>", version="2.1.0", description="Rooms and `messages`.")
    title, version, description = info_from_scope({"app": app})
    document = build_asyncapi(make_realtime(), title=title, version=version, description=description)
    assert document["info"] == {"title": "Chat <b>", "version": "2.1.0", "description": "Rooms and `messages`."}
    assert_valid_asyncapi(document)
    page = asyncapi_html(document)
    assert h1(page) == "Chat <b> 2.1.0" and "<p>Rooms and <code>messages</code>.</p>" in page


# -- served by a FastAPI app (until the server wires its own routes) ----------------------------------

def test_served_through_fastapi() -> None:
    rt = make_realtime()
    docs = APIRouter()

    @docs.get(f"{rt.path}/asyncapi.json")
    def asyncapi_json() -> JSONResponse:
        return JSONResponse(build_asyncapi(rt))

    @docs.get(f"{rt.path}/asyncapi")
    def asyncapi_page() -> HTMLResponse:
        return HTMLResponse(asyncapi_html(build_asyncapi(rt), json_url="asyncapi.json"))

    app = FastAPI()
    app.include_router(docs)
    app.include_router(rt.router)
    client = TestClient(app)
    response = client.get("/socket.io/asyncapi.json")
    assert response.status_code == 200
    assert response.json() == build_asyncapi(rt)
    page = client.get("/socket.io/asyncapi")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    parse(page.text)
    # The Socket.IO handshake still works beside the docs routes.
    handshake = client.get("/socket.io/", params={"EIO": "4", "transport": "polling"})
    assert handshake.status_code == 200 and handshake.text.startswith("0{")
