"""Engine.IO v4 polling payloads (protocol.md §1.4)."""

from __future__ import annotations

import pytest

from fastapi_realtime.engineio.packet import Packet, PacketType, encode_packet
from fastapi_realtime.engineio.payload import SEPARATOR, decode_payload, encode_payload, frame_to_record
from fastapi_realtime.exceptions import RemoteProtocolError

M = PacketType.MESSAGE


def test_separator_is_record_separator() -> None:
    assert SEPARATOR == "\x1e"


@pytest.mark.parametrize(
    ("frames", "body"),
    [
        (["4hello"], "4hello"),
        (["4hello", "2", "4world"], "4hello\x1e2\x1e4world"),
        (["4hello", b"\x01\x02\x03\x04"], "4hello\x1ebAQIDBA=="),  # the example of §1.4
        ([b""], "b"),
        ([], ""),
    ],
)
def test_encode_payload(frames: list[str | bytes], body: str) -> None:
    assert encode_payload(frames) == body


def test_frame_to_record() -> None:
    assert frame_to_record("4x") == "4x"
    assert frame_to_record(b"\xff") == "b/w=="


@pytest.mark.parametrize(
    ("body", "packets"),
    [
        ("4hello", [Packet(M, "hello")]),
        ("4hello\x1e2\x1e4world", [Packet(M, "hello"), Packet(PacketType.PING), Packet(M, "world")]),
        ("4hello\x1ebAQIDBA==", [Packet(M, "hello"), Packet(M, b"\x01\x02\x03\x04")]),
        ("1", [Packet(PacketType.CLOSE)]),
        ("3\x1e4€", [Packet(PacketType.PONG), Packet(M, "€")]),
    ],
)
def test_decode_payload(body: str, packets: list[Packet]) -> None:
    assert decode_payload(body) == packets


def test_round_trip() -> None:
    packets = [Packet(M, "0"), Packet(M, b"\x00\xff"), Packet(M, '2["a"]'), Packet(PacketType.PING)]
    assert decode_payload(encode_payload(encode_packet(p) for p in packets)) == packets


@pytest.mark.parametrize(
    "body",
    [
        "",  # an empty body holds one empty record
        "4a\x1e",  # trailing separator: empty record
        "\x1e4a",
        "4a\x1e\x1e4b",
        "abc",  # the suite's "unparseable packet"
        "4a\x1e9",
        "4a\x1eb!!",
        "4a\x1eb\ud800",
        "4a\x1e\u0664x",
        "\x1e" * 5,
        "4a\x1e" * 20 + "b====",
    ],
)
def test_decode_invalid_payload(body: str) -> None:
    with pytest.raises(RemoteProtocolError):
        decode_payload(body)


def test_packet_count_limit() -> None:
    assert len(decode_payload("\x1e".join(["2"] * 5), max_packets=5)) == 5
    with pytest.raises(RemoteProtocolError):
        decode_payload("\x1e".join(["2"] * 6), max_packets=5)


@pytest.mark.parametrize("body", ["\x1e" * 1_000_000, "2\x1e" * 500_000, "4" + "\x1e" * 999_999])
def test_packet_count_limit_on_huge_bodies(body: str) -> None:
    """split() stops after max_packets: a body of separators costs one bounded pass."""
    with pytest.raises(RemoteProtocolError):
        decode_payload(body)
