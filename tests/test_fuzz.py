"""Property-based tests of every decoder: client input decodes or raises RemoteProtocolError,
nothing else, and costs time roughly linear in its length (issue 7, items 1 and 3a).

Three kinds of input: arbitrary text and bytes; near-valid packets (valid prefixes, random JSON,
random placeholders, small mutations) so the interesting paths are reached; and encoder
output, which must decode back to what was encoded. Last, adversarial 100 KB and 1 MB inputs
are timed against each other: a ratio, never an absolute time.
"""

from __future__ import annotations

import gc
import json
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastapi_realtime.engineio.packet import Packet as EioPacket
from fastapi_realtime.engineio.packet import PacketType as EioType
from fastapi_realtime.engineio.packet import decode_packet, encode_packet
from fastapi_realtime.engineio.payload import SEPARATOR, decode_payload, encode_payload
from fastapi_realtime.exceptions import RemoteProtocolError
from fastapi_realtime.socketio.packet import (
    MAX_ACK_ID,
    RESERVED_EVENTS,
    Packet,
    decode_text,
    encode,
)
from fastapi_realtime.socketio.packet import (
    PacketType as T,
)
from fastapi_realtime.socketio.parser import Decoder

FUZZ = settings(
    deadline=None,
    max_examples=150,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)

# Every code point, surrogates included: a str handed to the decoders need not be valid UTF-8.
ANY_CHAR = st.characters(exclude_categories=())
# Text biased to the characters the grammars care about.
PROTOCOL_CHARS = st.sampled_from(list('0123456789-/,[]{}":.eE+tfnrul_ \x1eb4\u0661\u00b2\ud800'))
ANY_TEXT = st.text(ANY_CHAR, max_size=200) | st.text(PROTOCOL_CHARS, max_size=200)


def _decodes_or_refuses(call: Callable[[], Any]) -> Any:
    """Run a decoder: anything it raises must be RemoteProtocolError; returns its result or None."""
    try:
        return call()
    except RemoteProtocolError:
        return None


# --------------------------------------------------------------------------- Engine.IO


@FUZZ
@given(ANY_TEXT)
def test_engineio_decode_packet_text(raw: str) -> None:
    packet = _decodes_or_refuses(lambda: decode_packet(raw))
    if packet is not None:
        assert isinstance(packet, EioPacket)
        assert raw[0] == "b" or packet == EioPacket(EioType(int(raw[0])), raw[1:])


@FUZZ
@given(st.binary(max_size=200))
def test_engineio_decode_packet_bytes(raw: bytes) -> None:
    assert decode_packet(raw) == EioPacket(EioType.MESSAGE, raw)


@FUZZ
@given(ANY_TEXT | st.lists(ANY_TEXT, max_size=8).map(SEPARATOR.join), st.integers(0, 10))
def test_engineio_decode_payload(body: str, max_packets: int) -> None:
    packets = _decodes_or_refuses(lambda: decode_payload(body, max_packets=max_packets))
    if packets is not None:
        assert 1 <= len(packets) <= max_packets


@FUZZ
@given(st.binary(max_size=120).map(lambda b: b.decode("latin-1")))
def test_engineio_decode_payload_latin1(body: str) -> None:
    _decodes_or_refuses(lambda: decode_payload(body))


ENGINE_TEXT_FRAMES = st.builds(
    lambda kind, data: f"{kind}{data}",
    st.integers(0, 6),
    st.text(ANY_CHAR.filter(lambda c: c != SEPARATOR), max_size=30),
)


@FUZZ
@given(st.lists(ENGINE_TEXT_FRAMES | st.binary(max_size=30), min_size=1, max_size=8))
def test_engineio_payload_round_trip(frames: list[str | bytes]) -> None:
    packets = decode_payload(encode_payload(frames))
    assert [encode_packet(p) for p in packets] == frames


# --------------------------------------------------------------------------- Socket.IO text


def _check_header(text: str, max_attachments: int) -> None:
    header = _decodes_or_refuses(lambda: decode_text(text, max_attachments=max_attachments))
    if header is None:
        return
    packet = header.packet
    assert isinstance(packet.type, T)
    assert packet.namespace.startswith("/")
    assert packet.id is None or 0 <= packet.id <= MAX_ACK_ID
    assert 0 <= header.attachments <= max_attachments
    assert header.attachments == 0 or packet.type in (T.BINARY_EVENT, T.BINARY_ACK)
    assert _finite(packet.data)


def _finite(data: Any) -> bool:
    """No inf or nan anywhere in decoded data (walked without recursion)."""
    stack = [data]
    while stack:
        value = stack.pop()
        if type(value) is float and not math.isfinite(value):
            return False
        if type(value) is list:
            stack.extend(value)
        elif type(value) is dict:
            stack.extend(value.values())
    return True


@FUZZ
@given(ANY_TEXT, st.integers(0, 12))
def test_socketio_decode_text_arbitrary(text: str, max_attachments: int) -> None:
    _check_header(text, max_attachments)


# Near-valid packets: each part is usually right and sometimes wrong.
JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=12,
)

# Raw JSON fragments a client might send, valid or not: numbers JSON has no room for,
# the constants Python's json would accept, and every shape of placeholder.
PLACEHOLDER_FLAGS = ["true", "1", '"true"', "false", "null", "0"]
PLACEHOLDER_NUMS = ["0", "1", "2", "9", "-1", "0.0", "1e0", "true", "false", '"0"', "null", "[0]", "1" * 30]
ODD_TOKENS = ["1e999", "-1e999", "1" + "0" * 400 + ".0", "NaN", "Infinity", "-Infinity", "1e308", "-0", "00", "01",
              "1.", ".5", "+1", "0x1", '"\\ud800"', '"\\u00"', "[", "]", "{", "}", ",", ":", '"', "tru"]


@st.composite
def placeholder_json(draw: st.DrawFn) -> str:
    flag = draw(st.sampled_from(PLACEHOLDER_FLAGS)) if draw(st.integers(0, 3)) == 0 else "true"
    parts = [f'"_placeholder":{flag}']
    if draw(st.integers(0, 8)):
        parts.append('"num":' + draw(st.sampled_from(PLACEHOLDER_NUMS)))
    if draw(st.booleans()) and draw(st.booleans()):
        parts.append('"extra":' + json.dumps(draw(JSON_VALUES)))
    parts = draw(st.permutations(parts))
    return "{" + ",".join(parts) + "}"


@st.composite
def json_with_holes(draw: st.DrawFn, depth: int = 0) -> str:
    """JSON text with placeholders and odd tokens dropped in at random places."""
    choice = draw(st.integers(0, 9))
    if choice <= 3 or depth > 3:
        return json.dumps(draw(JSON_VALUES), ensure_ascii=draw(st.booleans()))
    if choice <= 5:
        return draw(placeholder_json())
    if choice == 6:
        return draw(st.sampled_from(ODD_TOKENS))
    items = draw(st.lists(json_with_holes(depth + 1), max_size=4))
    if choice == 7:
        key = st.sampled_from(["a", "_placeholder", "num", "b"])
        keys = draw(st.lists(key, min_size=len(items), max_size=len(items)))
        return "{" + ",".join(f'"{k}":{v}' for k, v in zip(keys, items)) + "}"
    return "[" + ",".join(items) + "]"


@st.composite
def event_payload(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(['"message"', '"ev"', "1", "1.5", '"connect"', "null", "[]", PLACEHOLDER_FLAGS[0]]))
    rest = draw(st.lists(json_with_holes(), max_size=4))
    nesting = draw(st.sampled_from([0, 0, 0, 1, 50, 600]))
    body = "[" + ",".join([name, *rest]) + "]"
    return "[" * nesting + body + "]" * nesting if nesting else body


@st.composite
def near_valid_text(draw: st.DrawFn) -> str:
    type_ = draw(st.sampled_from([*"0123456" * 3, "7", "", "a", "\u0662"]))
    count = ""
    if type_ in ("5", "6") or draw(st.integers(0, 9)) == 0:
        count = draw(st.sampled_from(["0", "1", "2", "3"] * 3 + ["10", "11", "01", "", "-1", "1.5", "x", "\u0661",
                                      "1" * 17, "1" * 5000]))
        count += draw(st.sampled_from(["-"] * 6 + ["", "--"]))
    namespace = draw(st.sampled_from(["", "", "", "/admin,", "/", "/,", "/a/b,", "/é,", "admin,", "/x"]))
    ack = draw(st.sampled_from(["", "", "", "0", "7", "007", str(MAX_ACK_ID), str(MAX_ACK_ID + 1), "1" * 17,
                                "1" * 5000, " "]))
    if type_ in ("2", "5") and draw(st.integers(0, 3)):
        payload = draw(event_payload())
    else:
        payload = draw(json_with_holes() | st.sampled_from(["", "", "{}", '{"token":1}', '"x"', "[]"]))
    text: str = type_ + count + namespace + ack + payload
    if len(text) > 1 and draw(st.integers(0, 5)) == 5:  # one small mutation
        at = draw(st.integers(1, len(text) - 1))
        how = draw(st.integers(0, 2))
        if how == 0:
            text = text[:at]
        elif how == 1:
            text = text[:at] + text[at + 1:]
        else:
            text = text[:at] + draw(PROTOCOL_CHARS) + text[at:]
    return text


@FUZZ
@given(near_valid_text(), st.integers(0, 12))
def test_socketio_decode_text_near_valid(text: str, max_attachments: int) -> None:
    _check_header(text, max_attachments)


# --------------------------------------------------------------------------- binary reassembly


def _placeholders_left(data: Any) -> bool:
    stack = [data]
    while stack:
        value = stack.pop()
        if type(value) is dict:
            if value.get("_placeholder") is True:
                return True
            stack.extend(value.values())
        elif type(value) is list:
            stack.extend(value)
    return False


def _bytes_in(data: Any) -> list[bytes]:
    found, stack = [], [data]
    while stack:
        value = stack.pop()
        if type(value) is bytes:
            found.append(value)
        elif type(value) is dict:
            stack.extend(value.values())
        elif type(value) is list:
            stack.extend(value)
    return found


def _feed(decoder: Decoder, parts: list[str | bytes]) -> Iterator[Packet]:
    """Feed parts in turn as a connection would, stopping at the first refusal (it would close)."""
    for part in parts:
        try:
            packet = decoder.feed(part)
        except RemoteProtocolError:
            return
        if packet is not None:
            yield packet


def _check_reassembled(packet: Packet, attachments_fed: list[bytes]) -> None:
    assert _finite(packet.data)
    if packet.type in (T.BINARY_EVENT, T.BINARY_ACK):
        # Every attachment sits in the data exactly once, and no placeholder is left.
        assert not _placeholders_left(packet.data)
        assert sorted(_bytes_in(packet.data)) == sorted(attachments_fed)


@st.composite
def binary_stream(draw: st.DrawFn) -> list[str | bytes]:
    """A text part announcing attachments, then some binary parts (the right number or not),
    maybe interleaved with another text part."""
    count = draw(st.integers(0, 4))
    refs = draw(st.lists(st.integers(-1, count), max_size=count + 2))
    if draw(st.booleans()):
        refs = list(range(count))  # the valid case: each once, in order ...
        refs = draw(st.permutations(refs))  # ... or in any order
    holes = [_ph_text(num) if num >= 0 else draw(placeholder_json()) for num in refs]
    filler = draw(st.lists(json_with_holes(), max_size=2))
    items = draw(st.permutations(['"message"', *holes, *filler]))
    if items and items[0] != '"message"' and draw(st.booleans()):
        items = ['"message"', *items]
    nesting = draw(st.sampled_from([0, 0, 1, 3, 200]))
    body = "[" + ",".join(items) + "]"
    if nesting:
        body = '["message",' + "[" * nesting + body + "]" * nesting + "]"
    kind = draw(st.sampled_from(["5", "6"]))
    ack = draw(st.sampled_from(["", "3"])) if kind == "5" else "3"
    text = f"{kind}{count}-{draw(st.sampled_from(['', '/admin,']))}{ack}{body}"
    sent = count + draw(st.integers(-1, 1)) if draw(st.integers(0, 3)) == 0 else count
    parts: list[str | bytes] = [text, *(draw(st.binary(max_size=8)) for _ in range(max(sent, 0)))]
    if draw(st.integers(0, 5)) == 0:
        parts.insert(draw(st.integers(0, len(parts))), draw(near_valid_text()))
    return parts


def _ph_text(num: int) -> str:
    return '{"_placeholder":true,"num":' + str(num) + "}"


@FUZZ
@given(binary_stream(), st.integers(0, 6))
def test_decoder_binary_reassembly(parts: list[str | bytes], max_attachments: int) -> None:
    decoder = Decoder(max_attachments=max_attachments)
    fed: list[bytes] = []
    for part in parts:
        try:
            packet = decoder.feed(part)
        except RemoteProtocolError:
            return  # the connection closes here
        if isinstance(part, bytes):
            fed.append(part)
        if packet is not None:
            _check_reassembled(packet, fed if packet.type >= T.BINARY_EVENT else [])
            fed = []


@FUZZ
@given(st.lists(ANY_TEXT | st.binary(max_size=20) | near_valid_text(), max_size=6))
def test_decoder_arbitrary_parts(parts: list[str | bytes]) -> None:
    for packet in _feed(Decoder(), parts):
        assert _finite(packet.data)


# --------------------------------------------------------------------------- round trips


FINITE_FLOATS = st.floats(allow_nan=False, allow_infinity=False)
ANY_STRINGS = st.text(ANY_CHAR, max_size=10)  # surrogates included: the encoder escapes them
ENCODABLE = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**64), 2**64) | FINITE_FLOATS | ANY_STRINGS | st.binary(max_size=6),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(ANY_STRINGS.filter(lambda k: k != "_placeholder"), inner, max_size=4),
    max_leaves=15,
)
EVENT_NAMES = ANY_STRINGS.filter(lambda name: name not in RESERVED_EVENTS) | st.integers(-1000, 1000) | FINITE_FLOATS
# Namespaces are the server's own names (never JSON-escaped): no surrogates.
NAMESPACES = st.just("/") | st.text(
    st.characters(exclude_characters=",", exclude_categories=("Cs",)), min_size=1, max_size=8
).map("/".__add__)
ACK_IDS = st.none() | st.integers(0, MAX_ACK_ID)


@FUZZ
@given(st.sampled_from([T.EVENT, T.ACK]), NAMESPACES, EVENT_NAMES, st.lists(ENCODABLE, max_size=4), ACK_IDS)
def test_encode_then_decode(kind: T, namespace: str, name: Any, args: list[Any], ack_id: int | None) -> None:
    data = [name, *args] if kind is T.EVENT else args
    if kind is T.ACK and ack_id is None:
        ack_id = 0
    parts = encode(Packet(kind, namespace, data, ack_id))
    assert isinstance(parts[0], str)
    parts[0].encode("utf-8")  # writable on the wire, lone surrogates and all
    packets = list(_feed(Decoder(max_attachments=len(parts)), parts))
    binary = len(parts) > 1
    expected = T(kind + 3) if binary else kind
    assert packets == [Packet(expected, namespace, data, ack_id)]


# --------------------------------------------------------------------------- roughly linear time


def _timer(call: Callable[[], object], number: int) -> float:
    """The best of 3 runs of `number` calls."""
    best = math.inf
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(number):
            call()
        best = min(best, time.perf_counter() - start)
    return best


def _calls_for(call: Callable[[], object], least: float = 0.005) -> int:
    """How many calls take `least` seconds: enough for the clock's grain on fast refusals."""
    number = 1
    while True:
        start = time.perf_counter()
        for _ in range(number):
            call()
        if time.perf_counter() - start >= least:
            return number
        number *= 4


def _text(text: str) -> object:
    return _decodes_or_refuses(lambda: decode_text(text, max_attachments=10))


def _reassembled(text: str) -> object:
    """Feed a binary text part announcing 10 attachments, then the 10 of them."""
    decoder = Decoder(max_attachments=10)
    try:
        decoder.feed(text)
        return [decoder.feed(bytes([i])) for i in range(10)][-1]
    except RemoteProtocolError:
        return None


def _payload(body: str) -> object:
    return _decodes_or_refuses(lambda: decode_payload(body, max_packets=len(body)))


def _engine_packet(raw: str) -> object:
    return _decodes_or_refuses(lambda: decode_packet(raw))


PH_ALL = ",".join(_ph_text(i) for i in range(10))
TREE = "[" * 400 + "]" * 400  # as deep as a plain event goes, with room to spare
NEAR_PLACEHOLDER = '{"_placeholder":false,"num":0}'

# name: (decoder, an input of about n characters)
ADVERSARIAL: dict[str, tuple[Callable[[str], object], Callable[[int], str]]] = {
    "ack id digits": (_text, lambda n: "2" + "1" * n + '["x"]'),
    "attachment count digits": (_text, lambda n: "5" + "1" * n + '-["x"]'),
    "digits, no dash": (_text, lambda n: "5" + "1" * n),
    "dashes": (_text, lambda n: "5" + "-" * n),
    "open brackets": (_text, lambda n: "2" + "[" * n),
    "many trees nested to the limit": (_text, lambda n: '2["x"' + ("," + TREE) * (n // 801) + "]"),
    "binary: trees nested to the limit, placeholders at the bottom": (
        _reassembled,
        lambda n: '510-["x",' + (TREE + ",") * (n // 801) + "[" * 400 + PH_ALL + "]" * 400 + "]",
    ),
    "binary: objects that are nearly placeholders": (
        _reassembled,
        lambda n: '510-["x",' + (NEAR_PLACEHOLDER + ",") * (n // 31) + PH_ALL + "]",
    ),
    "binary: too many placeholders": (_reassembled, lambda n: '510-["x"' + ("," + _ph_text(0)) * (n // 30) + "]"),
    "many floats": (_text, lambda n: '2["x"' + ",1.25e3" * (n // 7) + "]"),
    "a float of many digits": (_text, lambda n: '2["x",0.' + "1" * n + "]"),
    "escapes in a string": (_text, lambda n: '2["x","' + "\\u00e9\\n" * (n // 8) + '"]'),
    "long namespace": (_text, lambda n: "2/" + "a" * n + ',["x"]'),
    "namespace of commas": (_text, lambda n: "2/" + "," * n),
    "whitespace around the JSON": (_text, lambda n: "2" + " " * (n // 2) + '["x"]' + " " * (n // 2)),
    "engine.io records": (_payload, lambda n: SEPARATOR.join(["4" + "x" * 20] * (n // 22))),
    "engine.io empty records": (_payload, lambda n: SEPARATOR * n),
    "engine.io base64": (_engine_packet, lambda n: "b" + "QUJD" * (n // 4)),
}


@pytest.fixture
def no_gc() -> Iterator[None]:
    # The collector's pauses depend on everything else alive in the process, not on the decoder.
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.mark.parametrize("name", list(ADVERSARIAL))
def test_decoding_is_roughly_linear(name: str, no_gc: None) -> None:
    """1 MB costs about 10x what 100 KB does (a loose bound of 30x: the machine is shared).
    A quadratic decoder would be near 100x."""
    decode, build = ADVERSARIAL[name]
    small, big = build(100_000), build(1_000_000)
    assert 8 * len(small) < len(big) < 12 * len(small)
    number = _calls_for(lambda: decode(small))
    small_time = _timer(lambda: decode(small), number)
    big_time = _timer(lambda: decode(big), number)
    assert big_time < 30 * small_time, (name, number, small_time, big_time)


def test_adversarial_binary_inputs_reach_the_end() -> None:
    """The valid adversaries are decoded in full: their timing covers the whole walk."""
    for name in ("binary: trees nested to the limit, placeholders at the bottom",
                 "binary: objects that are nearly placeholders"):
        decode, build = ADVERSARIAL[name]
        packet = decode(build(10_000))
        assert isinstance(packet, Packet), name
        assert sorted(_bytes_in(packet.data)) == [bytes([i]) for i in range(10)]
