"""Engine.IO sessions: one per client, shared by both transports, and the manager that owns them.

A session keeps the outgoing queue, the heartbeat timers and the upgrade state; the transports
in `transports/` only move its frames over HTTP or a WebSocket. Nothing here knows Socket.IO:
the layer above plugs in as an `EngineHandler`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, Protocol

from ._logging import RateLimitedLog
from ._types import EioFrame, Scope
from .engineio.handshake import generate_sid
from .engineio.packet import CLOSE_FRAME, NOOP_FRAME, PING_FRAME
from .exceptions import RemoteProtocolError
from .options import EngineOptions

logger = logging.getLogger("fastapi_realtime.engine")
# Clients can cause these as often as they like: one line a minute at most.
_log_parse_error = RateLimitedLog(logger, logging.INFO)
_log_overflow = RateLimitedLog(logger, logging.WARNING)

# How many ended session ids are remembered, so late requests for them are not taken for
# requests routed to the wrong process.
RECENTLY_ENDED = 1024

WsSend = Callable[[EioFrame], Coroutine[Any, Any, None]]


class EngineHandler(Protocol):
    """What the layer above the engine provides."""

    def on_open(self, session: EngineSession) -> None: ...

    def on_message(self, session: EngineSession, data: str | bytes) -> Awaitable[None] | None:
        """Take one message; return something to await when the reader should pause (backpressure)."""

    def on_close(self, session: EngineSession, reason: str) -> None: ...


class EngineSession:
    """One Engine.IO connection, whatever transport carries it right now."""

    __slots__ = (
        "sid", "scope", "manager", "transport", "probing", "upgrading", "closed", "admitted", "context",
        "_queue", "_slack", "_poll_waiter", "_ws_send", "_writer", "_ping_timer", "_timeout_timer",
        "_close_ws", "_close_timer", "_close_after_drain", "_getting", "_posting",
    )

    def __init__(self, manager: SessionManager, scope: Scope, transport: str) -> None:
        self.sid = generate_sid()
        self.scope = scope
        self.manager = manager
        self.transport = transport
        # probing: an upgrade WebSocket is open; upgrading: it has answered the probe.
        self.probing = False
        self.upgrading = False
        self.closed = False
        # Set once the layer above accepts the client (Socket.IO: its first namespace joined);
        # until then the session counts against `max_pending_sessions`.
        self.admitted = False
        # Slot for the layer above (the Socket.IO client object).
        self.context: Any = None
        # A list, not a deque: an idle connection's empty deque would cost 760 bytes.
        self._queue: list[EioFrame] = []
        # Frames of a deliberate burst still queued: they do not count against max_queue.
        self._slack = 0
        self._poll_waiter: asyncio.Future[None] | None = None
        self._ws_send: WsSend | None = None
        self._writer: asyncio.Task[None] | None = None
        self._ping_timer: asyncio.TimerHandle | None = None
        self._timeout_timer: asyncio.TimerHandle | None = None
        self._close_ws: Callable[[], Awaitable[None]] | None = None
        self._close_timer: asyncio.TimerHandle | None = None
        self._close_after_drain = False
        self._getting = False
        self._posting = False

    # -- outgoing ---------------------------------------------------------------------------
    @property
    def writable(self) -> bool:
        """True when a frame sent now goes out at once (volatile packets are dropped otherwise)."""
        if self.closed:
            return False
        if self.transport == "websocket":
            return not self._queue
        return self._poll_waiter is not None and not self._poll_waiter.done()

    def send(self, frames: Iterable[EioFrame], *, bounded: bool = True) -> None:
        """Queue frames; never waits. A client whose queue overflows is closed as too slow.

        `bounded=False` is for one deliberate burst (the events a recovered client missed):
        until the queue has drained, the limit applies on top of it.
        """
        if self.closed:
            return
        queue = self._queue
        if not queue:
            self._slack = 0  # the last burst has gone out
        queue.extend(frames)
        if not bounded:
            self._slack = len(queue)
        elif len(queue) > self.manager.options.max_queue + self._slack:
            queue.clear()
            _log_overflow(
                "closing session %s: its outgoing queue passed max_queue=%d (the client reads too slowly)",
                self.sid, self.manager.options.max_queue,
            )
            self.close("transport error")
            return
        self._wake()

    def send_frame(self, frame: EioFrame) -> None:
        self.send((frame,))

    def _wake(self) -> None:
        if self.transport == "websocket" and not self.upgrading:
            if self._writer is None and self._ws_send is not None:
                self._write_now()
        else:
            waiter = self._poll_waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    def _write_now(self) -> None:
        """Write queued frames without a task while the transport takes them at once.

        An ASGI send normally completes without suspending (the server just writes to its
        transport); only when one suspends (the peer is not reading) does a writer task take
        over that send and the rest of the queue. So the common case costs no task at all.
        """
        queue = self._queue
        send = self._ws_send
        assert send is not None
        while queue:
            pending = send(queue.pop(0))
            try:
                blocked_on = pending.send(None)
            except StopIteration:
                continue
            except Exception:  # the peer went away; the reader will see the close
                queue.clear()
                return
            self._writer = asyncio.get_running_loop().create_task(self._finish_write(pending, blocked_on))
            return

    async def _finish_write(self, pending: Coroutine[Any, Any, None], blocked_on: Any) -> None:
        try:
            while True:
                # Wait for what the send is blocked on, then let it go on (it reads the outcome itself).
                if blocked_on is None:
                    await asyncio.sleep(0)
                else:
                    # Take the future over as its task would have: clear the flag the
                    # coroutine's own `yield` set, or awaiting it here is refused.
                    blocked_on._asyncio_future_blocking = False
                    try:
                        await blocked_on
                    except BaseException:
                        pass
                try:
                    blocked_on = pending.send(None)
                except StopIteration:
                    break
            queue = self._queue
            send = self._ws_send
            assert send is not None
            while queue:
                await send(queue.pop(0))
        except asyncio.CancelledError:
            pending.close()
            raise
        except Exception:  # the peer went away mid-write; the reader sees the close
            self._queue.clear()
        finally:
            self._writer = None

    def take_frames(self, count: int | None = None) -> list[EioFrame]:
        """The first `count` queued frames (all by default), for one polling response."""
        queue = self._queue
        if count is None or count >= len(queue):
            frames = list(queue)
            queue.clear()
        else:
            frames = queue[:count]
            del queue[:count]
        self._slack = max(0, self._slack - len(frames))
        if self._close_after_drain and not queue:
            self._close_after_drain = False
            queue.append(CLOSE_FRAME)
        return frames

    def queued(self) -> list[EioFrame]:
        """The outgoing queue, to read (a polling response sizes its payload from it)."""
        return self._queue

    def has_frames(self) -> bool:
        return bool(self._queue)

    # -- polling --------------------------------------------------------------------------
    def begin_get(self) -> bool:
        """Claim the one GET slot; False if a GET is already in flight."""
        if self._getting:
            return False
        self._getting = True
        return True

    def end_get(self) -> None:
        self._getting = False
        self._poll_waiter = None

    def begin_post(self) -> bool:
        if self._posting:
            return False
        self._posting = True
        return True

    def end_post(self) -> None:
        self._posting = False

    def frames_ready(self) -> asyncio.Future[None] | None:
        """None if a GET can answer now, else a future that resolves when it can."""
        if self._queue or self.closed:
            return None
        waiter = asyncio.get_running_loop().create_future()
        self._poll_waiter = waiter
        return waiter

    def release_poll(self) -> None:
        """Answer a pending GET now (with a noop if nothing is queued): used by upgrades."""
        waiter = self._poll_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- websocket ------------------------------------------------------------------------
    def attach_websocket(self, send: WsSend, close: Callable[[], Awaitable[None]]) -> None:
        self.transport = "websocket"
        self.upgrading = False
        self._ws_send = send
        self._close_ws = close
        self.release_poll()
        self._wake()

    # -- incoming --------------------------------------------------------------------------
    def receive(self, packet_type: int, data: str | bytes) -> Awaitable[None] | None:
        """Handle one packet from the client (already split off its transport framing).

        Returns something to await before reading more when the layer above is backed up.
        """
        if packet_type == 4:
            return self.manager.handler.on_message(self, data)
        if packet_type == 3:
            self._on_pong()
        elif packet_type == 1:
            self.close("transport close", notify_client=False)
        elif packet_type == 2:
            # In v4 only the server pings (the upgrade probe is handled by the transport).
            self.close("transport error")
        else:
            raise RemoteProtocolError(f"unexpected packet type {packet_type}")
        return None

    def parse_error(self, exc: Exception) -> None:
        """The client sent something that does not decode: log it (rate-limited) and close."""
        _log_parse_error("closing session %s: parse error: %s", self.sid, exc)
        self.close("parse error")

    # -- heartbeat ------------------------------------------------------------------------
    def start_heartbeat(self) -> None:
        loop = asyncio.get_running_loop()
        self._ping_timer = loop.call_later(self.manager.options.ping_interval, self._ping)

    def _ping(self) -> None:
        if self.closed:
            return
        self._ping_timer = None
        # The timeout starts when the ping is queued, not when it is delivered (§1.5).
        self._timeout_timer = asyncio.get_running_loop().call_later(
            self.manager.options.ping_timeout, self.close, "ping timeout"
        )
        self.send_frame(PING_FRAME)

    def _on_pong(self) -> None:
        if self._timeout_timer is None:
            # A pong nobody asked for breaks the heartbeat rules, like a client ping (§1.2).
            self.close("transport error")
            return
        self._timeout_timer.cancel()
        self._timeout_timer = None
        # The interval is re-armed from the moment the pong arrived, as Node does.
        self._ping_timer = asyncio.get_running_loop().call_later(self.manager.options.ping_interval, self._ping)

    def _stop_timers(self) -> None:
        for timer in (self._ping_timer, self._timeout_timer):
            if timer is not None:
                timer.cancel()
        self._ping_timer = self._timeout_timer = None

    # -- close ----------------------------------------------------------------------------
    def close(self, reason: str = "forced close", *, notify_client: bool = True) -> None:
        """End the session. Idempotent; the handler hears `reason` once."""
        if self.closed:
            return
        self.closed = True
        self._stop_timers()
        manager = self.manager
        try:
            manager.handler.on_close(self, reason)
        except Exception:
            logger.exception("error in close handler of %s", self.sid)
        if self.transport == "websocket" and not self.upgrading:
            manager.forget(self)
            if self._close_ws is not None:
                loop = asyncio.get_running_loop()
                loop.create_task(self._close_websocket())
            return
        waiter = self._poll_waiter
        waiting = waiter is not None and not waiter.done()
        if reason == "forced close" and self._queue:
            # A close the server chose: like Node, a GET first drains what is queued (a
            # DISCONNECT packet, say) and the close packet goes in the GET after it, so the
            # client handles the packets before it sees the transport close.
            self._close_after_drain = True
            self._close_timer = asyncio.get_running_loop().call_later(
                manager.options.close_timeout, manager.forget, self
            )
            if waiting:
                assert waiter is not None
                waiter.set_result(None)
            return
        # Otherwise the session is gone at once (the next request gets 400 "Session ID
        # unknown"); a GET that is waiting right now is told with a close (or a noop when
        # the client itself closed).
        if waiting:
            assert waiter is not None
            if notify_client:
                self._queue.append(CLOSE_FRAME)
            else:
                self._queue.clear()
                self._queue.append(NOOP_FRAME)
            waiter.set_result(None)
        manager.forget(self)

    async def _close_websocket(self) -> None:
        # Let queued frames (such as a DISCONNECT packet) go out before the close frame.
        writer = self._writer
        if writer is not None:
            try:
                await asyncio.wait_for(asyncio.shield(writer), self.manager.options.close_timeout)
            except (asyncio.TimeoutError, Exception):
                pass
        elif self._queue and self._ws_send is not None:
            try:
                while self._queue:
                    await self._ws_send(self._queue.pop(0))
            except Exception:
                pass
        assert self._close_ws is not None
        try:
            # A peer that stopped reading may never take the close frame either; the ASGI
            # server's own WebSocket keepalive then ends the connection.
            await asyncio.wait_for(self._close_ws(), self.manager.options.close_timeout)
        except (asyncio.TimeoutError, Exception):
            pass

    def finish_close(self) -> None:
        """A GET delivered the close packet: the session is gone for good."""
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        self.manager.forget(self)


class SessionManager:
    """sid -> session, with the engine options and the handler above."""

    def __init__(self, options: EngineOptions, handler: EngineHandler) -> None:
        self.options = options
        self.handler = handler
        self.sessions: dict[str, EngineSession] = {}
        # Sessions not yet admitted by the layer above (see `admit`).
        self.pending = 0
        # The ids of the last sessions that ended, oldest first (a dict as an ordered set).
        self.recently_ended: dict[str, None] = {}
        # Set by shutdown and kept until the next start: no handshake slips in meanwhile.
        self.shutting_down = False

    def create(self, scope: Scope, transport: str) -> EngineSession:
        session = EngineSession(self, scope, transport)
        while session.sid in self.sessions:  # vanishingly rare; ids are random
            session.sid = generate_sid()
        self.sessions[session.sid] = session
        self.pending += 1
        return session

    def get(self, sid: str) -> EngineSession | None:
        return self.sessions.get(sid)

    def forget(self, session: EngineSession) -> None:
        if self.sessions.get(session.sid) is session:
            del self.sessions[session.sid]
            if not session.admitted:
                self.pending -= 1
            ended = self.recently_ended
            ended[session.sid] = None
            if len(ended) > RECENTLY_ENDED:
                del ended[next(iter(ended))]

    def ended_recently(self, sid: str) -> bool:
        """Was `sid` one of ours that just ended? (A request for it is no sign of misrouting.)"""
        return sid in self.recently_ended

    def admit(self, session: EngineSession) -> None:
        """The layer above accepted the client: it no longer counts as pending."""
        if not session.admitted:
            session.admitted = True
            if self.sessions.get(session.sid) is session:
                self.pending -= 1

    @property
    def full(self) -> bool:
        """Too many sessions wait for the layer above to accept them: refuse new handshakes."""
        return self.pending >= self.options.max_pending_sessions

    def open(self, session: EngineSession) -> None:
        """The handshake went out: start the heartbeat and tell the layer above."""
        session.start_heartbeat()
        self.handler.on_open(session)

    async def shutdown(self) -> None:
        """Close every session with reason `server shutting down`; pending GETs are answered at once."""
        self.shutting_down = True
        for session in list(self.sessions.values()):
            session.close("server shutting down")
        # Give writers and GETs a moment to deliver the last frames.
        await asyncio.sleep(0)
        for session in list(self.sessions.values()):
            session.release_poll()
            self.forget(session)
