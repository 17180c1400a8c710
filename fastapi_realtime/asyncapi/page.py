"""The HTML page for an AsyncAPI document: self-contained, no scripts, no external resources."""

from __future__ import annotations

import html
from typing import Any

from .tables import arguments_table, prose, raw_schema, schema_section, signature_line

__all__ = ["asyncapi_html"]


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
    out.extend(prose(info.get("description"), set()))
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
        out.extend(prose(server.get("description"), set()))

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
        out.extend(prose(channel.get("description"), set()))
        ref = f"#/channels/{key}"
        for op_key, operation in operations.items():
            if not isinstance(operation, dict) or (operation.get("channel") or {}).get("$ref") != ref:
                continue
            out.extend(_operation_html(document, op_key, operation))
        out.append("</section>")

    if schemas:
        out.append('<section id="schemas"><h2>Schemas</h2>')
        for name, schema in schemas.items():
            out.extend(schema_section(name, schema))
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
        out.extend(prose(operation.get(field_name), shown))
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
        out.append(f"<p><code>{signature_line(message['name'], message.get('payload'))}</code></p>")
    out.extend(prose(message.get("summary"), shown))
    out.extend(prose(message.get("description"), shown))
    if "payload" in message:
        label = {"EVENT": "Arguments", "ACK": "Ack arguments"}.get(str(packet), "Payload")
        # Messages shared by every namespace start folded: they would repeat in each one.
        attribute = "" if shared else " open"
        out.append(f"<details{attribute}><summary>{label}</summary>")
        out.extend(arguments_table(message["payload"]))
        out.append(raw_schema(message["payload"]))
        out.append("</details>")
    return out
