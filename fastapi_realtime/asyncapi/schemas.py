"""JSON Schemas of handler annotations through pydantic, in AsyncAPI's draft-07 dialect."""

from __future__ import annotations

import inspect
import json
from typing import Any

from pydantic import TypeAdapter
from pydantic.json_schema import JsonSchemaMode

__all__ = ["REF_TEMPLATE", "Schemas", "jsonable", "titled"]

REF_TEMPLATE = "#/components/schemas/{model}"


class Schemas:
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


def titled(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    # Draft-07 ignores keywords beside $ref, so a titled reference wraps it in allOf.
    if "$ref" in schema:
        return {"title": name, "allOf": [schema]}
    return {"title": name, **schema}


def jsonable(value: Any) -> tuple[bool, Any]:
    try:
        return True, TypeAdapter(Any).dump_python(value, mode="json")
    except Exception:
        return False, None
