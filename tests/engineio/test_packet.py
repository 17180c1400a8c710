"""Engine.IO v4 packet codec and open packet (protocol.md §1.2-§1.4, §1.8)."""

from __future__ import annotations

import json
import re

import pytest

from fastapi_realtime.engineio.handshake import (
    ErrorCode,
    error_body,
    error_status,
    generate_sid,
    open_frame,
)
from fastapi_realtime.engineio.packet import (
    Packet,
    PacketType,
    decode_packet,
    encode_packet,
    message_frame,
    record_size,
)
from fastapi_realtime.exceptions import RemoteProtocolError


@pytest.mark.parametrize(
    ("packet", "frame"),
    [
        (Packet(PacketType.OPEN, '{"sid":"x"}'), '0{"sid":"x"}'),
        (Packet(PacketType.CLOSE), "1"),
        (Packet(PacketType.PING), "2"),
        (Packet(PacketType.PING, "probe"), "2probe"),
        (Packet(PacketType.PONG, "probe"), "3probe"),
        (Packet(PacketType.MESSAGE, "hello"), "4hello"),
        (Packet(PacketType.MESSAGE, "héllo €"), "4héllo €"),
        (Packet(PacketType.UPGRADE), "5"),
        (Packet(PacketType.NOOP), "6"),
        # Binary over WebSocket: raw bytes, no type byte (§1.4).
        (Packet(PacketType.MESSAGE, b"\x01\x02\x03\x04"), b"\x01\x02\x03\x04"),
        (Packet(PacketType.MESSAGE, b""), b""),
    ],
)
def test_encode_and_decode(packet: Packet, frame: str | bytes) -> None:
    assert encode_packet(packet) == frame
    assert decode_packet(frame) == packet


def test_only_message_packets_carry_binary() -> None:
    with pytest.raises(ValueError):
        encode_packet(Packet(PacketType.PING, b"\x01"))


@pytest.mark.parametrize(
    ("record", "data"),
    [("bAQIDBA==", b"\x01\x02\x03\x04"), ("b", b""), ("b/w==", b"\xff")],
)
def test_decode_base64_record(record: str, data: bytes) -> None:
    """`b` + base64 stands for a binary message in a polling payload."""
    assert decode_packet(record) == Packet(PacketType.MESSAGE, data)


@pytest.mark.parametrize(
    "raw",
    [
        "",  # no type at all
        "7",
        "9hello",
        "x",
        "-1",
        "\u0664hello",  # ARABIC-INDIC DIGIT FOUR: a digit, but not an ASCII one
        "bAQID!A==",  # invalid base64
        "bAQIDBA",  # bad padding
        "bA",
        "b====",
        "bAQIDBA==AQ==",  # data after the padding
        "b AQIDBA==",  # whitespace is not skipped
        "bAQIDBA==\n",
        "bAQ\u00e9DBA==",  # non-ASCII in base64
        "b\u0661\u0662\u0663\u0664",  # ARABIC-INDIC digits
        "b\ud800AAA",  # a lone surrogate (a str that never came off the wire as UTF-8)
        "\ud800",
        "\x00",
        "\u00b2",  # SUPERSCRIPT TWO: isdigit() but not a packet type
        "b" + "A" * 1_000_001,  # 1 MB, length not a multiple of 4
    ],
)
def test_decode_invalid(raw: str) -> None:
    with pytest.raises(RemoteProtocolError):
        decode_packet(raw)


@pytest.mark.parametrize(
    ("raw", "packet"),
    [
        ("4\ud800", Packet(PacketType.MESSAGE, "\ud800")),  # the data is the next layer's business
        ("4" + "x" * 1_000_000, Packet(PacketType.MESSAGE, "x" * 1_000_000)),
        ("b" + "AAAA" * 250_000, Packet(PacketType.MESSAGE, b"\x00" * 750_000)),
        ("6\x1e", Packet(PacketType.NOOP, "\x1e")),
    ],
)
def test_decode_odd_but_valid(raw: str, packet: Packet) -> None:
    assert decode_packet(raw) == packet


def test_open_frame_has_exactly_the_five_keys() -> None:
    frame = open_frame("abc", ["websocket"], 25.0, 20.0, 1_000_000)
    assert frame[0] == "0"
    assert json.loads(frame[1:]) == {
        "sid": "abc",
        "upgrades": ["websocket"],
        "pingInterval": 25000,
        "pingTimeout": 20000,
        "maxPayload": 1000000,
    }


@pytest.mark.parametrize(("seconds", "ms"), [(0.3, 300), (0.2, 200), (1.5, 1500), (25, 25000)])
def test_open_frame_durations_in_milliseconds(seconds: float, ms: int) -> None:
    handshake = json.loads(open_frame("s", [], seconds, seconds, 1)[1:])
    assert handshake["pingInterval"] == handshake["pingTimeout"] == ms
    assert type(handshake["pingInterval"]) is int


def test_session_ids_are_20_url_safe_chars_and_unique() -> None:
    sids = {generate_sid() for _ in range(200)}
    assert len(sids) == 200
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{20}", sid) for sid in sids)


@pytest.mark.parametrize(
    ("code", "status", "message"),
    [
        (ErrorCode.UNKNOWN_TRANSPORT, 400, "Transport unknown"),
        (ErrorCode.UNKNOWN_SID, 400, "Session ID unknown"),
        (ErrorCode.BAD_HANDSHAKE_METHOD, 400, "Bad handshake method"),
        (ErrorCode.BAD_REQUEST, 400, "Bad request"),
        (ErrorCode.FORBIDDEN, 403, "Forbidden"),
        (ErrorCode.UNSUPPORTED_PROTOCOL_VERSION, 400, "Unsupported protocol version"),
    ],
)
def test_error_table(code: ErrorCode, status: int, message: str) -> None:
    assert error_status(code) == status
    assert json.loads(error_body(code)) == {"code": int(code), "message": message}


def test_error_body_custom_message() -> None:
    assert error_body(ErrorCode.FORBIDDEN, "no thanks") == b'{"code":4,"message":"no thanks"}'


@pytest.mark.parametrize(("data", "frame"), [("hi", "4hi"), ("", "4"), (b"\x01", b"\x01")])
def test_message_frame(data: str | bytes, frame: str | bytes) -> None:
    assert message_frame(data) == frame


@pytest.mark.parametrize(("frame", "size"), [("4abc", 4), ("4é", 3), (b"\x01\x02\x03", 5), (b"\x01", 5)])
def test_record_size_is_the_polling_form(frame: str | bytes, size: int) -> None:
    assert record_size(frame) == size
