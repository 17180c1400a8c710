"""HTTP long-polling: GET receives the session's queued frames, POST delivers the client's."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from types import CoroutineType

from .._types import Receive, Scope, Send
from ..engineio.compression import compress, negotiate
from ..engineio.handshake import ErrorCode
from ..engineio.packet import Packet
from ..engineio.payload import decode_payload, encode_payload
from ..exceptions import RemoteProtocolError
from ..reasons import DisconnectReason
from ..sessions import EngineSession
from .http import TEXT_HTML, TEXT_PLAIN, Headers, header, respond, respond_error
from .inline import run_here

NO_STORE = (b"cache-control", b"no-store")


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass  # the (empty) body of the GET itself


async def _client_stayed(session: EngineSession, receive: Receive) -> bool:
    """Wait until the GET can be answered; False if the client dropped the request first.

    The GET's own task waits for the disconnect, and the session cancels it once frames are
    ready: no second task and no future per parked GET (this runs for every poll).
    """
    task = session.park_get()
    if task is None:
        return True
    try:
        await _disconnected(receive)
    except asyncio.CancelledError:
        # Released by the session, unless the task is being cancelled for good as well.
        if session.woke_get() and task.uncancel() == 0:
            # The client may have gone in the same loop turn as the frames came: then the
            # disconnect is already there to take, and nothing must go out as if delivered.
            return not _gone_already(receive)
        raise
    return False


def _gone_already(receive: Receive) -> bool:
    """Whether the server already has the disconnect for us: a receive() that completes
    without waiting (one that would wait is left, unfinished, and the client counts as there)."""
    steps = receive().__await__()
    try:
        steps.send(None)
    except StopIteration as done:
        message = done.value
        return isinstance(message, dict) and message.get("type") == "http.disconnect"
    except Exception:
        return False  # not ours to judge here: the response write will tell
    close = getattr(steps, "close", None)
    if close is not None:
        close()
    return False


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
        if not await _client_stayed(session, receive):
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
            session.end_post()
            await respond(send, 413, b"", None, headers)
            return
        packets = decode_payload(body.decode("utf-8"))
    except (RemoteProtocolError, UnicodeDecodeError) as exc:
        session.end_post()
        await _refuse_payload(session, exc, send, headers)
        return
    except BaseException:
        session.end_post()
        raise
    # Tasks that took over feeding (and answering) from a job that had to wait: the ASGI call
    # lasts until they are done, so the answer goes out before it returns.
    takers: list[asyncio.Task[None]] = []
    try:
        await _feed(session, packets, 0, send, headers, takers)
    finally:
        for taker in takers:
            await taker


async def _refuse_payload(session: EngineSession, exc: Exception, send: Send, headers: Headers) -> None:
    # Node answers 200 and fails the next GET; a 400 tells the client at once.
    session.parse_error(exc)
    await respond_error(send, ErrorCode.BAD_REQUEST, headers)


async def _feed(
    session: EngineSession, packets: list[Packet], start: int, send: Send, headers: Headers, takers: list[asyncio.Task[None]]
) -> None:
    """Feed `packets[start:]`, then end the POST and answer it.

    A job the client hands back runs in this task (no task per event, as over WebSocket); if
    it has to wait, a new task feeds the rest and answers, so the client is not held up.
    """
    handed_off = len(takers)
    index = start
    try:
        while index < len(packets) and not session.closed:
            waiter = session.feed_packet(packets[index])
            index += 1
            if waiter is None:
                continue
            if type(waiter) is CoroutineType:
                if await run_here(waiter, partial(_hand_off, session, packets, index, send, headers, takers)):
                    return
            else:
                await waiter  # backpressure: the client's handlers are behind
    except RemoteProtocolError as exc:
        await _refuse_payload(session, exc, send, headers)
        return
    finally:
        if len(takers) == handed_off:
            session.end_post()
    await respond(send, 200, b"ok", TEXT_HTML, headers)


def _hand_off(
    session: EngineSession, packets: list[Packet], start: int, send: Send, headers: Headers, takers: list[asyncio.Task[None]]
) -> None:
    takers.append(asyncio.get_running_loop().create_task(_feed(session, packets, start, send, headers, takers)))
