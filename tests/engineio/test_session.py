"""The pure Engine.IO session against protocol.md §1.5-§1.7: no sockets, no sleeps, a fake clock."""

from __future__ import annotations

import pytest

from fastapi_realtime.engineio.handshake import Transport
from fastapi_realtime.engineio.packet import Packet, PacketType
from fastapi_realtime.engineio.session import (
    Closed,
    CloseWebSocket,
    Ended,
    Event,
    Message,
    SendProbe,
    Session,
    SessionConfig,
    State,
    UpgradeAborted,
    Upgraded,
    Wake,
)
from fastapi_realtime.exceptions import LocalProtocolError, RemoteProtocolError
from fastapi_realtime.reasons import DisconnectReason as Reason

CONFIG = SessionConfig(ping_interval=25.0, ping_timeout=20.0, upgrade_timeout=10.0, close_timeout=5.0, max_queue=8,
                       max_payload=100)
PING = Packet(PacketType.PING)
PONG = Packet(PacketType.PONG)
PROBE = Packet(PacketType.PING, "probe")
UPGRADE = Packet(PacketType.UPGRADE)
CLOSE = Packet(PacketType.CLOSE)


def started(transport: Transport = Transport.POLLING, *, at: float = 1000.0) -> Session:
    session = Session("s" * 20, transport, CONFIG)
    session.start(at)
    return session


def state_of(session: Session) -> State:
    """The state, read fresh (mypy would keep an earlier `is` narrowing)."""
    return session.state


def run_until(session: Session, until: float) -> list[tuple[float, Event]]:
    """Drive the session as its one timer would: tick at each deadline up to `until`."""
    seen: list[tuple[float, Event]] = []
    while (deadline := session.next_deadline()) is not None and deadline <= until:
        seen.extend((deadline, event) for event in session.tick(deadline))
    return seen


# -- heartbeat (§1.5) ---------------------------------------------------------------------------
def test_first_ping_one_interval_after_the_handshake() -> None:
    session = started()
    assert session.next_deadline() == 1025.0
    assert list(session.tick(1024.9)) == []
    assert session.queued() == []
    assert list(session.tick(1025.0)) == []  # no GET parked: the ping waits in the queue
    assert session.queued() == ["2"]
    # The timeout starts when the ping is queued, not when it is delivered.
    assert session.next_deadline() == 1045.0


def test_ping_timeout_closes() -> None:
    session = started()
    seen = run_until(session, 2000.0)
    assert seen == [(1045.0, Closed(Reason.PING_TIMEOUT)), (1045.0, Ended())]
    assert session.state is State.CLOSED
    assert session.next_deadline() is None


@pytest.mark.parametrize(
    ("pong_at", "next_ping"),
    [(1025.0, 1050.0), (1030.0, 1055.0), (1044.9, 1069.9)],
)
def test_pong_rearms_the_interval_from_its_arrival(pong_at: float, next_ping: float) -> None:
    session = started()
    session.tick(1025.0)
    assert list(session.receive_packet(PONG, pong_at)) == []
    assert session.next_deadline() == next_ping
    assert list(session.tick(pong_at + 1)) == []
    assert session.state is State.OPEN


@pytest.mark.parametrize(
    ("packet", "reason"),
    [
        (PING, Reason.TRANSPORT_ERROR),  # v4: only the server pings (§1.2)
        (PONG, Reason.TRANSPORT_ERROR),  # a pong nobody asked for
        (CLOSE, Reason.TRANSPORT_CLOSE),
    ],
)
def test_heartbeat_direction_and_close_packet(packet: Packet, reason: Reason) -> None:
    session = started()
    events = session.receive_packet(packet, 1001.0)
    assert events[0] == Closed(reason)
    assert events[-1] == Ended()
    assert session.state is State.CLOSED


@pytest.mark.parametrize("kind", [PacketType.OPEN, PacketType.UPGRADE, PacketType.NOOP])
def test_packets_a_client_never_sends_are_remote_errors(kind: PacketType) -> None:
    session = started()
    with pytest.raises(RemoteProtocolError):
        session.receive_packet(Packet(kind), 1001.0)
    assert session.parse_error(1001.0)[0] == Closed(Reason.PARSE_ERROR)


def test_messages_go_up_and_stop_after_close() -> None:
    session = started()
    assert list(session.receive_packet(Packet(PacketType.MESSAGE, "hi"), 1001.0)) == [Message("hi")]
    assert list(session.receive_packet(Packet(PacketType.MESSAGE, b"\x01"), 1001.0)) == [Message(b"\x01")]
    session.close(Reason.FORCED_SERVER_CLOSE, 1002.0)
    assert list(session.receive_packet(Packet(PacketType.MESSAGE, "late"), 1003.0)) == []


def test_ping_over_websocket_wakes_the_writer() -> None:
    session = started(Transport.WEBSOCKET)
    assert list(session.tick(1025.0)) == [Wake()]
    assert session.pop_frame() == "2"
    assert session.pop_frame() is None


# -- polling (§1.1, §1.7) -----------------------------------------------------------------------
def test_a_parked_get_is_woken_by_a_send_once() -> None:
    session = started()
    assert session.begin_get() == (True, ())
    assert session.park_get() is True
    assert session.writable
    assert list(session.send(["4a"])) == [Wake()]
    assert list(session.send(["4b"])) == []  # already woken
    assert session.take_frames() == ["4a", "4b"]
    session.end_get()
    assert not session.writable


def test_an_empty_get_that_is_released_answers_noop() -> None:
    session = started()
    session.begin_get()
    session.park_get()
    assert list(session.release()) == [Wake()]
    assert session.take_frames() == ["6"]


def test_a_get_takes_what_fits_max_payload() -> None:
    session = started()
    session.send(["4" + "x" * 59, "4" + "y" * 59, "4z"])
    assert session.park_get() is False
    assert session.take_frames() == ["4" + "x" * 59]
    assert session.take_frames() == ["4" + "y" * 59, "4z"]


@pytest.mark.parametrize(
    ("second", "expect_first_body"),
    [("get", ["1"]), ("post", ["1"])],
)
def test_overlapping_requests_close_the_session(second: str, expect_first_body: list[str]) -> None:
    session = started()
    session.begin_get()
    session.park_get()
    if second == "get":
        ok, events = session.begin_get(1001.0)
    else:
        session.begin_post(1001.0)
        ok, events = session.begin_post(1001.0)
    assert ok is False
    assert list(events) == [Closed(Reason.TRANSPORT_ERROR), Wake(), Ended()]
    # The first (parked) GET gets the close packet (§1.7).
    assert session.take_frames() == expect_first_body


def test_binary_post_body_closes() -> None:
    session = started()
    ok, events = session.begin_post(1001.0, binary=True)
    assert ok is False and events[0] == Closed(Reason.TRANSPORT_ERROR)


@pytest.mark.parametrize(
    ("reason", "notify", "body"),
    [
        (Reason.TRANSPORT_CLOSE, False, ["6"]),  # the client closed: its GET is released with a noop
        (Reason.SERVER_SHUTTING_DOWN, True, ["1"]),
        (Reason.FORCED_CLOSE, True, ["1"]),  # nothing queued: the close at once
    ],
)
def test_close_answers_a_parked_get(reason: Reason, notify: bool, body: list[str]) -> None:
    session = started()
    session.begin_get()
    session.park_get()
    events = session.close(reason, 1001.0, notify_client=notify)
    assert list(events) == [Closed(reason), Wake(), Ended()]
    assert session.take_frames() == body


def test_forced_close_drains_first_then_sends_close() -> None:
    session = started()
    session.send(["41"])
    events = session.close(Reason.FORCED_CLOSE, 1001.0)
    assert list(events) == [Closed(Reason.FORCED_CLOSE)]
    assert session.state is State.CLOSING
    assert list(session.send(["4late"])) == []
    assert session.take_frames() == ["41"]
    assert list(session.get_delivered()) == []
    assert session.take_frames() == ["1"]
    assert list(session.get_delivered()) == [Ended()]
    assert state_of(session) is State.CLOSED


def test_forced_close_gives_up_draining_after_close_timeout() -> None:
    session = started()
    session.send(["41"])
    session.close(Reason.FORCED_CLOSE, 1001.0)
    assert session.next_deadline() == 1006.0
    assert list(session.tick(1006.0)) == [Ended()]
    assert session.state is State.CLOSED


def test_a_dropped_get_closes_without_telling_the_client() -> None:
    session = started()
    session.begin_get()
    session.park_get()
    events = session.get_dropped(1001.0)
    assert list(events) == [Closed(Reason.TRANSPORT_ERROR), Ended()]
    assert session.queued() == []


def test_queue_overflow_closes() -> None:
    session = started(Transport.WEBSOCKET)
    assert list(session.send(["4"] * 8)) == [Wake()]
    events = session.send(["4"])
    assert events[0] == Closed(Reason.TRANSPORT_ERROR)
    assert session.queued() == []


def test_an_unbounded_burst_counts_on_top_of_the_limit() -> None:
    session = started(Transport.WEBSOCKET)
    session.send(["4"] * 20, bounded=False)
    assert list(session.send(["4"] * 8)) == [Wake()]
    assert session.send(["4"])[0] == Closed(Reason.TRANSPORT_ERROR)


def test_websocket_close_closes_the_socket() -> None:
    session = started(Transport.WEBSOCKET)
    events = session.close(Reason.FORCED_CLOSE, 1001.0)
    assert list(events) == [Closed(Reason.FORCED_CLOSE), CloseWebSocket(), Ended()]
    assert list(session.close(Reason.FORCED_CLOSE, 1001.0)) == []  # idempotent: heard once


# -- upgrade (§1.6) -----------------------------------------------------------------------------
def test_upgrade_probe_noop_and_switch() -> None:
    session = started()
    session.begin_get()
    session.park_get()
    session.begin_upgrade(1001.0)
    assert session.state is State.PROBING
    assert not session.can_upgrade()
    # The probe is answered and the parked GET released (with a noop: nothing queued).
    assert list(session.receive_probe(PROBE, 1001.1)) == [SendProbe("3probe"), Wake()]
    assert state_of(session) is State.UPGRADING
    assert session.take_frames() == ["6"]
    session.end_get()
    # A GET during the upgrade is answered at once.
    session.begin_get()
    assert session.park_get() is False
    assert session.take_frames() == ["6"]
    session.end_get()
    # Messages still arrive over polling; what is sent meanwhile is buffered.
    assert list(session.receive_packet(Packet(PacketType.MESSAGE, "up"), 1001.2)) == [Message("up")]
    assert list(session.send(["4buffered"])) == []
    assert list(session.receive_probe(UPGRADE, 1001.3)) == [Upgraded()]
    assert state_of(session) is State.OPEN and session.transport is Transport.WEBSOCKET
    assert session.pop_frame() == "4buffered"
    assert session.take_frames() == ["6"]  # polling gets nothing any more
    assert not session.can_upgrade()


@pytest.mark.parametrize(
    "steps",
    [
        [Packet(PacketType.MESSAGE, "nope")],
        [PING],  # a ping without "probe"
        [UPGRADE],  # `5` before the probe
        [PROBE, PROBE],
        [PROBE, Packet(PacketType.MESSAGE, "x")],
    ],
)
def test_anything_else_on_the_probe_aborts(steps: list[Packet]) -> None:
    session = started()
    session.begin_upgrade(1001.0)
    events: list[Event] = []
    for packet in steps:
        events = list(session.receive_probe(packet, 1001.5))
    assert events == [UpgradeAborted()]
    assert session.state is State.OPEN and session.transport is Transport.POLLING
    assert session.can_upgrade()


def test_upgrade_timeout() -> None:
    session = started()
    session.begin_upgrade(1001.0)
    assert session.next_deadline() == 1011.0
    assert list(session.tick(1011.0)) == [UpgradeAborted()]
    assert session.state is State.OPEN and session.next_deadline() == 1025.0


def test_close_during_upgrade_aborts_it() -> None:
    session = started()
    session.begin_upgrade(1001.0)
    session.receive_probe(PROBE, 1001.1)
    events = list(session.close(Reason.PING_TIMEOUT, 1002.0))
    assert events == [Closed(Reason.PING_TIMEOUT), UpgradeAborted(), Ended()]


@pytest.mark.parametrize("transport", [Transport.WEBSOCKET])
def test_no_upgrade_from_websocket(transport: Transport) -> None:
    session = started(transport)
    with pytest.raises(LocalProtocolError):
        session.begin_upgrade(1001.0)


def test_start_twice_is_a_local_error() -> None:
    session = started()
    with pytest.raises(LocalProtocolError):
        session.start(1001.0)


# -- frames as the transports deliver them ------------------------------------------------------
@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        ("4hello", [Message("hello")]),
        (b"\x00\x01", [Message(b"\x00\x01")]),
        ("bAQI=", [Message(b"\x01\x02")]),  # a polling record's binary form
        ("1", [Closed(Reason.TRANSPORT_CLOSE), CloseWebSocket(), Ended()]),
        ("2", [Closed(Reason.TRANSPORT_ERROR), CloseWebSocket(), Ended()]),
        ("2probe", [Closed(Reason.TRANSPORT_ERROR), CloseWebSocket(), Ended()]),  # a probe on the live transport
        ("4" + "x" * 99, [Message("x" * 99)]),  # exactly max_payload bytes
        ("4" + "x" * 100, [Closed(Reason.TRANSPORT_ERROR), CloseWebSocket(1009), Ended()]),
        ("4" + "é" * 50, [Closed(Reason.TRANSPORT_ERROR), CloseWebSocket(1009), Ended()]),  # bytes, not characters
        (b"\x00" * 101, [Closed(Reason.TRANSPORT_ERROR), CloseWebSocket(1009), Ended()]),
    ],
)
def test_websocket_frames(frame: str | bytes, expected: list[Event]) -> None:
    session = started(Transport.WEBSOCKET)
    assert list(session.receive(frame, 1001.0)) == expected


@pytest.mark.parametrize("frame", ["", "abc", "5", "6", "0", "b!!"])
def test_frames_that_do_not_decode_or_are_not_allowed(frame: str) -> None:
    session = started(Transport.WEBSOCKET)
    with pytest.raises(RemoteProtocolError):
        session.receive(frame, 1001.0)


def test_frames_after_close_are_ignored() -> None:
    session = started(Transport.WEBSOCKET)
    session.close(Reason.TRANSPORT_CLOSE, 1001.0, notify_client=False)
    assert list(session.receive("4late", 1002.0)) == []
    assert list(session.receive("3", 1002.0)) == []
