"""The WebSocket transport: one Engine.IO packet per frame, and the upgrade from polling (§1.6)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

from .._types import EioFrame, Message, Receive, Scope, Send
from ..engineio.handshake import open_frame
from ..engineio.packet import PONG_PROBE_FRAME
from ..exceptions import RemoteProtocolError
from ..sessions import EngineSession, SessionManager

logger = logging.getLogger("fastapi_realtime.engine")


def _frame_of(message: Message) -> EioFrame | None:
    text: str | None = message.get("text")
    if text is not None:
        return text
    data: bytes | None = message.get("bytes")
    return data


class WebSocketConnection:
    """The ASGI side of one accepted WebSocket."""

    __slots__ = ("receive", "_send", "closed")

    def __init__(self, receive: Receive, send: Send) -> None:
        self.receive = receive
        self._send = send
        self.closed = False

    async def send(self, frame: EioFrame) -> None:
        if type(frame) is str:
            await self._send({"type": "websocket.send", "text": frame})
        else:
            await self._send({"type": "websocket.send", "bytes": frame})

    async def close(self, code: int = 1000) -> None:
        if not self.closed:
            self.closed = True
            await self._send({"type": "websocket.close", "code": code})


async def serve_new(manager: SessionManager, scope: Scope, ws: WebSocketConnection) -> None:
    """A client that opens its session directly over WebSocket."""
    options = manager.options
    session = manager.create(scope, "websocket")
    try:
        await ws.send(open_frame(session.sid, [], options.ping_interval, options.ping_timeout, options.max_http_buffer_size))
    except BaseException:
        manager.forget(session)  # never opened: no timer would ever end it
        raise
    session.attach_websocket(ws.send, ws.close)
    manager.open(session)
    await _read_loop(session, ws)


async def serve_upgrade(session: EngineSession, ws: WebSocketConnection) -> None:
    """Probe, release the pending GET, switch on `5`; anything else aborts and polling goes on."""
    options = session.manager.options
    loop = asyncio.get_running_loop()
    deadline = loop.time() + options.upgrade_timeout
    probed = False
    session.probing = True
    try:
        while True:
            try:
                message = await asyncio.wait_for(ws.receive(), max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                break
            if message["type"] != "websocket.receive" or session.closed:
                break
            frame = _frame_of(message)
            if not probed and frame == "2probe":
                probed = True
                # From the probe on, polling only releases the client (noop) until `5`.
                session.upgrading = True
                await ws.send(PONG_PROBE_FRAME)
                # Release the pending GET so the client can pause polling.
                session.release_poll()
            elif probed and frame == "5":
                session.attach_websocket(ws.send, ws.close)
                await _read_loop(session, ws)
                return
            else:
                break
    finally:
        session.probing = False
        if session.transport != "websocket":
            session.upgrading = False
    await ws.close()


async def _read_loop(session: EngineSession, ws: WebSocketConnection) -> None:
    limit = session.manager.options.max_http_buffer_size
    receive = ws.receive
    on_message = session.manager.handler.on_message
    try:
        while not session.closed:
            message = await receive()
            if message["type"] != "websocket.receive":
                session.close("transport close", notify_client=False)
                return
            text = message.get("text")
            waiter: Awaitable[None] | None
            if text is not None:
                # The limit is in bytes; only a long text can be over it in UTF-8 and not in characters.
                if len(text) > limit or (len(text) * 4 > limit and len(text.encode()) > limit):
                    session.close("transport error")
                    await ws.close(1009)
                    return
                if text[:1] == "4":
                    waiter = on_message(session, text[1:])
                elif len(text) == 1 and "1" <= text <= "3":
                    waiter = session.receive(ord(text) - 48, "")
                else:
                    session.parse_error(RemoteProtocolError(f"invalid Engine.IO packet {text[:16]!r}"))
                    return
            else:
                data = message.get("bytes") or b""
                if len(data) > limit:
                    session.close("transport error")
                    await ws.close(1009)
                    return
                waiter = on_message(session, data)
            if waiter is not None:
                await waiter
    except Exception:
        # A fault of ours, not the client's: logged, and only this client is cut off.
        logger.exception("error while reading from session %s", session.sid)
        if not session.closed:
            session.close("transport error")
    finally:
        if not session.closed:
            session.close("transport close", notify_client=False)
