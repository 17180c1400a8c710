"""HTTP long-polling: GET receives the session's queued frames, POST delivers the client's."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial

from .._types import Receive, Scope, Send
from ..engineio.compression import compress, negotiate
from ..engineio.handshake import ErrorCode
from ..engineio.payload import decode_payload, encode_payload
from ..exceptions import RemoteProtocolError
from ..reasons import DisconnectReason
from ..sessions import EngineSession
from .http import TEXT_HTML, TEXT_PLAIN, Headers, header, respond, respond_error

NO_STORE = (b"cache-control", b"no-store")


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass  # the (empty) body of the GET itself


def _wake(waiter: asyncio.Future[None], _gone: object) -> None:
    if not waiter.done():
        waiter.set_result(None)


async def _client_stayed(waiter: asyncio.Future[None], receive: Receive) -> bool:
    """Wait for `waiter`; False if the client dropped the request first."""
    # One watcher task whose end wakes the waiter: cheaper than asyncio.wait, which this runs
    # for every parked GET.
    gone = asyncio.ensure_future(_disconnected(receive))
    gone.add_done_callback(partial(_wake, waiter))
    try:
        await waiter
    finally:
        if not gone.done():
            gone.cancel()
    return not gone.done() or gone.cancelled()


# Bodies past this are compressed off the event loop (a megabyte takes milliseconds).
COMPRESS_IN_THREAD = 64 * 1024


async def _compressed(scope: Scope, body: bytes, headers: Headers, threshold: int | None) -> bytes:
    """`body` compressed for the client when it is large enough and the client accepts it
    (Node's httpCompression); the Content-Encoding header is added to `headers`."""
    if threshold is None or len(body) < threshold:
        return body
    coding = negotiate(header(scope, b"accept-encoding"))
    if coding is None:
        return body
    headers.append((b"content-encoding", coding.encode()))
    if len(body) > COMPRESS_IN_THREAD:
        return await asyncio.to_thread(compress, body, coding)
    return compress(body, coding)


async def handle_get(session: EngineSession, scope: Scope, receive: Receive, send: Send, headers: Headers) -> None:
    if not session.begin_get():
        # Overlapping GETs break the protocol: the session ends and the first GET gets the close.
        await respond(send, 400, b"", None, headers)
        return
    try:
        waiter = session.frames_ready()
        if waiter is not None and not await _client_stayed(waiter, receive):
            # Node: "poll connection closed prematurely", a transport error.
            session.get_dropped()
            return
        frames = session.take_frames()
    finally:
        session.end_get()
    out = [*headers, NO_STORE]
    body = await _compressed(scope, encode_payload(frames).encode(), out, session.manager.options.compression_threshold)
    await respond(send, 200, body, TEXT_PLAIN, out)
    session.get_delivered()


async def _read_body(receive: Receive, fits: Callable[[int], bool]) -> bytes | None:
    """The request body, or None when it grows past the limit."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if not fits(size):
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def handle_post(session: EngineSession, scope: Scope, receive: Receive, send: Send, headers: Headers) -> None:
    length = header(scope, b"content-length")
    # isascii: str.isdigit also takes digits int() refuses ("²"); the length check keeps int()
    # clear of Python's limit on digits.
    if length is not None and length.isascii() and length.isdigit() and (len(length) > 18 or not session.fits(int(length))):
        await respond(send, 413, b"", None, headers)
        return
    # EIO v4 polling bodies are always text (§1.4): a binary one breaks the rules, like a second POST.
    binary = (header(scope, b"content-type") or "").startswith("application/octet-stream")
    if not session.begin_post(binary=binary):
        await respond(send, 400, b"", None, headers)
        return
    try:
        body = await _read_body(receive, session.fits)
        if body is None:
            # A streamed body past the limit: answer at once, unread, and end the session (the
            # client may be mid-payload, so nothing more of it can be trusted).
            session.close(DisconnectReason.TRANSPORT_ERROR)
            await respond(send, 413, b"", None, headers)
            return
        try:
            for packet in decode_payload(body.decode("utf-8")):
                if session.closed:
                    break
                waiter = session.feed_packet(packet)
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
