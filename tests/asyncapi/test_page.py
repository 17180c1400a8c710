"""The HTML page (asyncapi/page.py, asyncapi/tables.py)."""

from __future__ import annotations

import enum
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from fastapi_realtime import Realtime, RealtimeRouter, Socket
from fastapi_realtime.asyncapi import asyncapi_html, build_asyncapi
from tests.asyncapi.app import EVIL_EVENT
from tests.asyncapi.helpers import h1, parse, section, tables

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
