"""The docs of a Realtime server, served beside its endpoint: `<path>/asyncapi.json` and `<path>/asyncapi`.

The server does not import this package. It offers a hook instead, `Realtime.route_extensions`:
callables it asks, when it builds its router, for GET endpoints by sub-path of its own path, and
whose endpoints it also answers when mounted as an ASGI app. The package entry
(`fastapi_realtime/__init__.py`) adds `docs_routes` to it.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse

from ..server import Realtime, RouteEndpoint
from .document import build_document
from .info import DEFAULT_TITLE, DEFAULT_VERSION, DocsInfo, info_from_scope
from .page import asyncapi_html

__all__ = ["build_asyncapi", "docs_routes"]


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
    return build_document(
        realtime.handler_tables(),
        DocsInfo(title, version, description),
        path=realtime.path if path is None else path,
        transports=realtime.engine_options.transports,
        host=host,
    )


def docs_routes(realtime: Realtime) -> dict[str, RouteEndpoint]:
    """The docs endpoints by sub-path of the realtime path; none when the server has `docs=False`."""
    if not realtime.docs:
        return {}

    async def document_json(request: Request) -> JSONResponse:
        return JSONResponse(_served_document(realtime, request))

    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse(asyncapi_html(_served_document(realtime, request), json_url="asyncapi.json"))

    return {"/asyncapi.json": document_json, "/asyncapi": page}


def _served_document(realtime: Realtime, request: Request) -> dict[str, Any]:
    # The document is served beside the endpoint: its own URL tells where clients connect,
    # whatever prefix, mount path or root_path put it there.
    root, served = request.scope.get("root_path", ""), request.scope["path"]
    if not served.startswith(root):  # servers differ on whether `path` includes root_path
        served = root + served
    path = served.rstrip("/").rsplit("/", 1)[0] or "/"
    info = info_from_scope(
        request.scope, title=realtime.docs_title, version=realtime.docs_version, description=realtime.docs_description
    )
    return build_document(
        realtime.handler_tables(), info, path=path, transports=realtime.engine_options.transports,
        host=request.url.netloc,
    )
