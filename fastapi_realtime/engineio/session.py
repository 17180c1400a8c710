"""The Engine.IO v4 session as a pure state machine (protocol.md §1.1, §1.5-§1.7).

No I/O and no clock: the driver (`fastapi_realtime.sessions`) passes the current time in,
feeds what the transports receive, and carries out the events the methods return. One timer
per session is enough: arm it at `next_deadline()` and call `tick(now)` when it fires.

Both transports feed the same methods: `receive` takes a packet from whichever transport
carries the session, the `*_get` / `*_post` methods hold the polling rules, and the
`*_upgrade` / `receive_probe` methods hold the upgrade to WebSocket.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum

from ..exceptions import LocalProtocolError, RemoteProtocolError
from ..reasons import DisconnectReason
from .handshake import Transport
from .packet import (
    CLOSE_FRAME,
    NOOP_FRAME,
    PING_FRAME,
    PONG_PROBE_FRAME,
    Frame,
    Packet,
    PacketType,
    decode_packet,
    record_size,
)


class State(Enum):
    OPEN = "open"
    # An upgrade WebSocket is open and has not sent its probe yet.
    PROBING = "probing"
    # The probe was answered; polling only releases the client (noop) until `5` arrives.
    UPGRADING = "upgrading"
    # Closed by the server with packets still queued for polling: a GET drains them, the next
    # GET gets the close packet, then the session is gone (or after `close_timeout`).
    CLOSING = "closing"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionConfig:
    """The settings one session needs. Durations in seconds."""

    ping_interval: float = 25.0
    ping_timeout: float = 20.0
    upgrade_timeout: float = 10.0
    close_timeout: float = 5.0
    # Outgoing frames queued before the client counts as too slow and is closed.
    max_queue: int = 1024
    # The most bytes one polling response carries (one frame larger than this still goes, alone).
    max_payload: int = 1_000_000


# -- events: what the driver has to do ----------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Message:
    """A message for the layer above."""

    data: str | bytes


@dataclass(frozen=True, slots=True)
class Closed:
    """The session ended; the layer above hears it once."""

    reason: DisconnectReason


@dataclass(frozen=True, slots=True)
class Wake:
    """Frames are waiting for the active transport, or a waiting GET must be answered now:
    start the WebSocket writer, or release the parked GET."""


@dataclass(frozen=True, slots=True)
class Ended:
    """The session id is released: later requests for it get "Session ID unknown"."""


# WebSocket close codes (RFC 6455).
NORMAL_CLOSURE = 1000
MESSAGE_TOO_BIG = 1009


@dataclass(frozen=True, slots=True)
class CloseWebSocket:
    """Write what is still queued on the WebSocket, then close it with `code`."""

    code: int = NORMAL_CLOSURE


@dataclass(frozen=True, slots=True)
class SendProbe:
    """Send `frame` on the upgrade WebSocket (the answer to the probe)."""

    frame: Frame


@dataclass(frozen=True, slots=True)
class Upgraded:
    """The upgrade WebSocket is now the transport: queued frames go out on it."""


@dataclass(frozen=True, slots=True)
class UpgradeAborted:
    """The upgrade failed (unexpected packet, timeout, session closed): close the upgrade
    WebSocket; polling goes on."""


# To build a Message as its generated __init__ would, at half the cost (a frozen dataclass's
# __init__ goes through object.__setattr__): the hot path builds one per received message.
_new_message = object.__new__
_set_message_data = Message.__dict__["data"].__set__


Event = Message | Closed | Wake | Ended | CloseWebSocket | SendProbe | Upgraded | UpgradeAborted
Events = Sequence[Event]

_WEBSOCKET = Transport.WEBSOCKET
NO_EVENTS: Events = ()
# The one event of most sends: returned as this very object, so a driver can test it with `is`.
WAKE: Events = (Wake(),)
_ENDED: Events = (Ended(),)


def fitting(frames: Sequence[Frame], limit: int) -> int:
    """How many leading frames fit one polling response of at most `limit` bytes (always at
    least one, so a packet larger than the limit still goes out, alone)."""
    size = -1  # n records need n - 1 separators
    for count, frame in enumerate(frames):
        size += 1 + record_size(frame)
        if size > limit and count:
            return count
    return len(frames)


class Session:
    """One Engine.IO session, whatever transport carries it right now."""

    __slots__ = (
        "sid", "transport", "state", "closed", "config", "_max_queue", "_max_payload", "_queue", "_slack", "_getting", "_posting", "_parked",
        "_ping_at", "_pong_by", "_upgrade_by", "_close_by", "_close_after_drain",
    )

    def __init__(self, sid: str, transport: Transport, config: SessionConfig) -> None:
        self.sid = sid
        self.transport = transport
        self.state = State.OPEN
        # True from the close on (state CLOSING or CLOSED): kept as a flag, the hot paths read it.
        self.closed = False
        self.config = config
        self._max_queue = config.max_queue
        self._max_payload = config.max_payload
        # A list, not a deque: an idle connection's empty deque would cost 760 bytes.
        self._queue: list[Frame] = []
        # Frames of a deliberate burst still queued: they do not count against max_queue.
        self._slack = 0
        self._getting = False
        self._posting = False
        # A GET is waiting for frames (the driver holds it).
        self._parked = False
        # Heartbeat: the next ping is due at _ping_at; once sent, the pong is due by _pong_by.
        self._ping_at: float | None = None
        self._pong_by: float | None = None
        self._upgrade_by: float | None = None
        self._close_by: float | None = None
        self._close_after_drain = False

    @property
    def upgrading(self) -> bool:
        """An upgrade is under way (probing or probed)."""
        return self.state is State.PROBING or self.state is State.UPGRADING

    # -- time ---------------------------------------------------------------------------------
    def start(self, now: float) -> None:
        """The open packet went out: the first ping is due one interval from now."""
        if self._ping_at is not None or self._pong_by is not None:
            raise LocalProtocolError("session already started")
        if not self.closed:
            self._ping_at = now + self.config.ping_interval

    def next_deadline(self) -> float | None:
        """When `tick` has something to do next, or None."""
        deadline = self._ping_at if self._pong_by is None else self._pong_by
        for other in (self._upgrade_by, self._close_by):
            if other is not None and (deadline is None or other < deadline):
                deadline = other
        return deadline

    def tick(self, now: float) -> Events:
        """Do what is due at `now`: end a drained close, abort a late upgrade, time out a
        ping, send a ping."""
        if self._close_by is not None and now >= self._close_by:
            self._close_by = None
            if self.state is State.CLOSING:
                self.state = State.CLOSED
                return _ENDED
        if self.closed:
            return NO_EVENTS
        events: list[Event] = []
        if self._upgrade_by is not None and now >= self._upgrade_by:
            events.extend(self.abort_upgrade())
        if self._pong_by is not None and now >= self._pong_by:
            events.extend(self.close(DisconnectReason.PING_TIMEOUT, now))
            return events
        if self._ping_at is not None and now >= self._ping_at:
            self._ping_at = None
            # The timeout starts when the ping is queued, not when it is delivered (§1.5).
            self._pong_by = now + self.config.ping_timeout
            events.extend(self.send((PING_FRAME,)))
        return events

    # -- outgoing -----------------------------------------------------------------------------
    @property
    def writable(self) -> bool:
        """True when a frame sent now goes out at once (volatile packets are dropped otherwise)."""
        if self.closed:
            return False
        if self.transport is Transport.WEBSOCKET:
            return not self._queue
        return self._parked

    def send(self, frames: Iterable[Frame], bounded: bool = True) -> Events:
        """Queue frames. A client whose queue passes `max_queue` is closed ("transport error").

        `bounded=False` is for one deliberate burst (the events a recovered client missed):
        until it has drained, the limit applies on top of it.
        """
        if self.closed:
            return NO_EVENTS
        queue = self._queue
        if not queue:
            self._slack = 0  # the last burst has gone out
        queue.extend(frames)
        if not bounded:
            self._slack = len(queue)
        elif len(queue) > self._max_queue + self._slack:
            queue.clear()
            return self.close(DisconnectReason.TRANSPORT_ERROR, None)
        if self.transport is _WEBSOCKET:
            return WAKE
        return self._release()

    def writes_through(self) -> bool:
        """Nothing is queued on an open WebSocket session: a frame the driver writes at once
        needs no place in the queue (the hot path of every emit)."""
        return not self._queue and self.transport is _WEBSOCKET and not self.closed

    def queued(self) -> Sequence[Frame]:
        """The outgoing queue, to read."""
        return self._queue

    def pop_frame(self) -> Frame | None:
        """The next frame for the WebSocket writer, or None."""
        queue = self._queue
        if not queue or self.transport is not _WEBSOCKET:
            return None
        if self._slack:
            self._slack -= 1
        return queue.pop(0)

    def _release(self) -> Events:
        if self._parked:
            self._parked = False
            return WAKE
        return NO_EVENTS

    # -- incoming -----------------------------------------------------------------------------
    def receive(self, frame: Frame, now: float) -> Events:
        """One frame from the client over the active transport (a WebSocket message, or a
        polling record): decoded, then handled as `receive_packet` does.

        Raises RemoteProtocolError for a frame that does not decode or a packet the client must
        not send here; the driver then closes the session with `parse_error`.
        """
        if type(frame) is str:
            size = len(frame)
            limit = self._max_payload
            # The limit is in bytes; only a long text can be over it in UTF-8 and not in characters.
            if size > limit or (size * 4 > limit and len(frame.encode()) > limit):
                return self._too_large(now)
            if frame[:1] == "4":
                # The common case, without building a Packet first.
                if self.closed:
                    return NO_EVENTS
                message: Message = _new_message(Message)
                _set_message_data(message, frame[1:])
                return (message,)
        elif len(frame) > self._max_payload:
            return self._too_large(now)
        return self.receive_packet(decode_packet(frame), now)

    def _too_large(self, now: float) -> Events:
        """A WebSocket message over `max_payload`: closed as Node's `ws` does (1009)."""
        events = self.close(DisconnectReason.TRANSPORT_ERROR, now)
        return [CloseWebSocket(MESSAGE_TOO_BIG) if isinstance(event, CloseWebSocket) else event for event in events]

    def receive_packet(self, packet: Packet, now: float) -> Events:
        """One decoded packet from the client over the active transport."""
        if self.closed:
            return NO_EVENTS
        kind = packet.type
        if kind is PacketType.MESSAGE:
            return (Message(packet.data),)
        if kind is PacketType.PONG:
            if self._pong_by is None:
                # A pong nobody asked for breaks the heartbeat rules, like a client ping (§1.2).
                return self.close(DisconnectReason.TRANSPORT_ERROR, now)
            self._pong_by = None
            # The interval is re-armed from the moment the pong arrived, as Node does.
            self._ping_at = now + self.config.ping_interval
            return NO_EVENTS
        if kind is PacketType.CLOSE:
            return self.close(DisconnectReason.TRANSPORT_CLOSE, now, notify_client=False)
        if kind is PacketType.PING:
            # In v4 only the server pings (the upgrade probe goes to `receive_probe`).
            return self.close(DisconnectReason.TRANSPORT_ERROR, now)
        raise RemoteProtocolError(f"unexpected packet type {int(kind)}")

    def parse_error(self, now: float | None = None) -> Events:
        """The client sent something that does not decode or is not allowed here."""
        return self.close(DisconnectReason.PARSE_ERROR, now)

    # -- polling ------------------------------------------------------------------------------
    def begin_get(self, now: float | None = None) -> tuple[bool, Events]:
        """A GET arrived. False when one is already in flight: that breaks the protocol, the
        session closes (the first GET gets the close packet) and this one gets a 400."""
        if self._getting:
            return False, self.close(DisconnectReason.TRANSPORT_ERROR, now)
        self._getting = True
        return True, NO_EVENTS

    def park_get(self) -> bool:
        """True when the GET has to wait for frames (a `Wake` event releases it); False when it
        can be answered now with `take_frames()`."""
        if self._queue or self.closed or self.state is State.UPGRADING:
            return False
        self._parked = True
        return True

    def take_frames(self) -> list[Frame]:
        """The frames for one polling response: what fits `max_payload` (the rest waits for the
        next GET), or a noop when there is nothing (or the session has moved to WebSocket)."""
        queue = self._queue
        if not queue or self.transport is not Transport.POLLING:
            return [NOOP_FRAME]
        count = fitting(queue, self.config.max_payload)
        if count >= len(queue):
            frames = list(queue)
            queue.clear()
        else:
            frames = queue[:count]
            del queue[:count]
        self._slack = max(0, self._slack - len(frames))
        if self._close_after_drain and not queue:
            # The close packet goes in the GET after the one that drained the queue.
            self._close_after_drain = False
            queue.append(CLOSE_FRAME)
        return frames

    def end_get(self) -> None:
        """The GET is over (answered or dropped): the slot is free again."""
        self._getting = False
        self._parked = False

    def get_delivered(self) -> Events:
        """A GET's response went out; when it carried the last frames of a close, the session is gone."""
        if self.state is State.CLOSING and not self._queue and not self._close_after_drain:
            self.state = State.CLOSED
            self._close_by = None
            return _ENDED
        return NO_EVENTS

    def get_dropped(self, now: float | None = None) -> Events:
        """The client went away while its GET waited: "poll connection closed prematurely"."""
        self._parked = False
        return self.close(DisconnectReason.TRANSPORT_ERROR, now, notify_client=False)

    def begin_post(self, now: float | None = None, *, binary: bool = False) -> tuple[bool, Events]:
        """A POST arrived. False when it breaks the rules (one already in flight, or a binary
        body, which EIO v4 never sends): the session closes and the POST gets a 400."""
        if binary or self._posting:
            return False, self.close(DisconnectReason.TRANSPORT_ERROR, now)
        self._posting = True
        return True, NO_EVENTS

    def end_post(self) -> None:
        self._posting = False

    def fits(self, size: int) -> bool:
        """Whether a polling body of `size` bytes is within `max_payload`."""
        return size <= self.config.max_payload

    def release(self) -> Events:
        """Answer a parked GET now (shutdown)."""
        return self._release()

    # -- upgrade ------------------------------------------------------------------------------
    def can_upgrade(self) -> bool:
        """Whether an upgrade WebSocket may start probing now (not upgraded, none under way)."""
        return self.state is State.OPEN and self.transport is Transport.POLLING

    def begin_upgrade(self, now: float) -> None:
        """An upgrade WebSocket opened; it has `upgrade_timeout` to send `2probe` and `5`."""
        if not self.can_upgrade():
            raise LocalProtocolError(f"cannot upgrade a session in state {self.state.value} over {self.transport}")
        self.state = State.PROBING
        self._upgrade_by = now + self.config.upgrade_timeout

    def receive_probe(self, packet: Packet, now: float) -> Events:
        """A packet on the upgrade WebSocket: `2probe`, then `5`; anything else aborts."""
        state = self.state
        if state is State.PROBING and packet.type is PacketType.PING and packet.data == "probe":
            self.state = State.UPGRADING
            # Release the pending GET so the client can pause polling.
            return (SendProbe(PONG_PROBE_FRAME), *self._release())
        if state is State.UPGRADING and packet.type is PacketType.UPGRADE:
            self.state = State.OPEN
            self.transport = Transport.WEBSOCKET
            self._upgrade_by = None
            return (Upgraded(), *self._release())
        return self.abort_upgrade()

    def abort_upgrade(self) -> Events:
        """The upgrade is off (its WebSocket closed, misbehaved or took too long); polling goes on."""
        if not self.upgrading:
            return NO_EVENTS
        self.state = State.OPEN
        self._upgrade_by = None
        return (UpgradeAborted(),)

    # -- close --------------------------------------------------------------------------------
    def close(
        self, reason: DisconnectReason, now: float | None, *, notify_client: bool = True
    ) -> Events:
        """End the session (idempotent). `now` is needed only for a polling session closed by
        the server with packets queued, which first drains them (`close_timeout` at most)."""
        if self.closed:
            return NO_EVENTS
        self.closed = True
        events: list[Event] = [Closed(reason)]
        self._ping_at = self._pong_by = None
        if self.upgrading:
            events.extend(self.abort_upgrade())
        if self.transport is Transport.WEBSOCKET:
            self.state = State.CLOSED
            events.append(CloseWebSocket())
            events.append(Ended())
            return events
        if reason is DisconnectReason.FORCED_CLOSE and self._queue and now is not None:
            # A close the server chose: like Node, a GET first drains what is queued (a
            # DISCONNECT packet, say) and the close packet goes in the GET after it, so the
            # client handles the packets before it sees the transport close.
            self.state = State.CLOSING
            self._close_after_drain = True
            self._close_by = now + self.config.close_timeout
            events.extend(self._release())
            return events
        # Otherwise the session is gone at once (the next request gets 400 "Session ID
        # unknown"); a GET that is waiting right now is told with a close (or a noop when the
        # client itself closed).
        self.state = State.CLOSED
        if self._parked:
            if notify_client:
                self._queue.append(CLOSE_FRAME)
            else:
                self._queue.clear()
                self._queue.append(NOOP_FRAME)
            events.extend(self._release())
        events.append(Ended())
        return events
