"""The asyncio driver of the Engine.IO sessions, and the manager that owns them (sid -> session).

The protocol rules (heartbeat, upgrade, polling, close) live in the pure state machine
`engineio.session.Session`; a driver session feeds it what the transports receive and the
loop's time, and carries out its events with one timer, one writer and the parked GET. The
transports in `transports/` only move frames over HTTP or a WebSocket, and both feed the same
methods. Nothing here knows Socket.IO: the layer above plugs in as an `EngineHandler`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from functools import partial
from typing import Any, Protocol

from ._logging import RateLimitedLog
from ._types import EioFrame, Scope
from .engineio.handshake import Transport, generate_sid
from .engineio.packet import Packet
from .engineio.session import (
    WAKE,
    Closed,
    CloseWebSocket,
    Ended,
    Events,
    Message,
    Session,
    SessionConfig,
    State,
    UpgradeAborted,
    Upgraded,
    Wake,
)
from .observe import Observation
from .options import EngineOptions
from .reasons import DisconnectReason

logger = logging.getLogger("fastapi_realtime.engine")
# Clients can cause these as often as they like: one line a minute at most.
_log_parse_error = RateLimitedLog(logger, logging.INFO)
_log_overflow = RateLimitedLog(logger, logging.WARNING)

# How many ended session ids are remembered, so late requests for them are not taken for
# requests routed to the wrong process.
RECENTLY_ENDED = 1024

WsSend = Callable[[EioFrame], Coroutine[Any, Any, None]]
WsClose = Callable[[int], Awaitable[None]]
_WEBSOCKET = Transport.WEBSOCKET
# Marks a parked GET as released (see EngineSession.park_get).
WOKEN = object()


def _resolve(future: asyncio.Future[None], _done: object) -> None:
    if not future.done():
        future.set_result(None)


class EngineHandler(Protocol):
    """What the layer above the engine provides."""

    def on_open(self, session: EngineSession) -> None: ...

    def on_message(self, session: EngineSession, data: str | bytes) -> Awaitable[None] | None:
        """Take one message; return something to await when the reader should pause (backpressure),
        or a coroutine (the job for this message) for the feeding task to run (see `feed` and
        `feed_packet`: every caller runs it, through transports.inline.run_here)."""

    def on_close(self, session: EngineSession, reason: DisconnectReason) -> None: ...


class EngineSession:
    """The asyncio side of one Engine.IO session: its timer, its writer and its parked GET.

    The protocol rules live in the pure `engineio.session.Session` (`self.engine`); this
    class feeds it what the transports receive and the time, and carries out its events.
    """

    __slots__ = (
        "sid", "scope", "manager", "engine", "admitted", "context", "_loop", "_time", "_handler",
        "_poll_task", "_ws_send", "_close_ws", "_writer", "_timer", "_timer_at", "_probe", "_probe_aborted",
        "_closing", "_observation",
    )

    def __init__(self, manager: SessionManager, scope: Scope, transport: Transport, sid: str) -> None:
        self.sid = sid
        self.scope = scope
        self.manager = manager
        self.engine = Session(sid, transport, manager.config)
        # Set once the layer above accepts the client (Socket.IO: its first namespace joined);
        # until then the session counts against `max_pending_sessions`.
        self.admitted = False
        # Slot for the layer above (the Socket.IO client object).
        self.context: Any = None
        self._loop = asyncio.get_running_loop()
        self._time = self._loop.time
        self._handler = manager.handler
        self._observation = manager.observation
        # The parked GET's task (cancelled when frames are ready), or WOKEN once it was.
        self._poll_task: asyncio.Task[Any] | object | None = None
        self._ws_send: WsSend | None = None
        self._close_ws: WsClose | None = None
        self._writer: asyncio.Task[None] | None = None
        # The one timer, armed at the engine's next deadline (or earlier: a late one only ticks).
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        # The upgrade WebSocket while it probes, and what tells its reader the upgrade is off.
        self._probe: tuple[WsSend, WsClose] | None = None
        self._probe_aborted: asyncio.Future[None] | None = None
        # Writing the last frames and closing the WebSocket, once the session closed.
        self._closing: asyncio.Task[None] | None = None

    @property
    def transport(self) -> Transport:
        return self.engine.transport

    @property
    def closed(self) -> bool:
        return self.engine.closed

    @property
    def writable(self) -> bool:
        """True when a frame sent now goes out at once (volatile packets are dropped otherwise)."""
        return self.engine.writable

    # -- events -------------------------------------------------------------------------------
    def _apply(self, events: Events) -> Awaitable[None] | None:
        """Carry out what the engine asked for; a Message's backpressure awaitable is returned."""
        result: Awaitable[None] | None = None
        for event in events:
            if isinstance(event, Message):
                observer = self._observation.observer
                if observer is not None:
                    observer.packet_in(self, event.data)
                result = self._handler.on_message(self, event.data)
            elif isinstance(event, Wake):
                self._wake()
            elif isinstance(event, Closed):
                try:
                    self._handler.on_close(self, event.reason)
                except Exception:
                    logger.exception("error in close handler of %s", self.sid)
                observer = self._observation.observer
                if observer is not None:
                    observer.engine_closed(self, event.reason)
            elif isinstance(event, Ended):
                self._ended()
            elif isinstance(event, CloseWebSocket):
                if self._close_ws is not None:
                    self._closing = self._loop.create_task(self._close_websocket(event.code))
            elif isinstance(event, Upgraded):
                assert self._probe is not None
                self._ws_send, self._close_ws = self._probe
                self._probe = None
                self._wake()
                observer = self._observation.observer
                if observer is not None:
                    observer.engine_upgraded(self)
            elif isinstance(event, UpgradeAborted):
                self._probe = None
                aborted = self._probe_aborted
                if aborted is not None and not aborted.done():
                    aborted.set_result(None)
            # SendProbe is for the upgrade transport: `feed_probe` hands it over.
        return result

    def _ended(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.manager.forget(self)

    def _now(self) -> float:
        return self._loop.time()

    # -- the timer ------------------------------------------------------------------------------
    def _arm(self) -> None:
        deadline = self.engine.next_deadline()
        if deadline is None:
            return
        timer = self._timer
        if timer is not None:
            if self._timer_at <= deadline:
                return  # it fires first; the tick then re-arms for the real deadline
            timer.cancel()
        self._timer_at = deadline
        self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        # The loop runs a timer when it is due within its clock resolution: it is due.
        now = max(self._loop.time(), self._timer_at)
        self._apply(self.engine.tick(now))
        if not self.engine.closed or self.engine.state is State.CLOSING:
            self._arm()

    def start(self) -> None:
        """The open packet went out: start the heartbeat."""
        self.engine.start(self._now())
        self._arm()

    # -- outgoing ---------------------------------------------------------------------------
    def send(self, frames: Iterable[EioFrame], *, bounded: bool = True) -> None:
        """Queue frames; never waits. A client whose queue overflows is closed as too slow.

        `bounded=False` is for one deliberate burst (the events a recovered client missed):
        until the queue has drained, the limit applies on top of it.
        """
        engine = self.engine
        observer = self._observation.observer
        if observer is not None:
            frames = list(frames)
            observer.packets_out(self, frames)
        if self._writer is None and self._ws_send is not None and engine.writes_through():
            # Straight to the WebSocket while it takes frames at once; only what it does not
            # take is queued (then the writer task carries on).
            send = self._ws_send
            remaining = iter(frames)
            for frame in remaining:
                pending = send(frame)
                try:
                    blocked_on = pending.send(None)
                except StopIteration:
                    continue
                except Exception:  # the peer went away; the reader will see the close
                    return
                rest = list(remaining)
                self._writer = self._loop.create_task(self._finish_write(pending, blocked_on))
                if rest:
                    events = engine.send(rest, bounded)
                    if events is not WAKE and events:
                        self._apply(events)
                return
            return
        events = engine.send(frames, bounded)
        if events is WAKE:
            self._wake()
            return
        if not events:
            return
        if type(events[0]) is Closed:
            _log_overflow(
                "closing session %s: its outgoing queue passed max_queue=%d (the client reads too slowly)",
                self.sid, self.manager.options.max_queue,
            )
            if observer is not None:
                observer.queue_overflow(self)
        self._apply(events)

    def send_frame(self, frame: EioFrame) -> None:
        self.send((frame,))

    def _wake(self) -> None:
        if self.engine.transport is _WEBSOCKET:
            if self._writer is None and self._ws_send is not None:
                self._write_now()
        else:
            task = self._poll_task
            if isinstance(task, asyncio.Task):
                self._poll_task = WOKEN
                task.cancel()

    def _write_now(self) -> None:
        """Write queued frames without a task while the transport takes them at once.

        An ASGI send normally completes without suspending (the server just writes to its
        transport); only when one suspends (the peer is not reading) does a writer task take
        over that send and the rest of the queue. So the common case costs no task at all.
        """
        send = self._ws_send
        assert send is not None
        pop = self.engine.pop_frame
        while (frame := pop()) is not None:
            pending = send(frame)
            try:
                blocked_on = pending.send(None)
            except StopIteration:
                continue
            except Exception:  # the peer went away; the reader will see the close
                self._drop_queue()
                return
            self._writer = self._loop.create_task(self._finish_write(pending, blocked_on))
            return

    def _drop_queue(self) -> None:
        pop = self.engine.pop_frame
        while pop() is not None:
            pass

    async def _finish_write(self, pending: Coroutine[Any, Any, None], blocked_on: Any) -> None:
        try:
            while True:
                # Wait for what the send is blocked on (through its done callback, as a task
                # would), then let the send go on: it reads the outcome itself.
                if blocked_on is None:
                    await asyncio.sleep(0)
                else:
                    # The send's own `await` holds the future, so wait on a callback of it.
                    resumed = self._loop.create_future()
                    blocked_on.add_done_callback(partial(_resolve, resumed))
                    await resumed
                try:
                    blocked_on = pending.send(None)
                except StopIteration:
                    break
            send = self._ws_send
            assert send is not None
            pop = self.engine.pop_frame
            while (frame := pop()) is not None:
                await send(frame)
        except asyncio.CancelledError:
            pending.close()
            raise
        except Exception:  # the peer went away mid-write; the reader sees the close
            self._drop_queue()
        finally:
            self._writer = None

    # -- incoming (both transports) -----------------------------------------------------------
    def feed(self, frame: EioFrame) -> Awaitable[None] | None:
        """One frame from the client over the active transport (a WebSocket message; one over
        the payload limit closes the session, and the WebSocket with 1009).

        Returns something to await before reading more when the layer above is backed up.
        Raises RemoteProtocolError for a frame not allowed here (the caller closes with `parse_error`).
        """
        events = self.engine.receive(frame, self._time())
        # No re-arming: a pong only moves the deadline later, and a timer that fires early only ticks.
        if events:
            event = events[0]
            if type(event) is Message:  # a message comes alone
                observer = self._observation.observer
                if observer is not None:
                    observer.packet_in(self, event.data)
                return self._handler.on_message(self, event.data)
            return self._apply(events)
        return None

    def feed_packet(self, packet: Packet) -> Awaitable[None] | None:
        """One decoded packet from the client over the active transport (a polling record): as `feed`."""
        events = self.engine.receive_packet(packet, self._loop.time())
        return self._apply(events) if events else None

    def parse_error(self, exc: Exception) -> None:
        """The client sent something that does not decode: log it (rate-limited) and close."""
        if not self.engine.closed:
            _log_parse_error("closing session %s: parse error: %s", self.sid, exc)
        self._apply(self.engine.parse_error(self._now()))

    # -- polling --------------------------------------------------------------------------
    def begin_get(self) -> bool:
        """Claim the one GET slot; False (and the session closes) if a GET is already in flight."""
        ok, events = self.engine.begin_get(self._now())
        self._apply(events)
        return ok

    def park_get(self) -> asyncio.Task[Any] | None:
        """None if the GET can answer now; else the GET's task (the current one), which is
        cancelled once it can (`woke_get` then tells that cancellation from any other)."""
        if not self.engine.park_get():
            return None
        # With the loop given, current_task() skips get_running_loop() (a getpid() on 3.11).
        task = asyncio.current_task(self._loop)
        assert task is not None
        self._poll_task = task
        return task

    def woke_get(self) -> bool:
        """Whether the parked GET was cancelled because it can answer now."""
        woken = self._poll_task is WOKEN
        self._poll_task = None
        return woken

    def take_frames(self) -> list[EioFrame]:
        """The frames for one polling response (a noop when there are none)."""
        return self.engine.take_frames()

    def end_get(self) -> None:
        self.engine.end_get()
        self._poll_task = None

    def get_dropped(self) -> None:
        self._poll_task = None
        self._apply(self.engine.get_dropped(self._now()))

    def get_delivered(self) -> None:
        self._apply(self.engine.get_delivered())

    def begin_post(self, *, binary: bool) -> bool:
        """Claim the one POST slot; False (and the session closes) when the POST breaks the rules."""
        ok, events = self.engine.begin_post(self._now(), binary=binary)
        self._apply(events)
        return ok

    def end_post(self) -> None:
        self.engine.end_post()

    def fits(self, size: int) -> bool:
        """Whether a polling body of `size` bytes is within the payload limit."""
        return self.engine.fits(size)

    def release_poll(self) -> None:
        """Answer a parked GET now."""
        self._apply(self.engine.release())

    # -- upgrade ----------------------------------------------------------------------------
    def can_upgrade(self) -> bool:
        return self.engine.can_upgrade()

    def begin_upgrade(self, send: WsSend, close: WsClose) -> asyncio.Future[None]:
        """An upgrade WebSocket starts probing; the future resolves if the upgrade is called off."""
        self.engine.begin_upgrade(self._now())
        self._probe = (send, close)
        aborted = self._probe_aborted = self._loop.create_future()
        self._arm()
        return aborted

    def feed_probe(self, packet: Packet) -> Events:
        """A packet on the upgrade WebSocket; returns the events for that transport
        (SendProbe, Upgraded, UpgradeAborted), having carried out the others."""
        events = self.engine.receive_probe(packet, self._now())
        self._apply(events)
        return events

    def end_upgrade(self) -> None:
        """The upgrade WebSocket's reader stopped: an upgrade still under way is off."""
        self._apply(self.engine.abort_upgrade())
        self._probe_aborted = None

    def attach_websocket(self, send: WsSend, close: WsClose) -> None:
        """A session opened over WebSocket: its writer."""
        self._ws_send = send
        self._close_ws = close
        self._wake()

    # -- close ----------------------------------------------------------------------------
    def close(self, reason: str = DisconnectReason.FORCED_CLOSE, *, notify_client: bool = True) -> None:
        """End the session. Idempotent; the handler hears `reason` once."""
        self._apply(self.engine.close(DisconnectReason(reason), self._now(), notify_client=notify_client))
        if self.engine.state is State.CLOSING:
            self._arm()

    @property
    def stranded(self) -> bool:
        """Opened under an event loop that has since closed (an app used by several test
        clients in turn, each with a loop of its own): nothing of it can run any more."""
        return self._loop.is_closed()

    def abandon(self) -> None:
        """End a stranded session: the layer above tears down its state, without the I/O,
        timers and tasks its dead loop can no longer run."""
        self._poll_task = None
        self._ws_send = self._close_ws = None
        self._probe = None
        self._timer = None
        self._apply(self.engine.close(DisconnectReason.SERVER_SHUTTING_DOWN, self._now(), notify_client=False))
        self.manager.forget(self)

    async def websocket_closed(self) -> None:
        """Wait until the WebSocket has been closed, if the session asked for it (its reader
        waits so that the close frame goes out before the ASGI call returns)."""
        if self._closing is not None:
            await asyncio.shield(self._closing)

    async def _close_websocket(self, code: int) -> None:
        # Let queued frames (such as a DISCONNECT packet) go out before the close frame.
        writer = self._writer
        if writer is not None:
            try:
                await asyncio.wait_for(asyncio.shield(writer), self.manager.options.close_timeout)
            except (asyncio.TimeoutError, Exception):
                pass
        elif self._ws_send is not None:
            try:
                while (frame := self.engine.pop_frame()) is not None:
                    await self._ws_send(frame)
            except Exception:
                pass
        assert self._close_ws is not None
        try:
            # A peer that stopped reading may never take the close frame either; the ASGI
            # server's own WebSocket keepalive then ends the connection.
            await asyncio.wait_for(self._close_ws(code), self.manager.options.close_timeout)
        except (asyncio.TimeoutError, Exception):
            pass


class SessionManager:
    """sid -> session, with the engine options and the handler above."""

    def __init__(self, options: EngineOptions, handler: EngineHandler, observation: Observation | None = None) -> None:
        self.options = options
        # What observers (Admin UI, metrics, traces) are told; none by default.
        self.observation = observation or Observation()
        self.config = SessionConfig(
            ping_interval=options.ping_interval,
            ping_timeout=options.ping_timeout,
            upgrade_timeout=options.upgrade_timeout,
            close_timeout=options.close_timeout,
            max_queue=options.max_queue,
            max_payload=options.max_http_buffer_size,
        )
        self.handler = handler
        self.sessions: dict[str, EngineSession] = {}
        # Sessions not yet admitted by the layer above (see `admit`).
        self.pending = 0
        # The ids of the last sessions that ended, oldest first (a dict as an ordered set).
        self.recently_ended: dict[str, None] = {}
        # Set by shutdown and kept until the next start: no handshake slips in meanwhile.
        self.shutting_down = False

    def create(self, scope: Scope, transport: Transport) -> EngineSession:
        sid = generate_sid()
        while sid in self.sessions:  # vanishingly rare; ids are random
            sid = generate_sid()
        session = EngineSession(self, scope, transport, sid)
        self.sessions[sid] = session
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
        session.start()
        self.handler.on_open(session)
        observer = self.observation.observer
        if observer is not None:
            observer.engine_opened(session)

    async def shutdown(self) -> None:
        """Close every session with reason `server shutting down`; pending GETs are answered at once."""
        self.shutting_down = True
        for session in list(self.sessions.values()):
            if session.stranded:
                session.abandon()
            else:
                session.close(DisconnectReason.SERVER_SHUTTING_DOWN)
        # Give writers and GETs a moment to deliver the last frames.
        await asyncio.sleep(0)
        for session in list(self.sessions.values()):
            session.release_poll()
            self.forget(session)
