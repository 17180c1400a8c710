"""Schemas read as HTML: readable types, field and argument tables, escaped prose.

Every function here returns HTML in which all text from the document is escaped.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

__all__ = ["arguments_table", "prose", "raw_schema", "schema_section", "signature_line"]


_SCHEMA_REF = re.compile(r"&quot;#/components/schemas/([A-Za-z0-9_.\-]+)&quot;")
_SCHEMAS_PREFIX = "#/components/schemas/"


def _json_block(value: Any) -> str:
    text = html.escape(json.dumps(value, indent=2, ensure_ascii=False))
    linked = _SCHEMA_REF.sub(lambda m: f'<a href="#schema-{m.group(1)}">{m.group(0)}</a>', text)
    return f"<pre><code>{linked}</code></pre>"


def raw_schema(value: Any) -> str:
    # The tables are a reading of the schema; the schema itself stays one click away.
    return f"<details><summary>JSON Schema</summary>{_json_block(value)}</details>"


def _code(value: Any) -> str:
    """A JSON value as inline code."""
    return f"<code>{html.escape(json.dumps(value, ensure_ascii=False))}</code>"


def _inline(text: str) -> str:
    """Escaped text with only CommonMark `inline code` rendered."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def prose(text: Any, shown: set[str]) -> list[str]:
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


def schema_section(name: str, schema: Any) -> list[str]:
    esc = html.escape
    out = [f'<section class="schema" id="schema-{esc(name)}">', f"<h3>{esc(name)}</h3>"]
    if isinstance(schema, dict):
        title = schema.get("title")
        if isinstance(title, str) and title != name:  # a key made unique by its module path
            out.append(f'<p class="muted">{esc(title)}</p>')
        out.extend(prose(schema.get("description"), set()))
        out.extend(_schema_body(schema))
    out.append(raw_schema(schema))
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


def arguments_table(payload: Any) -> list[str]:
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


def signature_line(name: str, payload: Any) -> str:
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
