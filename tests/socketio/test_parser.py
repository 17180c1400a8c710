"""The per-connection Socket.IO decoder: text parts and the binary attachments they announce (§2.2)."""

from __future__ import annotations

import pytest

from fastapi_realtime.exceptions import RemoteProtocolError
from fastapi_realtime.socketio.packet import Packet, encode
from fastapi_realtime.socketio.packet import PacketType as T
from fastapi_realtime.socketio.parser import Decoder


def _nested(depth: int, leaf: object) -> object:
    for _ in range(depth):
        leaf = [leaf]
    return leaf


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
            # Attachments may be referenced out of order and nested.
            [
                '52-/admin,3["e",{"k":[{"_placeholder":true,"num":1}]},{"_placeholder":true,"num":0}]',
                b"zero",
                b"one",
            ],
            Packet(T.BINARY_EVENT, "/admin", ["e", {"k": [b"one"]}, b"zero"], 3),
        ),
        (
            # Deeper than Python's recursion limit would allow a recursive walk (json.loads still parses it).
            ['51-["deep",' + "[" * 900 + '{"_placeholder":true,"num":0}' + "]" * 900 + "]", b"x"],
            Packet(T.BINARY_EVENT, "/", ["deep", _nested(900, b"x")]),
        ),
        (
            # A placeholder inside a placeholder goes with it (Node does not look inside either).
            ['51-["a",{"_placeholder":true,"num":0,"inner":{"_placeholder":true,"num":0}}]', b"x"],
            Packet(T.BINARY_EVENT, "/", ["a", b"x"]),
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
        # num must be an int: not a float (Node would take 0.0), not a bool
        '{"_placeholder":true,"num":0.0}',
        '{"_placeholder":true,"num":true}',
        '{"_placeholder":true,"num":false}',
        '{"_placeholder":true,"num":1e0}',
        '{"_placeholder":true,"num":[0]}',
        '{"_placeholder":true,"num":99999999999999999999999}',
        # not a placeholder (`_placeholder` must be the boolean true), so attachment 0 is never referenced
        '{"_placeholder":1,"num":0}',
        '{"_placeholder":"true","num":0}',
        '{"_placeholder":false,"num":0}',
        '{"num":0}',
        '[{"_placeholder":null,"num":0}]',
        # the only attachment referenced twice
        '{"_placeholder":true,"num":0},{"_placeholder":true,"num":0}',
        '{"x":{"_placeholder":true,"num":0}},[{"_placeholder":true,"num":0}]',
    ],
)
def test_invalid_placeholder(placeholder: str) -> None:
    decoder = Decoder()
    assert decoder.feed(f'51-["a",{placeholder}]') is None
    with pytest.raises(RemoteProtocolError, match="Illegal attachments"):
        decoder.feed(b"x")


@pytest.mark.parametrize(
    "placeholders",
    [
        "",  # neither referenced
        '{"_placeholder":true,"num":0}',  # attachment 1 never referenced
        '{"_placeholder":true,"num":1}',  # attachment 0 never referenced
        '{"_placeholder":true,"num":1},{"_placeholder":true,"num":1}',
        '{"_placeholder":true,"num":0},{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}',
        '{"_placeholder":true,"num":0},{"_placeholder":true,"num":2}',
    ],
)
def test_every_attachment_referenced_exactly_once(placeholders: str) -> None:
    decoder = Decoder()
    assert decoder.feed(f'52-["a",{placeholders}]'.replace(",]", "]")) is None
    assert decoder.feed(b"first") is None
    with pytest.raises(RemoteProtocolError, match="Illegal attachments"):
        decoder.feed(b"second")


@pytest.mark.parametrize(
    "text",
    [
        '50-["a",{"_placeholder":true,"num":0}]',
        '60-1[{"x":[{"_placeholder":true,"num":0}]}]',
        '50-["a",{"_placeholder":true}]',
    ],
)
def test_placeholder_with_zero_attachments(text: str) -> None:
    with pytest.raises(RemoteProtocolError, match="Illegal attachments"):
        Decoder().feed(text)


def test_decoder_is_reusable_after_an_illegal_packet_header() -> None:
    """The text part is checked before anything is pending, so a refused header leaves no state."""
    decoder = Decoder()
    with pytest.raises(RemoteProtocolError):
        decoder.feed("5" + "1" * 5000 + '-["a"]')
    assert decoder.feed('2["b"]') == Packet(T.EVENT, "/", ["b"])


def test_placeholder_with_extra_keys_is_still_a_placeholder() -> None:
    """Node's reconstructor replaces any object whose `_placeholder` is true, extra keys and all."""
    decoder = Decoder()
    decoder.feed('51-["a",{"_placeholder":true,"num":0,"extra":1}]')
    assert decoder.feed(b"x") == Packet(T.BINARY_EVENT, "/", ["a", b"x"])
    decoder.feed('51-["a",{"extra":{"k":1},"num":0,"_placeholder":true}]')
    assert decoder.feed(b"y") == Packet(T.BINARY_EVENT, "/", ["a", b"y"])


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
