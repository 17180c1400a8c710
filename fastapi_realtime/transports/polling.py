"""HTTP long-polling: GET receives the session's queued frames, POST delivers the client's."""

from __future__ import annotations

import asyncio

from .._types import EioFrame, Receive, Scope, Send
from ..engineio.handshake import ErrorCode
from ..engineio.packet import NOOP_FRAME
from ..engineio.payload import decode_payload, encode_payload
from ..exceptions import RemoteProtocolError
from ..sessions import EngineSession
from .http import TEXT_HTML, TEXT_PLAIN, Headers, header, respond, respond_error

NO_STORE = (b"cache-control", b"no-store")


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass  # the (empty) body of the GET itself


async def _client_stayed(waiter: asyncio.Future[None], receive: Receive) -> bool:
    """Wait for `waiter`; False if the client dropped the request first."""
    gone = asyncio.ensure_future(_disconnected(receive))
    await asyncio.wait((waiter, gone), return_when=asyncio.FIRST_COMPLETED)
    if waiter.done():
        gone.cancel()
        return True
    waiter.cancel()
    return False


async def handle_get(session: EngineSession, receive: Receive, send: Send, headers: Headers) -> None:
    if not session.begin_get():
        # Overlapping GETs break the protocol: the session ends and the first GET gets the close.
        session.close("transport error")
        await respond(send, 400, b"", None, headers)
        return
    frames: list[EioFrame]
    try:
        if session.upgrading and not session.has_frames():
            frames = [NOOP_FRAME]
        else:
            waiter = session.frames_ready()
            if waiter is not None and not await _client_stayed(waiter, receive):
                # Node: "poll connection closed prematurely", a transport error.
                session.close("transport error", notify_client=False)
                return
            frames = session.take_frames(_fitting(session.queued(), session.manager.options.max_http_buffer_size))
            frames = frames or [NOOP_FRAME]
    finally:
        session.end_get()
    await respond(send, 200, encode_payload(frames).encode(), TEXT_PLAIN, [*headers, NO_STORE])
    if session.closed and not session.has_frames():
        session.finish_close()


def _record_size(frame: EioFrame) -> int:
    """Bytes of one frame as a polling record (binary is `b` + base64)."""
    if isinstance(frame, bytes):
        return 1 + (len(frame) + 2) // 3 * 4
    return len(frame) if frame.isascii() else len(frame.encode())


def _fitting(frames: list[EioFrame], limit: int) -> int:
    """How many leading frames fit one response of at most `limit` bytes (always at least one,
    so a packet larger than the limit still goes out, alone); the rest wait for the next GET."""
    size = -1  # n records need n - 1 separators
    for count, frame in enumerate(frames):
        size += 1 + _record_size(frame)
        if size > limit and count:
            return count
    return len(frames)


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The request body, or None when it grows past `limit`."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def handle_post(session: EngineSession, scope: Scope, receive: Receive, send: Send, headers: Headers) -> None:
    limit = session.manager.options.max_http_buffer_size
    length = header(scope, b"content-length")
    # isascii: str.isdigit also takes digits int() refuses ("²"); the length check keeps int()
    # clear of Python's limit on digits.
    if length is not None and length.isascii() and length.isdigit() and (len(length) > 18 or int(length) > limit):
        await respond(send, 413, b"", None, headers)
        return
    content_type = header(scope, b"content-type") or ""
    if content_type.startswith("application/octet-stream"):
        # EIO v4 polling bodies are always text (§1.4).
        session.close("transport error")
        await respond(send, 400, b"", None, headers)
        return
    if not session.begin_post():
        session.close("transport error")
        await respond(send, 400, b"", None, headers)
        return
    try:
        body = await _read_body(receive, limit)
        if body is None:
            # A streamed body past the limit: answer at once, unread, and end the session (the
            # client may be mid-payload, so nothing more of it can be trusted).
            session.close("transport error")
            await respond(send, 413, b"", None, headers)
            return
        try:
            packets = decode_payload(body.decode("utf-8"))
            for packet in packets:
                if session.closed:
                    break
                waiter = session.receive(packet.type, packet.data)
                if waiter is not None:
                    await waiter
        except (RemoteProtocolError, UnicodeDecodeError) as exc:
            # Node answers 200 and fails the next GET; a 400 tells the client at once.
            session.parse_error(exc)
            await respond_error(send, ErrorCode.BAD_REQUEST, headers)
            return
    finally:
        session.end_post()
    await respond(send, 200, b"ok", TEXT_HTML, headers)
