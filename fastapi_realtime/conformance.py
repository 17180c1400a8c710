"""The conformance server the reference protocol test suites expect.

Raw Engine.IO at /engine.io/ echoes every message to its sender; Socket.IO at /socket.io/ sends
`auth` on connect to "/" and "/custom", answers `message` with `message-back`, and acks
`message-with-ack` with the same arguments.

    python -m fastapi_realtime.conformance --port 3000
"""

from __future__ import annotations

import argparse
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Route, WebSocketRoute

from .asgi import EngineApp
from .engineio.packet import message_frame
from .options import EngineOptions
from .router import RealtimeRouter
from .server import HTTP_METHODS, Realtime
from .sessions import EngineSession, SessionManager
from .socket import Socket

SETTINGS: dict[str, Any] = {
    "ping_interval": 0.3,
    "ping_timeout": 0.2,
    "max_http_buffer_size": 1_000_000,
    "cors_allowed_origins": "*",
}


class EchoHandler:
    """A raw Engine.IO handler that sends every message back."""

    def on_open(self, session: EngineSession) -> None:
        session.manager.admit(session)  # raw Engine.IO: no namespace to wait for

    def on_message(self, session: EngineSession, data: str | bytes) -> None:
        session.send_frame(message_frame(data))

    def on_close(self, session: EngineSession, reason: str) -> None:
        pass


def socketio_router(namespace: str) -> RealtimeRouter:
    router = RealtimeRouter(namespace)

    @router.on("connect")
    async def connect(socket: Socket, auth: Any) -> None:
        await socket.emit("auth", auth)

    @router.on("message")
    async def message(socket: Socket, *args: Any) -> None:
        await socket.emit("message-back", *args)

    @router.on("message-with-ack")
    async def message_with_ack(socket: Socket, *args: Any) -> tuple[Any, ...]:
        return args

    return router


def create_app() -> Starlette:
    realtime = Realtime(connect_timeout=1.0, **SETTINGS)
    realtime.include_router(socketio_router("/"))
    realtime.include_router(socketio_router("/custom"))
    engine = EngineApp(SessionManager(EngineOptions(**SETTINGS), EchoHandler()))
    routes = [
        Route("/engine.io/", engine, methods=list(HTTP_METHODS)),
        WebSocketRoute("/engine.io/", engine),
    ]
    return Starlette(routes=[*routes, *realtime.router.routes], lifespan=realtime.lifespan)


app = create_app()


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--ws", default="websockets-sansio",
                        help="uvicorn's WebSocket protocol, e.g. "
                             "fastapi_realtime.uvicorn_ws:CoalescingWebSocketProtocol")
    args = parser.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, ws=args.ws, log_level="warning")


if __name__ == "__main__":
    main()
