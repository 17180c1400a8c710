"""The JSON backends (fastapi_realtime/socketio/_json.py): orjson gives what the standard library gives.

The conftest runs every test on both backends; the tests here also compare the two directly.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import enum
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastapi_realtime.exceptions import RemoteProtocolError
from fastapi_realtime.socketio import _json
from fastapi_realtime.socketio.packet import Packet, decode_text, encode
from fastapi_realtime.socketio.packet import PacketType as T
from fastapi_realtime.socketio.parser import Decoder

needs_orjson = pytest.mark.skipif(_json._ORJSON is None, reason="orjson is not installed")


def on_each_backend(call: Callable[[], Any]) -> dict[str, Any]:
    """What `call` returns (or raises, as type and message) on each backend."""
    results: dict[str, Any] = {}
    previous = _json.backend()
    try:
        for name in ("json", "orjson") if _json._ORJSON is not None else ("json",):
            _json.use_backend(name)
            try:
                results[name] = ("ok", call())
            except Exception as exc:  # compared, not swallowed
                results[name] = ("raised", type(exc), str(exc))
    finally:
        _json.use_backend(previous)
    return results


def same_on_each_backend(call: Callable[[], Any]) -> Any:
    results = on_each_backend(call)
    values = list(results.values())
    assert all(value == values[0] for value in values), results
    return values[0]


def stdlib_text(data: Any) -> str:
    """What JSON.stringify writes (for data it can hold): compact, UTF-8, no inf/nan."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


class Colour(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


class Name(str, enum.Enum):
    ALICE = "alice"


class Text(str):
    pass


class Number(int):
    pass


class Real(float):
    pass


class Mapping(dict[str, Any]):
    def items(self) -> Any:  # the standard library's encoder calls items() on a dict subclass
        return [("overridden", True)]


class Items(list[Any]):
    pass


@dataclasses.dataclass
class Point:
    x: int


PLAIN_CASES: list[Any] = [
    ["chat", {"text": "hi", "n": 1}],
    ["u2028", "\u2028\u2029", "\u2028"],
    ["controls", "".join(map(chr, range(0x20))) + "\x7f\"\\/"],
    ["astral", "😀", "𝄞", "é€"],
    ["surrogate", "\ud800", "a\udfffé"],
    ["ints", 2**63 - 1, -(2**63), 2**64 - 1, 2**64, -(2**63) - 1, 10**30, -(10**30)],
    ["floats", 1e16, 1e15, 1e-4, 1e-5, 2.5e-5, 1e-7, 1.5e300, 5e-324, -0.0, 0.1, 1.0, 1e21, 123456789.125],
    ["tuple", (1, 2, ("a",)), ()],
    ["keys", {1: "int", 2.5: "float", None: "none"}, {False: "bool"}],
    ["subclasses", Text("t"), Number(5), Real(1e-7), Mapping(a=1), Items([1]), {Text("k"): 1}],
    ["enums", Level.HIGH, Name.ALICE],
    ["ordered", collections.OrderedDict(b=1, a=2)],
    ["nulls", None, {"a": None}],
    ["strings that look like numbers", "1e-7", "0.00001", "null"],
    ["deep", [[[[[[[[[[["x"]]]]]]]]]]]],
    ["nested 300", *([[]] * 3)],
]


def _deep(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


PLAIN_CASES.append(["deeper than orjson's 254", _deep(400)])


@pytest.mark.parametrize("data", PLAIN_CASES, ids=lambda data: str(data[0]))
def test_encode_is_byte_identical_across_backends(data: Any) -> None:
    result = same_on_each_backend(lambda: encode(Packet(T.EVENT, "/", data, 3)))
    assert result[0] == "ok"


@pytest.mark.parametrize(
    "data",
    [
        ["enum", Colour.RED],
        ["uuid", uuid.UUID(int=1)],
        ["date", datetime.date(2024, 1, 2)],
        ["datetime", datetime.datetime(2024, 1, 2, 3, 4, 5)],
        ["dataclass", Point(1)],
        ["set", {1}],
        ["mixed", b"bin", Colour.RED, {"u": uuid.UUID(int=2)}],
    ],
    ids=lambda data: str(data[0]),
)
def test_objects_reach_the_default_hook_on_every_backend(data: Any) -> None:
    """orjson writes enums and UUIDs itself; the hook must still see them, as with the standard library."""
    seen: list[Any] = []

    def hook(obj: Any) -> Any:
        seen.append(obj)
        return repr(obj)

    def run() -> Any:
        seen.clear()
        parts = encode(Packet(T.EVENT, "/", data), default=hook)
        return parts, list(seen)

    result = same_on_each_backend(run)
    assert result[0] == "ok" and result[1][1], result
    without_hook = same_on_each_backend(lambda: encode(Packet(T.EVENT, "/", data)))
    assert without_hook[0] == "raised" and without_hook[1] is TypeError


@pytest.mark.parametrize(
    "data",
    [["x", float("nan")], ["x", {"a": float("inf")}], ["x", b"b", [float("-inf")]], ["x", None, float("nan")]],
)
def test_non_finite_floats_fail_alike(data: Any) -> None:
    """orjson would write null; the packet must fail with the standard library's error."""
    result = same_on_each_backend(lambda: encode(Packet(T.EVENT, "/", data)))
    assert result[0] == "raised" and result[1] is ValueError and "JSON has no inf or nan" in result[2]


def test_reference_cycle_fails_alike() -> None:
    cycle: list[Any] = ["x"]
    cycle.append(cycle)
    result = same_on_each_backend(lambda: encode(Packet(T.EVENT, "/", cycle)))
    assert result[0] == "raised" and "reference cycle" in result[2]


def test_binary_data_is_identical_across_backends() -> None:
    data = ["ev", b"0", {"a": bytearray(b"1"), "b": [memoryview(b"2"), {"c": b"3"}]}, b"4", "\u2028", 2**70]
    result = same_on_each_backend(lambda: encode(Packet(T.ACK, "/n", data, 9)))
    assert result[1][1:] == [b"0", b"1", b"2", b"3", b"4"]


def test_plain_output_is_what_json_stringify_writes() -> None:
    data = ["m", {"a": [1, 2.5, None, True], "b": "é\u2028\n"}]
    (text,) = encode(Packet(T.EVENT, "/", data))
    assert text == "2" + stdlib_text(data)


DECODE_CASES = [
    '2["chat",{"text":"hi","n":1}]',
    '2["m",18446744073709551616]',  # past 64 bits: orjson would read a float
    '2["m",-9223372036854775809]',
    '2["m",12345678901234567890123]',
    '2["m",1e999]',
    '2["m",NaN]',
    '2["m",1' + "0" * 400 + "]",
    '2["m",1.2345678901234567890123e-300]',
    '2["\\ud800","\\udc00\\ud800","\ud800"]',
    '2["m",' + "[" * 600 + "]" * 600 + "]",  # past DEPTH_SAFE: the standard library decides
    '2["m",' + "[" * 1100 + "]" * 1100 + "]",
    '2["m",{"a":1,"a":2}]',
    '2 ["x"] ',
    '2["x"]\u00a0',
    '2\ufeff["x"]',
    '2["x",]',
    '2["\\u0000",""]',
    '2["m",-0,-0.0,0.0001,1E2]',
    '2/nsp,7["m",[1,{"b":[2]}]]',
    "3/admin,1" + '["a",{"b":null}]',
]


@pytest.mark.parametrize("text", DECODE_CASES, ids=range(len(DECODE_CASES)))
def test_decode_is_identical_across_backends(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_json, "ORJSON_MIN_DECODE", 0)

    def run() -> Any:
        try:
            header = decode_text(text, max_attachments=10)
        except RemoteProtocolError as exc:
            return ("refused", str(exc))
        return repr(header)  # repr: -0.0 and 0, 1.0 and 1 told apart

    same_on_each_backend(run)


@needs_orjson
def test_orjson_decodes_long_texts_by_default() -> None:
    text = '2["m",' + ",".join(['{"k":"v"}'] * 100) + "]"
    assert len(text) >= _json.ORJSON_MIN_DECODE
    assert decode_text(text, max_attachments=10).packet.data[1] == {"k": "v"}


def test_use_backend() -> None:
    with pytest.raises(ValueError):
        _json.use_backend("simdjson")
    assert _json.use_backend("json") == "json"
    assert _json.backend() == "json"
    if _json._ORJSON is None:
        with pytest.raises(ImportError):
            _json.use_backend("orjson")
    else:
        assert _json.use_backend(None) == "orjson"


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(st.characters(exclude_categories=()), max_size=20),
    lambda children: st.lists(children, max_size=5)
    | st.tuples(children, children)
    | st.dictionaries(st.text(max_size=5) | st.integers(0, 9), children, max_size=5),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None, database=None)
@given(JSON_VALUES)
def test_encode_differential(value: Any) -> None:
    result = same_on_each_backend(lambda: encode(Packet(T.EVENT, "/", ["m", value])))
    if result[0] == "ok":
        parts = result[1]
        same_on_each_backend(lambda: Decoder().feed(parts[0]) if len(parts) == 1 else None)


JSON_TEXT = st.text(st.sampled_from(list('0123456789-+.eE[]{}",:truefalsn \\u/\t\n\ud800é')), max_size=60)


@settings(max_examples=500, deadline=None, database=None)
@given(JSON_TEXT)
def test_decode_differential(text: str) -> None:
    previous = _json.ORJSON_MIN_DECODE
    _json.ORJSON_MIN_DECODE = 0
    try:

        def run() -> Any:
            try:
                return repr(decode_text("2" + text, max_attachments=10))
            except RemoteProtocolError:
                return "refused"

        same_on_each_backend(run)
    finally:
        _json.ORJSON_MIN_DECODE = previous
