"""The document's `info` (title, version, description): explicit, or from the app serving it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

__all__ = ["DEFAULT_TITLE", "DEFAULT_VERSION", "DocsInfo", "info_from_scope"]

DEFAULT_TITLE = "fastapi-realtime"
DEFAULT_VERSION = "1.0.0"


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
