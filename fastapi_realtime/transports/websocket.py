"""The WebSocket transport: one Engine.IO packet per frame, and the upgrade from polling (§1.6)."""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from types import CoroutineType

from .._types import EioFrame, Message, Receive, Scope, Send
from ..engineio.handshake import Transport, open_frame
from ..engineio.packet import decode_packet
from ..engineio.session import SendProbe, Upgraded
from ..exceptions import RemoteProtocolError
from ..reasons import DisconnectReason
from ..sessions import EngineSession, SessionManager
from .inline import run_here

logger = logging.getLogger("fastapi_realtime.engine")


def _frame_of(message: Message) -> EioFrame | None:
    text: str | None = message.get("text")
    if text is not None:
        return text
    data: bytes | None = message.get("bytes")
    return data


class WebSocketConnection:
    """The ASGI side of one accepted WebSocket."""

    __slots__ = ("receive", "_send", "closed", "reader", "reading_done")

    def __init__(self, receive: Receive, send: Send) -> None:
        self.receive = receive
        self._send = send
        self.closed = False
        # Set once reading moved out of the ASGI call's task (see _hand_off).
        self.reader: asyncio.Task[bool] | None = None
        self.reading_done: asyncio.Future[None] | None = None

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
    session = manager.create(scope, Transport.WEBSOCKET)
    try:
        await ws.send(open_frame(session.sid, [], options.ping_interval, options.ping_timeout, options.max_http_buffer_size))
    except BaseException:
        manager.forget(session)  # never opened: no timer would ever end it
        raise
    session.attach_websocket(ws.send, ws.close)
    manager.open(session)
    await _finish(session, ws, await _read(session, ws))


async def _receive_unless(ws: WebSocketConnection, aborted: asyncio.Future[None]) -> Message | None:
    """The next message, or None once `aborted` resolves first."""
    receiving = asyncio.ensure_future(ws.receive())
    try:
        await asyncio.wait((receiving, aborted), return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not receiving.done():
            receiving.cancel()  # the upgrade is off (or this reader is cancelled)
    return receiving.result() if receiving.done() and not receiving.cancelled() else None


async def serve_upgrade(session: EngineSession, ws: WebSocketConnection) -> None:
    """Probe, release the pending GET, switch on `5`; anything else aborts and polling goes on."""
    aborted = session.begin_upgrade(ws.send, ws.close)
    try:
        while not aborted.done():
            message = await _receive_unless(ws, aborted)
            if message is None or message["type"] != "websocket.receive":
                break
            frame = _frame_of(message)
            try:
                events = session.feed_probe(decode_packet(frame if frame is not None else ""))
            except RemoteProtocolError:
                break
            for event in events:
                if isinstance(event, SendProbe):
                    await ws.send(event.frame)
                elif isinstance(event, Upgraded):
                    await _finish(session, ws, await _read(session, ws))
                    return
    finally:
        session.end_upgrade()
    await ws.close()


async def _finish(session: EngineSession, ws: WebSocketConnection, handed_off: bool) -> None:
    """After the ASGI call's task stopped reading: if reading went on in another task (a job
    here had to wait), wait for it to end; then the close frame goes out before the ASGI call
    returns. (Not a layer around `_read`: an idle connection holds one coroutine frame less.)"""
    if handed_off:
        done = ws.reading_done
        assert done is not None
        await done
    await session.websocket_closed()


async def _read(session: EngineSession, ws: WebSocketConnection) -> bool:
    """Read until the connection ends (False), or until a job run here had to wait and reading
    moved to another task (True)."""
    receive = ws.receive
    feed = session.feed
    hand_off = partial(_hand_off, session, ws)
    handed_off = False
    try:
        while not session.closed:
            message = await receive()
            if message["type"] != "websocket.receive":
                session.close(DisconnectReason.TRANSPORT_CLOSE, notify_client=False)
                break
            frame = message.get("text")
            if frame is None:
                frame = message.get("bytes") or b""
            # Not held while the connection idles: the message, its text and the finished job
            # would otherwise stay alive until the next message (memory per idle connection).
            del message
            try:
                waiter = feed(frame)
            except RemoteProtocolError as exc:
                session.parse_error(exc)
                break
            del frame
            if waiter is not None:
                if type(waiter) is CoroutineType:
                    blocked = await run_here(waiter, hand_off)
                    del waiter
                    if blocked:
                        handed_off = True
                        return True
                else:
                    await waiter  # backpressure: read on once the layer above caught up
                    del waiter
    except Exception:
        # A fault of ours, not the client's: logged, and only this client is cut off.
        logger.exception("error while reading from session %s", session.sid)
        if not session.closed:
            session.close(DisconnectReason.TRANSPORT_ERROR)
    finally:
        if not session.closed and not handed_off:
            session.close(DisconnectReason.TRANSPORT_CLOSE, notify_client=False)
    done = ws.reading_done
    if done is not None and not done.done():
        done.set_result(None)
    return False


def _hand_off(session: EngineSession, ws: WebSocketConnection) -> None:
    """A job run by the reader must wait: a new task reads on (acks for that job among what it reads)."""
    loop = asyncio.get_running_loop()
    if ws.reading_done is None:
        ws.reading_done = loop.create_future()
    # Held on the connection: the loop keeps only weak references to tasks.
    ws.reader = loop.create_task(_read(session, ws))
