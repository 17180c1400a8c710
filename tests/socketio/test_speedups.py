"""The C accelerator (fastapi_realtime/socketio/_speedups.c) gives what the pure Python codec
gives: the same packets and errors decoding, the same frames encoding, and no leaks."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastapi_realtime import Realtime
from fastapi_realtime.exceptions import RemoteProtocolError
from fastapi_realtime.socketio import _json, speedups
from fastapi_realtime.socketio.packet import Packet, encode
from fastapi_realtime.socketio.packet import PacketType as T
from fastapi_realtime.socketio.parser import Decoder
from tests.socketio.test_json_backend import DECODE_CASES, JSON_VALUES, PLAIN_CASES


def test_it_is_built() -> None:
    # make test installs a C compiler where there is none; pip builds the extension with it.
    assert speedups.available(), "fastapi_realtime/socketio/_speedups.c was not built: is there a C compiler?"


def with_and_without(call: Callable[[], Any]) -> tuple[Any, Any]:
    """What `call` returns (or raises, as type and message) without and with the accelerator."""
    results: list[Any] = []
    was_on = speedups.enabled()
    try:
        for on in (False, True):
            speedups.use_speedups(on)
            try:
                results.append(("ok", call()))
            except Exception as exc:  # compared, not swallowed
                results.append(("raised", type(exc), str(exc)))
    finally:
        speedups.use_speedups(was_on)
    return results[0], results[1]


def same(call: Callable[[], Any]) -> Any:
    without, with_ = with_and_without(call)
    assert without == with_
    return with_


def decoded(text: str) -> Any:
    try:
        return repr(Decoder().feed(text))  # repr: -0.0 and 0, 1.0 and 1 told apart
    except RemoteProtocolError as exc:
        return ("refused", str(exc))


HEADS = ["2", "3", "21", "3007", "29007199254740991", "29007199254740992", "2" + "1" * 17, "2/chat,",
         "3/chat,12", "2/ü,5", "2/,", "2/x", "4", "5", "21-", "2 ", "2٣", "2+1"]


@pytest.mark.parametrize("text", [
    *DECODE_CASES,
    *(head + body for head in HEADS for body in ('["m",1]', '["connect"]', "[]", '["m"] ', "[", "", '{"a":1}')),
], ids=str)
def test_decode_is_the_same(text: str) -> None:
    same(lambda: decoded(text))


@settings(max_examples=400, deadline=None, database=None)
@given(st.sampled_from(HEADS), st.text(st.sampled_from(list('0123456789-.e[]{}",:truefalsn \\u/\ud800é')), max_size=40))
def test_decode_differential(head: str, body: str) -> None:
    same(lambda: decoded(head + body))


@settings(max_examples=200, deadline=None, database=None)
@given(st.sampled_from(HEADS), st.text(max_size=30))
def test_decode_differential_on_any_text(head: str, body: str) -> None:
    same(lambda: decoded(head + body))  # astral characters, controls and surrogates included


@pytest.mark.parametrize("backend", ["json", "orjson"])
def test_decode_takes_the_common_shapes(backend: str) -> None:
    if backend == "orjson" and _json._ORJSON is None:
        pytest.skip("orjson is not installed")
    _json.use_backend(backend)
    speedups.use_speedups(True)
    decode = speedups.FAST.decode
    assert decode is not None
    assert decode('2123["echo",{"n":1}]') == Packet(T.EVENT, "/", ["echo", {"n": 1}], 123)
    assert decode('3/chat,5[1,"x"]') == Packet(T.ACK, "/chat", [1, "x"], 5)
    # Everything else is the Python decoder's, which says what is wrong.
    for text in ('2["connect"]', "2[]", '2["m"] ', '51-["m",{"_placeholder":true,"num":0}]', "0", '2["m",NaN]'):
        assert decode(text) is None


def orjson_frame() -> Callable[[str, Any, int | None], str | None]:
    """The accelerator's frame(), on orjson (the fixture restores the backend afterwards)."""
    if _json._ORJSON is None:
        pytest.skip("orjson is not installed")
    _json.use_backend("orjson")
    speedups.use_speedups(True)
    frame = speedups.FAST.frame
    assert frame is not None
    return frame


def frame_text(head_type: T, namespace: str, data: Any, ack_id: int | None) -> str:
    """The text frame the Python encoder writes (the Engine.IO `4` first)."""
    return "4" + str(encode(Packet(head_type, namespace, data, ack_id))[0])


@pytest.mark.parametrize("data", PLAIN_CASES, ids=lambda data: str(data[0]))
@pytest.mark.parametrize("namespace", ["/", "/chat", "/ü"])
def test_frame_is_byte_identical(data: Any, namespace: str) -> None:
    frame = orjson_frame()
    suffix = "" if namespace == "/" else namespace + ","
    for type_, head in ((T.EVENT, "42"), (T.ACK, "43")):
        for ack_id in (None, 0, 7, 2**53 - 1):
            written = frame(head + suffix, data, ack_id)
            if written is not None:  # None: the Python encoder writes it
                assert written == frame_text(type_, namespace, data, ack_id)


@settings(max_examples=300, deadline=None, database=None)
@given(JSON_VALUES, st.none() | st.integers(0, 2**53 - 1))
def test_namespace_frames_are_the_same(value: Any, ack_id: int | None) -> None:
    nsp = Realtime().of("/chat")
    for make in (
        lambda: nsp.encode(Packet(T.EVENT, "/chat", ["m", value], ack_id)),
        lambda: nsp.encode_ack([value], ack_id if ack_id is not None else 1),
    ):
        same(make)


def test_frame_is_used_for_plain_data() -> None:
    frame = orjson_frame()
    assert frame("43", [{"n": 1, "s": "héllo"}], 12) == '4312[{"n":1,"s":"héllo"}]'
    assert frame("42/chat,", ["m", 1.5, True], None) == '42/chat,["m",1.5,true]'
    # What orjson could write otherwise than the standard library, or not at all: None.
    for data in ([None], [1e-7], [b"x"], [float("nan")], [2**70], ["\ud800"], [{1: 2}], [T.EVENT]):
        assert frame("43", data, 1) is None
    _json.use_backend("json")
    assert speedups.FAST.frame is None  # the standard library's output is the reference itself


def test_switching() -> None:
    speedups.use_speedups(False)
    assert speedups.FAST.decode is None and speedups.FAST.frame is None and not speedups.enabled()
    assert speedups.use_speedups(None) is True
    assert speedups.FAST.decode is not None


def test_turning_it_on_needs_it_built() -> None:
    built = speedups._MODULE
    speedups._MODULE = None
    try:
        with pytest.raises(ImportError, match="was not built"):
            speedups.use_speedups(True)
        assert speedups.use_speedups(None) is False
        assert speedups.FAST.decode is None
    finally:
        speedups._MODULE = built
        speedups.use_speedups(None)


@pytest.mark.parametrize(("value", "expected"), [("0", "False"), ("1", "True"), ("", "True"), ("off", "ValueError")])
def test_environment_switch(value: str, expected: str) -> None:
    code = "from fastapi_realtime.socketio import speedups; print(speedups.enabled())"
    done = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, speedups.ENV_SWITCH: value},
        capture_output=True, text=True, timeout=60,
    )
    assert expected in (done.stdout + done.stderr)


def test_no_leaks() -> None:
    if _json._ORJSON is not None:
        _json.use_backend("orjson")
    speedups.use_speedups(True)
    decode, frame = speedups.FAST.decode, speedups.FAST.frame
    assert decode is not None
    texts = ['2123["echo",{"n":1,"s":"x"}]', '3/chat,5[1]', '2["connect"]', '2["m",NaN]', "2[", '2/ü,9["é"]']
    datas: list[Any] = [[{"n": 1}], [None], [b"x"], [1e-7], ["é", 2]]

    def run() -> None:
        for _ in range(2000):
            for text in texts:
                decode(text)
            if frame is not None:
                for data in datas:
                    frame("43/chat,", data, 5)
                    frame("42", data, None)

    run()  # warm caches first
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        run()
        run()
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 20_000, f"{grown} bytes more after 4,000 rounds"
