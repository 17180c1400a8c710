"""Serving the admin UI's own files (`ui/dist` of npm @socket.io/admin-ui), so no hosted page is needed."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.types import Receive, Scope, Send

Endpoint = Callable[[Request], Awaitable[Response]]


def check_ui_dir(ui_dir: str | Path) -> Path:
    root = Path(ui_dir).resolve()
    if not (root / "index.html").is_file():
        raise ValueError(
            f"ui_dir {str(ui_dir)!r} has no index.html: point it at the ui/dist directory of npm "
            "@socket.io/admin-ui (e.g. node_modules/@socket.io/admin-ui/ui/dist)"
        )
    return root


def _defaults_script(path: str, namespace: str) -> str:
    # The UI reads its connection settings from localStorage; a first visit starts with this
    # server's, so the login form only asks for the credentials.
    settings = json.dumps({"path": path, "namespace": namespace})
    return (
        "<script>(function(){try{var s=" + settings + ";"
        "if(!localStorage.getItem('server_url')){localStorage.setItem('server_url',location.origin);"
        "localStorage.setItem('path',s.path);localStorage.setItem('namespace',s.namespace);}}catch(e){}})();</script>"
    )


class UIFiles:
    """The UI's files under one directory; index.html carries this server's connection defaults."""

    def __init__(self, ui_dir: str | Path, socketio_path: str, namespace: str) -> None:
        self.root = check_ui_dir(ui_dir)
        index = (self.root / "index.html").read_text(encoding="utf-8")
        script = _defaults_script(socketio_path, namespace)
        self.index = index.replace("<head>", "<head>" + script, 1) if "<head>" in index else script + index

    def response(self, relative: str) -> Response:
        relative = relative.lstrip("/")
        if relative in ("", "index.html"):
            return HTMLResponse(self.index)
        try:
            target = (self.root / relative).resolve()
        except (OSError, ValueError):
            return Response("Not Found", status_code=404)
        if not target.is_relative_to(self.root) or not target.is_file():
            return Response("Not Found", status_code=404)
        return FileResponse(target)

    def endpoint(self, prefix: str) -> Endpoint:
        """A GET endpoint for the routes `prefix` and `prefix/{path:path}`."""

        async def serve(request: Request) -> Response:
            if "path" not in request.path_params:
                # The UI's assets are relative: its page must be read as a directory.
                return RedirectResponse(str(request.url.replace(path=request.url.path + "/")))
            return self.response(str(request.path_params["path"]))

        return serve

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """As an ASGI app, for `app.mount("/admin-ui", instrumentation.ui_app)`."""
        if scope["type"] != "http":
            return
        path = str(scope.get("path", ""))
        root_path = str(scope.get("root_path", ""))
        if path.startswith(root_path):
            path = path[len(root_path):]
        if path == "":
            url = Request(scope).url
            response: Response = RedirectResponse(str(url.replace(path=url.path + "/")))
        elif scope.get("method") not in ("GET", "HEAD"):
            response = Response("Method Not Allowed", status_code=405)
        else:
            response = self.response(path)
        await response(scope, receive, send)
