"""The Engine.IO ASGI app: request checks, CORS, and dispatch to the polling or WebSocket transport."""

from __future__ import annotations

import logging

from starlette.requests import HTTPConnection

from ._types import Receive, Scope, Send
from .engineio.handshake import ErrorCode, open_frame
from .sessions import SessionManager
from .transports.http import Headers, TEXT_PLAIN, header, query_params, respond, respond_error
from .transports.polling import handle_get, handle_post
from .transports.websocket import WebSocketConnection, serve_new, serve_upgrade

logger = logging.getLogger("fastapi_realtime.engine")

PREFLIGHT_METHODS = b"GET,HEAD,PUT,PATCH,POST,DELETE"


class EngineApp:
    """ASGI callable for one Engine.IO endpoint; the path is the router's business."""

    def __init__(self, manager: SessionManager) -> None:
        self.manager = manager

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)

    # -- checks shared by both transports ----------------------------------------------------
    def _same_origin(self, scope: Scope) -> str:
        scheme = scope.get("scheme", "http")
        scheme = {"ws": "http", "wss": "https"}.get(scheme, scheme)
        return f"{scheme}://{header(scope, b'host') or ''}"

    def _origin_ok(self, scope: Scope) -> tuple[bool, str | None]:
        origin = header(scope, b"origin")
        if origin is None:
            return True, None  # not a browser cross-origin request
        return self.manager.options.origin_allowed(origin, self._same_origin(scope)), origin

    def _cors_headers(self, origin: str | None) -> Headers:
        options = self.manager.options
        if origin is None:
            return []
        if options.cors_allowed_origins == "*" and not options.cors_credentials:
            return [(b"access-control-allow-origin", b"*")]
        headers = [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin")]
        if options.cors_credentials:
            headers.append((b"access-control-allow-credentials", b"true"))
        return headers

    def _check_query(self, query: dict[str, str], *, websocket: bool) -> ErrorCode | None:
        transport = query.get("transport")
        if transport not in self.manager.options.transports:
            return ErrorCode.UNKNOWN_TRANSPORT
        if query.get("EIO") != "4":
            return ErrorCode.UNSUPPORTED_PROTOCOL_VERSION
        if (transport == "websocket") != websocket:
            return ErrorCode.BAD_REQUEST
        return None

    async def _allowed(self, scope: Scope) -> str | None:
        """None when the handshake may go on, else the refusal message."""
        hook = self.manager.options.allow_request
        if hook is None:
            return None
        try:
            verdict = await hook(HTTPConnection(scope))
        except Exception:
            logger.exception("allow_request failed")
            return "Forbidden"
        if verdict is True or verdict is None:
            return None
        return verdict if isinstance(verdict, str) else "Forbidden"

    # -- HTTP long-polling --------------------------------------------------------------------
    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        ok, origin = self._origin_ok(scope)
        if not ok:
            await respond_error(send, ErrorCode.FORBIDDEN, [], "Origin not allowed")
            return
        cors = self._cors_headers(origin)
        method = scope["method"]
        if method == "OPTIONS":
            headers = [*cors, (b"access-control-allow-methods", PREFLIGHT_METHODS)]
            requested = header(scope, b"access-control-request-headers")
            if requested:
                headers.append((b"access-control-allow-headers", requested.encode("latin-1")))
            await respond(send, 204, b"", None, headers)
            return
        query = query_params(scope)
        sid = query.get("sid")
        if sid is None and query.get("transport") == "websocket" and query.get("EIO") == "4":
            await respond_error(send, ErrorCode.BAD_REQUEST, cors)  # a plain GET with no upgrade
            return
        error = self._check_query(query, websocket=False)
        if error is not None:
            await respond_error(send, error, cors)
            return
        manager = self.manager
        if sid is None:
            if method != "GET":
                await respond_error(send, ErrorCode.BAD_HANDSHAKE_METHOD, cors)
                return
            await self._handshake(scope, send, cors)
            return
        session = manager.get(sid)
        if session is None:
            await respond_error(send, ErrorCode.UNKNOWN_SID, cors)
            return
        if session.transport != "polling":
            await respond_error(send, ErrorCode.BAD_REQUEST, cors)
            return
        if method == "GET":
            await handle_get(session, receive, send, cors)
        elif method == "POST":
            await handle_post(session, scope, receive, send, cors)
        else:
            await respond(send, 500, b"", None, cors)

    async def _handshake(self, scope: Scope, send: Send, cors: Headers) -> None:
        manager = self.manager
        refusal = await self._allowed(scope)
        if refusal is not None:
            await respond_error(send, ErrorCode.FORBIDDEN, cors, refusal)
            return
        if manager.shutting_down:
            await respond_error(send, ErrorCode.BAD_REQUEST, cors)
            return
        options = manager.options
        session = manager.create(scope, "polling")
        upgrades = ["websocket"] if options.allow_upgrades and "websocket" in options.transports else []
        body = open_frame(session.sid, upgrades, options.ping_interval, options.ping_timeout, options.max_http_buffer_size)
        headers = list(cors)
        if options.cookie:
            headers.append((b"set-cookie", f"{options.cookie}={session.sid}; Path=/; HttpOnly; SameSite=Lax".encode()))
        await respond(send, 200, body.encode(), TEXT_PLAIN, headers)
        manager.open(session)

    # -- WebSocket -----------------------------------------------------------------------------
    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        manager = self.manager
        query = query_params(scope)
        ok, _ = self._origin_ok(scope)
        refused = not ok or manager.shutting_down or self._check_query(query, websocket=True) is not None
        sid = query.get("sid")
        session = None
        if not refused and sid is not None:
            session = manager.get(sid)
            refused = (
                session is None
                or session.closed
                or session.transport != "polling"
                or session.probing
                or not manager.options.allow_upgrades
            )
        if not refused and sid is None:
            refused = await self._allowed(scope) is not None
        if refused:
            # Closing before accept makes the server answer the upgrade with 403.
            await send({"type": "websocket.close", "code": 1008})
            return
        await send({"type": "websocket.accept"})
        ws = WebSocketConnection(receive, send)
        if session is None:
            await serve_new(manager, scope, ws)
        else:
            await serve_upgrade(session, ws)
