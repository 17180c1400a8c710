"""The Engine.IO ASGI app: request checks, CORS, and dispatch to the polling or WebSocket transport."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable

from starlette.requests import HTTPConnection

from ._logging import RateLimitedLog
from ._types import Receive, Scope, Send
from .engineio.handshake import ERROR_MESSAGES, ErrorCode, Transport, open_frame, parse_query
from .engineio.session import State
from .sessions import EngineSession, SessionManager
from .transports.http import TEXT_PLAIN, Headers, deny_websocket, header, query_params, respond, respond_error
from .transports.polling import handle_get, handle_post
from .transports.websocket import WebSocketConnection, serve_new, serve_upgrade

logger = logging.getLogger("fastapi_realtime.engine")

PREFLIGHT_METHODS = b"GET,HEAD,PUT,PATCH,POST,DELETE"
# The shape of the session ids this package (and Node) hands out.
_SID_SHAPE = re.compile(r"[A-Za-z0-9_-]{20}")
_log_origin = RateLimitedLog(logger, logging.WARNING)
_log_unknown_sid = RateLimitedLog(logger, logging.WARNING)
_log_busy = RateLimitedLog(logger, logging.WARNING)

SHUTTING_DOWN = "Server shutting down"
# Loop turns a polling request waits when it meets a session whose upgrade is being completed.
UPGRADE_GRACE_TURNS = 4
TOO_MANY_PENDING = "Too many sessions waiting to join a namespace"


async def _ignored() -> None:
    """Another ASGI scope (lifespan reaches the server object, not this app): nothing to do."""


class EngineApp:
    """ASGI callable for one Engine.IO endpoint; the path is the router's business."""

    def __init__(self, manager: SessionManager) -> None:
        self.manager = manager

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Returns the transport's coroutine rather than awaiting it: a WebSocket connection
        # lives for hours, and every coroutine frame between it and the server is memory it holds.
        kind = scope["type"]
        if kind == "http":
            return self._http(scope, receive, send)
        if kind == "websocket":
            return self._websocket(scope, receive, send)
        return _ignored()

    # -- checks shared by both transports ----------------------------------------------------
    def _same_origin(self, scope: Scope) -> str:
        scheme = scope.get("scheme", "http")
        scheme = {"ws": "http", "wss": "https"}.get(scheme, scheme)
        return f"{scheme}://{header(scope, b'host') or ''}"

    def _origin_ok(self, scope: Scope) -> tuple[bool, str | None]:
        origin = header(scope, b"origin")
        if origin is None:
            return True, None  # not a browser cross-origin request
        allowed = self.manager.options.origin_allowed(origin, self._same_origin(scope))
        if not allowed:
            _log_origin(
                "refused a request from origin %r: not in cors_allowed_origins (the app's CORSMiddleware "
                "does not cover the realtime endpoint)", origin[:200],
            )
        return allowed, origin

    def _find(self, sid: str) -> EngineSession | None:
        session = self.manager.get(sid)
        if session is None and _SID_SHAPE.fullmatch(sid) and not self.manager.ended_recently(sid):
            # Normal right after a session ended; a steady stream of them usually means several
            # processes serve one endpoint without sticky sessions.
            _log_unknown_sid(
                "request for unknown session %s: if several processes serve this endpoint, polling needs "
                "sticky sessions (see 'Several workers or machines' in the fastapi-realtime README, "
                "#several-workers)", sid,
            )
        return session

    def _busy(self) -> str | None:
        """Why a new session cannot be opened now (answered with 503), or None."""
        manager = self.manager
        if manager.shutting_down:
            return SHUTTING_DOWN
        if manager.full:
            _log_busy(
                "refused a handshake: %d sessions have not joined a namespace yet (max_pending_sessions)",
                manager.pending,
            )
            return TOO_MANY_PENDING
        return None

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

    def _refused(self, transport: str, code: ErrorCode, message: str | None) -> None:
        observer = self.manager.observation.observer
        if observer is not None:
            observer.engine_refused(transport, int(code), message or ERROR_MESSAGES[code])

    async def _refuse(
        self, send: Send, code: ErrorCode, headers: Headers, message: str | None = None, *, status: int | None = None
    ) -> None:
        self._refused("polling", code, message)
        await respond_error(send, code, headers, message, status=status)

    async def _refuse_websocket(
        self, scope: Scope, send: Send, code: ErrorCode, message: str | None = None, *, status: int | None = None
    ) -> None:
        self._refused("websocket", code, message)
        await deny_websocket(scope, send, code, message, status=status)

    # -- HTTP long-polling --------------------------------------------------------------------
    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        ok, origin = self._origin_ok(scope)
        if not ok:
            await self._refuse(send, ErrorCode.FORBIDDEN, [], "Origin not allowed")
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
        request = parse_query(query_params(scope), websocket=False, transports=self.manager.options.transports)
        if isinstance(request, ErrorCode):
            await self._refuse(send, request, cors)
            return
        sid = request.sid
        if sid is None:
            if method != "GET":
                await self._refuse(send, ErrorCode.BAD_HANDSHAKE_METHOD, cors)
                return
            await self._handshake(scope, send, cors)
            return
        session = self._find(sid)
        if session is None:
            await self._refuse(send, ErrorCode.UNKNOWN_SID, cors)
            return
        if session.engine.state is State.UPGRADING:
            # The client may have sent its upgrade (`5`) just before this request: let the
            # WebSocket reader take what has arrived first, as Node's single loop does.
            for _ in range(UPGRADE_GRACE_TURNS):
                await asyncio.sleep(0)
        if session.transport is not Transport.POLLING:
            await self._refuse(send, ErrorCode.BAD_REQUEST, cors)
            return
        if method == "GET":
            await handle_get(session, scope, receive, send, cors)
        elif method == "POST":
            await handle_post(session, scope, receive, send, cors)
        else:
            await respond(send, 500, b"", None, cors)

    async def _handshake(self, scope: Scope, send: Send, cors: Headers) -> None:
        manager = self.manager
        busy = self._busy()
        if busy is not None:
            await self._refuse(send, ErrorCode.BAD_REQUEST, cors, busy, status=503)
            return
        refusal = await self._allowed(scope)
        if refusal is not None:
            await self._refuse(send, ErrorCode.FORBIDDEN, cors, refusal)
            return
        busy = self._busy()  # allow_request may have taken a while
        if busy is not None:
            await self._refuse(send, ErrorCode.BAD_REQUEST, cors, busy, status=503)
            return
        options = manager.options
        session = manager.create(scope, Transport.POLLING)
        upgrades = [Transport.WEBSOCKET.value] if options.allow_upgrades and Transport.WEBSOCKET in options.transports else []
        body = open_frame(session.sid, upgrades, options.ping_interval, options.ping_timeout, options.max_http_buffer_size)
        headers = list(cors)
        if options.cookie:
            headers.append((b"set-cookie", f"{options.cookie}={session.sid}; Path=/; HttpOnly; SameSite=Lax".encode()))
        try:
            await respond(send, 200, body.encode(), TEXT_PLAIN, headers)
        except BaseException:
            manager.forget(session)  # never opened: no timer would ever end it
            raise
        manager.open(session)

    # -- WebSocket -----------------------------------------------------------------------------
    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        manager = self.manager
        ok, _ = self._origin_ok(scope)
        if not ok:
            await self._refuse_websocket(scope, send, ErrorCode.FORBIDDEN, "Origin not allowed")
            return
        request = parse_query(query_params(scope), websocket=True, transports=manager.options.transports)
        if isinstance(request, ErrorCode):
            await self._refuse_websocket(scope, send, request)
            return
        sid = request.sid
        if sid is None:
            # Checked in a coroutine that has ended before serving starts (one frame less held).
            if await self._new_websocket_allowed(scope, send):
                await send({"type": "websocket.accept"})
                await serve_new(self.manager, scope, WebSocketConnection(receive, send))
            return
        session = self._find(sid)
        if session is None or session.closed or not manager.options.allow_upgrades:
            await self._refuse_websocket(scope, send, ErrorCode.UNKNOWN_SID if session is None else ErrorCode.BAD_REQUEST)
            return
        await send({"type": "websocket.accept"})
        ws = WebSocketConnection(receive, send)
        if not session.can_upgrade():
            # Upgraded, or another upgrade under way: like Node, this one is closed at once
            # and the first is left alone.
            await ws.close()
            return
        await serve_upgrade(session, ws)

    async def _new_websocket_allowed(self, scope: Scope, send: Send) -> bool:
        """May a session open directly over WebSocket? If not, the handshake is refused."""
        busy = self._busy()
        if busy is not None:
            await self._refuse_websocket(scope, send, ErrorCode.BAD_REQUEST, busy, status=503)
            return False
        refusal = await self._allowed(scope)
        if refusal is not None:
            await self._refuse_websocket(scope, send, ErrorCode.FORBIDDEN, refusal)
            return False
        busy = self._busy()
        if busy is not None:
            await self._refuse_websocket(scope, send, ErrorCode.BAD_REQUEST, busy, status=503)
            return False
        return True
