"""Shared by the AsyncAPI tests: the official schema's validator, finding things in a document, reading the HTML page."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

SPECS = Path(__file__).resolve().parents[1] / "interop" / "node_modules" / "@asyncapi" / "specs" / "schemas"


# -- validity against the official AsyncAPI 3.0.0 JSON Schema -------------------------------------

def official_validator() -> jsonschema.Draft7Validator:
    path = SPECS / "3.0.0.json"
    assert path.is_file(), f"{path} is missing: run `make node` (npm install in tests/interop)"
    bundle = json.loads(path.read_text())
    # The bundle keys its definitions by $id (draft-07 meta-schema included): register each so
    # every $ref resolves offline.
    resources = [(uri, Resource.from_contents(schema, default_specification=DRAFT7)) for uri, schema in bundle["definitions"].items()]
    registry: Registry[Any] = Registry().with_resources(resources)
    registry = registry.with_resource(bundle["$id"], Resource.from_contents(bundle, default_specification=DRAFT7))
    return jsonschema.Draft7Validator(bundle, registry=registry)


def assert_valid_asyncapi(document: dict[str, Any]) -> None:
    errors = sorted(official_validator().iter_errors(document), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}" for e in errors[:10])


# -- the HTML page ----------------------------------------------------------------------------------

VOID = {"meta", "link", "br", "hr", "img", "input"}


class Checker(HTMLParser):
    """Collects text, tags, attributes and tables, and checks that elements nest and close."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []
        self.errors: list[str] = []
        self.tables: list[list[list[str]]] = []  # rows of cell texts, the header row first
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)
        if tag not in VOID:
            self.stack.append(tag)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()
        if tag in ("td", "th") and self._cell is not None and self.tables and self.tables[-1]:
            self.tables[-1][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def parse(page: str) -> Checker:
    checker = Checker()
    checker.feed(page)
    checker.close()
    assert not checker.errors, checker.errors
    assert not checker.stack, f"unclosed: {checker.stack}"
    return checker


def section(page: str, element_id: str) -> str:
    """The HTML of the <section> with this id (schema and operation sections hold no other)."""
    found = re.search(rf'<section[^>]* id="{re.escape(element_id)}">(.*?)</section>', page, re.DOTALL)
    assert found, f"no section {element_id!r}"
    return found.group(1)


def tables(fragment: str) -> list[list[dict[str, str]]]:
    """Each table in `fragment` as its rows, a row mapping each column header to the cell's text."""
    checker = Checker()
    checker.feed(fragment)
    return [[dict(zip(rows[0], row, strict=True)) for row in rows[1:]] for rows in checker.tables]


def h1(page: str) -> str:
    found = re.search(r"<h1>(.*?)</h1>", page, re.DOTALL)
    assert found, "no <h1>"
    return "".join(parse(found.group(0)).text)


# -- finding things in a document ------------------------------------------------------------------

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
