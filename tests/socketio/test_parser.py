"""The per-connection Socket.IO decoder: text parts and the binary attachments they announce (§2.2)."""

from __future__ import annotations

import pytest

from fastapi_realtime.exceptions import RemoteProtocolError
from fastapi_realtime.socketio.packet import Packet, PacketType as T, encode
from fastapi_realtime.socketio.parser import Decoder


def feed_all(decoder: Decoder, parts: list[str | bytes]) -> list[Packet | None]:
    return [decoder.feed(part) for part in parts]


@pytest.mark.parametrize(
    ("parts", "packet"),
    [
        (['2["foo"]'], Packet(T.EVENT, "/", ["foo"])),
        (['2/admin,5["x",1]'], Packet(T.EVENT, "/admin", ["x", 1], 5)),
        (
            ['51-["baz",{"_placeholder":true,"num":0}]', b"\x01\x02"],
            Packet(T.BINARY_EVENT, "/", ["baz", b"\x01\x02"]),
        ),
        (
            ['61-15["bar",{"_placeholder":true,"num":0}]', b""],
            Packet(T.BINARY_ACK, "/", ["bar", b""], 15),
        ),
        (
            # Attachments may be used out of order, more than once, and nested.
            [
                '52-/admin,3["e",{"k":[{"_placeholder":true,"num":1}]},'
                '{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
                b"zero",
                b"one",
            ],
            Packet(T.BINARY_EVENT, "/admin", ["e", {"k": [b"one"]}, b"zero", b"one"], 3),
        ),
        # Zero attachments: complete at once.
        (['50-["x",{"a":1}]'], Packet(T.BINARY_EVENT, "/", ["x", {"a": 1}])),
    ],
)
def test_complete_packets(parts: list[str | bytes], packet: Packet) -> None:
    results = feed_all(Decoder(), parts)
    assert results[:-1] == [None] * (len(parts) - 1)
    assert results[-1] == packet


def test_encode_then_decode() -> None:
    data = ["file", {"name": "a.bin", "body": b"\x00" * 3}, [b"\xff", "text"]]
    parts = encode(Packet(T.EVENT, "/up", data, 9))
    assert feed_all(Decoder(), parts)[-1] == Packet(T.BINARY_EVENT, "/up", data, 9)


def test_decoder_is_reusable_after_a_packet() -> None:
    decoder = Decoder()
    assert decoder.feed('51-["a",{"_placeholder":true,"num":0}]') is None
    assert decoder.feed(b"1") == Packet(T.BINARY_EVENT, "/", ["a", b"1"])
    assert decoder.feed('2["b"]') == Packet(T.EVENT, "/", ["b"])
    assert decoder.feed('51-["c",{"_placeholder":true,"num":0}]') is None
    assert decoder.feed(b"2") == Packet(T.BINARY_EVENT, "/", ["c", b"2"])


def test_binary_without_pending_packet() -> None:
    with pytest.raises(RemoteProtocolError):
        Decoder().feed(b"\x01")


def test_binary_after_packet_completed() -> None:
    decoder = Decoder()
    decoder.feed('51-["a",{"_placeholder":true,"num":0}]')
    decoder.feed(b"1")
    with pytest.raises(RemoteProtocolError):
        decoder.feed(b"extra")


@pytest.mark.parametrize("text", ['2["x"]', '51-["y",{"_placeholder":true,"num":0}]', "40"])
def test_text_while_attachments_due(text: str) -> None:
    decoder = Decoder()
    assert decoder.feed('52-["a",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]') is None
    assert decoder.feed(b"first") is None
    with pytest.raises(RemoteProtocolError):
        decoder.feed(text)


@pytest.mark.parametrize(
    "placeholder",
    [
        '{"_placeholder":true,"num":1}',  # only one attachment announced
        '{"_placeholder":true,"num":-1}',
        '{"_placeholder":true,"num":"0"}',
        '{"_placeholder":true,"num":null}',
        '{"_placeholder":true}',
    ],
)
def test_invalid_placeholder(placeholder: str) -> None:
    decoder = Decoder()
    assert decoder.feed(f'51-["a",{placeholder}]') is None
    with pytest.raises(RemoteProtocolError):
        decoder.feed(b"x")


def test_placeholder_with_zero_attachments() -> None:
    with pytest.raises(RemoteProtocolError):
        Decoder().feed('50-["a",{"_placeholder":true,"num":0}]')


def test_placeholder_with_extra_keys_is_still_a_placeholder() -> None:
    """Node's reconstructor replaces any object whose `_placeholder` is true."""
    decoder = Decoder()
    decoder.feed('51-["a",{"_placeholder":true,"num":0,"extra":1}]')
    assert decoder.feed(b"x") == Packet(T.BINARY_EVENT, "/", ["a", b"x"])


def test_not_a_placeholder() -> None:
    decoder = Decoder()
    decoder.feed('51-["a",{"_placeholder":false,"num":0},{"_placeholder":true,"num":0}]')
    assert decoder.feed(b"x") == Packet(T.BINARY_EVENT, "/", ["a", {"_placeholder": False, "num": 0}, b"x"])


def test_max_attachments_option() -> None:
    decoder = Decoder(max_attachments=2)
    with pytest.raises(RemoteProtocolError):
        decoder.feed('53-["a"]')
    assert Decoder(max_attachments=2).feed('52-["a"]') is None


def test_invalid_text_is_a_protocol_error() -> None:
    with pytest.raises(RemoteProtocolError):
        Decoder().feed('2abc["foo"]')
