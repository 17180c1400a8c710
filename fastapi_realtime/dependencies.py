"""Dependencies that give FastAPI dependencies what a realtime handler has by annotation.

Handlers get the `Socket` and the `Realtime` server by plain annotation. A dependency is
analysed by FastAPI, which knows neither, so it asks with these `Annotated` aliases:

    async def current_user(socket: CurrentSocket, auth: Auth) -> User: ...

The handshake's headers, cookies and query need nothing special: `Header()`, `Cookie()`,
`Query()` and `Request` work as in HTTP routes.
"""

from __future__ import annotations

from typing import Annotated, Any, cast

from fastapi import Depends
from starlette.requests import Request

from .handlers import SOCKET_SCOPE_KEY
from .server import Realtime
from .socket import Socket


def get_socket(request: Request) -> Socket:
    """The socket whose event is being handled."""
    socket: Socket = request.scope[SOCKET_SCOPE_KEY]
    return socket


def get_realtime(request: Request) -> Realtime:
    # A socket sees its server through a Protocol (socket.SocketServer); it is this Realtime.
    return cast(Realtime, get_socket(request).server)


def get_auth(request: Request) -> dict[str, Any]:
    """The auth payload the client sent with its CONNECT."""
    return get_socket(request).handshake.auth


CurrentSocket = Annotated[Socket, Depends(get_socket)]
CurrentRealtime = Annotated[Realtime, Depends(get_realtime)]
Auth = Annotated[dict[str, Any], Depends(get_auth)]
