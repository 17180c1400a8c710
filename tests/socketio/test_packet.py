"""Socket.IO v5 packet encoding and text decoding (protocol.md §2.1, §2.2)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from fastapi_realtime.exceptions import RemoteProtocolError
from fastapi_realtime.socketio.packet import (
    RESERVED_EVENTS,
    Header,
    Packet,
    decode_text,
    encode,
)
from fastapi_realtime.socketio.packet import (
    PacketType as T,
)

PH0 = {"_placeholder": True, "num": 0}


def decode(text: str, max_attachments: int = 10) -> Header:
    return decode_text(text, max_attachments=max_attachments)


# --------------------------------------------------------------------------- encode


@pytest.mark.parametrize(
    ("packet", "parts"),
    [
        (Packet(T.CONNECT), ["0"]),
        (Packet(T.CONNECT, "/admin", {"sid": "x"}), ['0/admin,{"sid":"x"}']),
        (Packet(T.CONNECT_ERROR, "/", {"message": "Not authorized"}), ['4{"message":"Not authorized"}']),
        (Packet(T.EVENT, "/", ["foo"]), ['2["foo"]']),
        (Packet(T.EVENT, "/admin", ["bar"]), ['2/admin,["bar"]']),
        (Packet(T.EVENT, "/", ["foo"], 12), ['212["foo"]']),
        (Packet(T.EVENT, "/", ["question", 1], 0), ['20["question",1]']),
        (Packet(T.ACK, "/admin", ["bar"], 13), ['3/admin,13["bar"]']),
        (Packet(T.ACK, "/", [], 0), ["30[]"]),
        (Packet(T.DISCONNECT), ["1"]),
        (Packet(T.DISCONNECT, "/admin"), ["1/admin,"]),
        # Non-ASCII text travels as UTF-8, not as \u escapes.
        (Packet(T.EVENT, "/", ["é", "€"]), ['2["é","€"]']),
        (Packet(T.EVENT, "/", ["x", {"a": None, "b": [True, 1.5]}]), ['2["x",{"a":null,"b":[true,1.5]}]']),
    ],
)
def test_encode(packet: Packet, parts: list[str | bytes]) -> None:
    assert encode(packet) == parts


@pytest.mark.parametrize(
    ("packet", "parts"),
    [
        # EVENT with bytes becomes BINARY_EVENT, ACK becomes BINARY_ACK (type promotion).
        (
            Packet(T.EVENT, "/", ["baz", b"\x01\x02"]),
            ['51-["baz",{"_placeholder":true,"num":0}]', b"\x01\x02"],
        ),
        (
            Packet(T.ACK, "/", ["bar", b"\xff"], 15),
            ['61-15["bar",{"_placeholder":true,"num":0}]', b"\xff"],
        ),
        (
            Packet(T.EVENT, "/admin", ["e", bytearray(b"a"), memoryview(b"b")], 7),
            [
                '52-/admin,7["e",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
                b"a",
                b"b",
            ],
        ),
        (Packet(T.EVENT, "/", ["empty", b""]), ['51-["empty",{"_placeholder":true,"num":0}]', b""]),
    ],
)
def test_encode_binary(packet: Packet, parts: list[str | bytes]) -> None:
    out = encode(packet)
    assert out == parts
    assert all(type(part) is bytes for part in out[1:])


def test_encode_placeholders_depth_first() -> None:
    data = ["ev", b"0", {"a": b"1", "b": [b"2", {"c": b"3"}]}, b"4"]
    text, *attachments = encode(Packet(T.EVENT, "/", data))
    assert attachments == [b"0", b"1", b"2", b"3", b"4"]
    assert text == (
        '55-["ev",{"_placeholder":true,"num":0},{"a":{"_placeholder":true,"num":1},'
        '"b":[{"_placeholder":true,"num":2},{"c":{"_placeholder":true,"num":3}}]},'
        '{"_placeholder":true,"num":4}]'
    )


def test_encode_default_hook() -> None:
    when = datetime.date(2024, 1, 2)
    assert encode(Packet(T.EVENT, "/", ["d", when]), default=lambda o: o.isoformat()) == ['2["d","2024-01-02"]']


def test_encode_unknown_type_without_hook() -> None:
    with pytest.raises(TypeError, match="type object is not JSON serializable"):
        encode(Packet(T.EVENT, "/", ["x", object()]))


@pytest.mark.parametrize(
    ("data", "where"),
    [
        (["x", float("inf")], r"data\[1\] is inf"),
        (["x", {"a": [1.5, float("-inf")]}], r"data\[1\]\['a'\]\[1\] is -inf"),
        (["x", float("nan")], r"data\[1\] is nan"),
        (["x", b"bin", (float("nan"),)], r"data\[2\]\[0\] is nan"),  # the binary pass too
    ],
)
def test_encode_non_finite_float_is_a_clear_error(data: list[Any], where: str) -> None:
    """JSON has no inf or nan: Python's `Infinity`/`NaN` would make every client's JSON.parse fail."""
    with pytest.raises(ValueError, match=where + ".*JSON has no inf or nan"):
        encode(Packet(T.EVENT, "/", data))


def test_encode_reference_cycle_is_a_clear_error() -> None:
    cycle: list[Any] = ["x"]
    cycle.append(cycle)
    with pytest.raises(ValueError, match="reference cycle"):
        encode(Packet(T.EVENT, "/", cycle))


def test_encode_default_hook_error_is_chained() -> None:
    def refuse(obj: Any) -> Any:
        raise ValueError("no")

    with pytest.raises(ValueError, match="cannot encode EVENT data as JSON: no") as info:
        encode(Packet(T.EVENT, "/", ["x", object()]), default=refuse)
    assert isinstance(info.value.__cause__, ValueError)


@pytest.mark.parametrize(
    ("text", "written"),
    [
        ("\ud800", "\\ud800"),
        ("a\udfffé", "a\\udfffé"),
        ("é😀", "é😀"),  # astral characters are not surrogates in a Python str
    ],
)
def test_encode_escapes_lone_surrogates(text: str, written: str) -> None:
    """A client can send `"\\ud800"` (valid JSON); echoed raw it could not be written as UTF-8.
    JavaScript's JSON.stringify writes such a code point as a `\\uXXXX` escape, and so do we."""
    (body,) = encode(Packet(T.EVENT, "/", ["m", text]))
    assert body == f'2["m","{written}"]'
    assert isinstance(body, str)
    body.encode("utf-8")
    assert decode(body).packet.data == ["m", text]


def test_encode_binary_and_hook_together() -> None:
    text, attachment = encode(Packet(T.EVENT, "/", ["x", {1, 2}, b"z"]), default=sorted)
    assert text == '51-["x",[1,2],{"_placeholder":true,"num":0}]'
    assert attachment == b"z"


# --------------------------------------------------------------------------- decode


@pytest.mark.parametrize(
    ("text", "packet", "attachments"),
    [
        # Every example of protocol.md §2.2.
        ("0", Packet(T.CONNECT, "/", None, None), 0),
        ('0/admin,{"sid":"x"}', Packet(T.CONNECT, "/admin", {"sid": "x"}), 0),
        ('4{"message":"Not authorized"}', Packet(T.CONNECT_ERROR, "/", {"message": "Not authorized"}), 0),
        ('2["foo"]', Packet(T.EVENT, "/", ["foo"]), 0),
        ('2/admin,["bar"]', Packet(T.EVENT, "/admin", ["bar"]), 0),
        ('212["foo"]', Packet(T.EVENT, "/", ["foo"], 12), 0),
        ('3/admin,13["bar"]', Packet(T.ACK, "/admin", ["bar"], 13), 0),
        ('51-["baz",{"_placeholder":true,"num":0}]', Packet(T.BINARY_EVENT, "/", ["baz", PH0]), 1),
        ('61-15["bar",{"_placeholder":true,"num":0}]', Packet(T.BINARY_ACK, "/", ["bar", PH0], 15), 1),
        ("1", Packet(T.DISCONNECT), 0),
        ("1/admin,", Packet(T.DISCONNECT, "/admin"), 0),
        # The namespace may end at the end of the string (no comma).
        ("0/custom", Packet(T.CONNECT, "/custom"), 0),
        ("1/custom", Packet(T.DISCONNECT, "/custom"), 0),
        ("0/admin,", Packet(T.CONNECT, "/admin"), 0),
        ('0{"token":"123"}', Packet(T.CONNECT, "/", {"token": "123"}), 0),
        ('0/a/b,{"x":[1]}', Packet(T.CONNECT, "/a/b", {"x": [1]}), 0),
        # Ack ids: the digit run right after the namespace.
        ('20["question",1]', Packet(T.EVENT, "/", ["question", 1], 0), 0),
        ('2/admin,0["x"]', Packet(T.EVENT, "/admin", ["x"], 0), 0),
        ('2123456789012["x"]', Packet(T.EVENT, "/", ["x"], 123456789012), 0),
        ("30[]", Packet(T.ACK, "/", [], 0), 0),
        ('3/admin,1["a",{"b":null}]', Packet(T.ACK, "/admin", ["a", {"b": None}], 1), 0),
        ('52-/admin,7["e",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
         Packet(T.BINARY_EVENT, "/admin", ["e", PH0, {"_placeholder": True, "num": 1}], 7), 2),
        # Binary types may announce 0 attachments.
        ('50-["x"]', Packet(T.BINARY_EVENT, "/", ["x"]), 0),
        ("60-3[]", Packet(T.BINARY_ACK, "/", [], 3), 0),
        # Numbers are valid event names, unicode text is fine.
        ("2[42]", Packet(T.EVENT, "/", [42]), 0),
        ('2["é",{"€":1}]', Packet(T.EVENT, "/", ["é", {"€": 1}]), 0),
        # A placeholder in a plain EVENT is just an object.
        ('2["x",{"_placeholder":true,"num":0}]', Packet(T.EVENT, "/", ["x", PH0]), 0),
    ],
)
def test_decode_text(text: str, packet: Packet, attachments: int) -> None:
    assert decode(text) == Header(packet, attachments)


def test_decode_connect_error_string_payload() -> None:
    """CONNECT_ERROR: an object (v5) or a string (legacy) per the Node decoder (§2.1)."""
    assert decode('4"legacy"').packet == Packet(T.CONNECT_ERROR, "/", "legacy")


@pytest.mark.parametrize("name", sorted(RESERVED_EVENTS))
def test_decode_reserved_event_names(name: str) -> None:
    with pytest.raises(RemoteProtocolError):
        decode(f'2["{name}"]')
    with pytest.raises(RemoteProtocolError):
        decode(f'51-["{name}",{{"_placeholder":true,"num":0}}]')


def test_reserved_event_names_match_node() -> None:
    assert RESERVED_EVENTS == {
        "connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"
    }


@pytest.mark.parametrize(
    "text",
    [
        # unknown or missing type
        "7",
        "9[]",
        "x",
        "abc",
        "-1",
        "\u0662[]",  # a non-ASCII digit
        # bad JSON
        '2["foo"',
        "2[foo]",
        "2[1,]",
        '0{"a":}',
        # junk where the ack id would be: not an id, so the JSON parse fails (§2.2)
        'abc["foo"]',
        '2abc["foo"]',
        '2/admin,abc["foo"]',
        # EVENT payload must be a non-empty array starting with a string or a number. (Node
        # validates only a payload that is present, so `2` alone is left out on purpose.)
        "2{}",
        "2[]",
        '2"foo"',
        "2[null]",
        "2[true]",
        '2[["x"]]',
        '2[{"a":1}]',
        # ACK payload must be an array
        "31{}",
        '31"x"',
        # DISCONNECT carries no payload
        "1{}",
        '1["x"]',
        "1/admin,{}",
        "1null",
        # CONNECT payload is an object if present
        "0[]",
        '0"token"',
        "0/admin,[1]",
        "0/admin,null",
        # namespace must start with "/"
        'admin,["x"]',
        '2admin,["x"]',
    ],
)
def test_decode_invalid(text: str) -> None:
    with pytest.raises(RemoteProtocolError):
        decode(text)


@pytest.mark.parametrize(
    "text",
    [
        '5-1-["x"]',  # negative count
        '51.5-["x"]',  # non-integer count
        '5a-["x"]',
        '51["x"]',  # no dash
        '51["a-b"]',  # a dash in the data is not the count's
        '5\u0661-["x"]',  # ARABIC-INDIC DIGIT ONE
        '5\u00b9-["x"]',  # SUPERSCRIPT ONE: str.isdigit() says yes
        '511-["x"]',  # 11 > max_attachments
        '699-1[]',
        "5",
    ],
)
def test_decode_illegal_attachments(text: str) -> None:
    with pytest.raises(RemoteProtocolError):
        decode(text)


def test_attachment_limit() -> None:
    assert decode('510-["x"]').attachments == 10
    assert decode('53-["x"]', max_attachments=3).attachments == 3
    with pytest.raises(RemoteProtocolError):
        decode('54-["x"]', max_attachments=3)
    with pytest.raises(RemoteProtocolError):
        decode('51-["x"]', max_attachments=0)


@pytest.mark.parametrize(
    "text",
    ["2[1.5]", "2[-3]", "2[0]"],
)
def test_decode_numeric_event_names(text: str) -> None:
    """Node accepts any JSON number as an event name (`typeof payload[0] === "number"`)."""
    header = decode(text)
    assert header.packet.type is T.EVENT


def test_decode_deeply_nested_json_is_a_protocol_error() -> None:
    with pytest.raises(RemoteProtocolError):
        decode("2" + "[" * 100_000 + "]" * 100_000)
    with pytest.raises(RemoteProtocolError):
        decode("2" + "[" * 1_000_000)


def test_decode_nested_event_within_the_parser_limit() -> None:
    header = decode('2["x",' + "[" * 500 + "]" * 500 + "]")
    assert header.packet.data[0] == "x"


MAX_SAFE_INTEGER = 2**53 - 1


@pytest.mark.parametrize(
    ("text", "ack_id"),
    [
        (f'2{MAX_SAFE_INTEGER}["x"]', MAX_SAFE_INTEGER),
        (f"3/admin,{MAX_SAFE_INTEGER}[]", MAX_SAFE_INTEGER),
        ('2007["x"]', 7),  # leading zeros: Number("007") is 7 in Node too
        ('20000000000000001["x"]', 1),  # 16 digits
    ],
)
def test_decode_largest_ack_ids(text: str, ack_id: int) -> None:
    assert decode(text).packet.id == ack_id


@pytest.mark.parametrize(
    "text",
    [
        f'2{MAX_SAFE_INTEGER + 1}["x"]',  # 9007199254740992: JavaScript cannot tell it from ...993
        '29999999999999999["x"]',
        '2123456789012345678["x"]',
        '200000000000000001["x"]',  # 17 digits, even if the value is small
        "2" + "1" * 5000 + '["x"]',  # past Python's int-string-digits limit: no ValueError
        "3" + "9" * 100_000 + "[]",
        "2/admin," + "1" * 5000 + '["x"]',
        "6" + "1-" + "1" * 5000 + "[]",
        "2" + "1" * 5000,
    ],
)
def test_decode_ack_id_out_of_range(text: str) -> None:
    with pytest.raises(RemoteProtocolError, match="ack id"):
        decode(text)


@pytest.mark.parametrize(
    "text",
    [
        "5" + "1" * 5000 + '-["x"]',
        "6" + "1" * 5000 + "-1[]",
        "5" + "0" * 5000 + '-["x"]',
        "5" + "1" * 17 + '-["x"]',
        "5" + "1" * 100_000,
        "5" + "1" * 100_000 + "-",
    ],
)
def test_decode_huge_attachment_count(text: str) -> None:
    with pytest.raises(RemoteProtocolError):
        decode(text)


@pytest.mark.parametrize(
    "payload",
    [
        "1e999",
        "-1e999",
        "1E400",
        "1.5e+309",
        "1" + "0" * 400 + ".0",  # no exponent, still past the largest double
        "NaN",
        "Infinity",
        "-Infinity",
        '{"a":[1,NaN]}',
        '{"a":{"b":-Infinity}}',
    ],
)
def test_decode_non_finite_number_is_invalid(payload: str) -> None:
    """JSON numbers are finite; Python's json would read these as inf/nan (Node's JSON.parse
    refuses the literals and turns an overflow into Infinity); here both are invalid payloads."""
    with pytest.raises(RemoteProtocolError, match="invalid JSON"):
        decode(f'2["m",{payload}]')
    with pytest.raises(RemoteProtocolError, match="invalid JSON"):
        decode(f"31[{payload}]")


@pytest.mark.parametrize(
    ("payload", "value"),
    [("1e308", 1e308), ("-1.7976931348623157e308", -1.7976931348623157e308), ("1e-999", 0.0),
     ("2.5E-3", 0.0025), ("-0.0", -0.0), ("1" + "0" * 400, 10**400)],
)
def test_decode_large_finite_numbers(payload: str, value: float) -> None:
    assert decode(f'2["m",{payload}]').packet.data == ["m", value]


@pytest.mark.parametrize(
    ("text", "data"),
    [
        # JSON allows whitespace around the value, so does Node's JSON.parse.
        ('2 ["x"]', ["x"]),
        ('2\r\n\t ["x"] \n', ["x"]),
        ('2/admin, ["x"]', ["x"]),
        ('27 ["x"]', ["x"]),
        ("3  []", []),
    ],
)
def test_decode_whitespace_around_json(text: str, data: Any) -> None:
    assert decode(text).packet.data == data


@pytest.mark.parametrize(
    "text",
    ['2["x"] ["y"]', '2["x"]x', "2 ", "2\t", '2["x"]\u00a0', '2\u00a0["x"]', '2\ufeff["x"]', "0{} {}"],
)
def test_decode_junk_around_json(text: str) -> None:
    with pytest.raises(RemoteProtocolError):
        decode(text)


@pytest.mark.parametrize(
    ("text", "namespace"),
    [
        ('2/,["x"]', "/"),
        ('2/a/b/c,["x"]', "/a/b/c"),
        ('2/é€😀,["x"]', "/é€😀"),
        ('2/\ud800,["x"]', "/\ud800"),  # a str with a lone surrogate (cannot come off the wire)
        ('2/a?b=c#d,["x"]', "/a?b=c#d"),
        ("0/" + "n" * 100_000, "/" + "n" * 100_000),
    ],
)
def test_decode_odd_namespaces(text: str, namespace: str) -> None:
    """Node keeps whatever sits between the `/` and the first `,`; the server decides if it exists."""
    assert decode(text).packet.namespace == namespace


def test_decode_lone_surrogates_in_strings() -> None:
    assert decode('2["\\ud800","\ud800"]').packet.data == ["\ud800", "\ud800"]


@pytest.mark.parametrize(
    "packet",
    [
        Packet(T.CONNECT, "/admin", {"token": "t"}),
        Packet(T.EVENT, "/", ["foo", 1, {"a": [None, "b"]}], 3),
        Packet(T.EVENT, "/chat", ["msg"]),
        Packet(T.ACK, "/x", ["ok"], 0),
        Packet(T.DISCONNECT, "/admin"),
        Packet(T.DISCONNECT),
    ],
)
def test_round_trip(packet: Packet) -> None:
    (text,) = encode(packet)
    assert isinstance(text, str)
    assert decode(text).packet == packet


def test_round_trip_binary_header() -> None:
    text, *attachments = encode(Packet(T.EVENT, "/n", ["e", b"1", [b"2"]], 4))
    assert isinstance(text, str)
    header = decode(text)
    assert header.attachments == len(attachments) == 2
    data: Any = header.packet.data
    assert header.packet == Packet(T.BINARY_EVENT, "/n", data, 4)
    assert data == ["e", PH0, [{"_placeholder": True, "num": 1}]]
