"""The JSON backend of the Socket.IO text codec: orjson when it is installed, else the standard library.

Both backends give the same result for the same input, byte for byte and error for error: the
standard library's (the reference, see packet.py) is the behaviour, and orjson is only a faster
way to reach it. orjson is used where it provably agrees and the standard library does the rest:

* encode: orjson writes the data, then the standard library redoes it when orjson could differ:
  orjson failed (bytes, a lone surrogate, an int beyond 64 bits, a non-str key, nesting past
  254, a cycle), the data holds an object of another type than None, bool, int, float, str,
  list, tuple, dict (orjson writes enums, UUIDs and the like itself; the standard library hands
  them to `default`, so they must reach it: checked with `marshal`, which refuses every other
  type, subclasses included), or the output holds `null` (orjson writes nan and inf as null;
  the standard library refuses them) or a float orjson formats differently (`1e-07`, `0.00001`).
* decode: orjson parses what it can, when the standard library would give the same value:
  not for digit runs of 19 or more (orjson turns an integer beyond 64 bits into a float) and
  not when the text may nest deeper than DEPTH_SAFE (the standard library's limit follows the
  recursion limit, orjson's is 1024). Whatever orjson refuses goes to the standard library,
  which accepts it or raises its own error.

Imported with importlib so the codecs stay standard-library-only for the layering check.
"""

from __future__ import annotations

import importlib
import json
import marshal
import math
import re
from collections.abc import Callable
from json.encoder import encode_basestring
from json.scanner import make_scanner
from typing import Any, Protocol, cast

try:
    from json.encoder import c_make_encoder  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - interpreters without the C accelerator
    c_make_encoder = None

BINARY_TYPES = (bytes, bytearray, memoryview)


class NotPlain(Exception):
    """The data holds something plain JSON cannot: bytes, or an object needing `default`."""


def refuse(obj: Any) -> Any:
    raise NotPlain


def std_encoder(default: Callable[[Any], Any]) -> Callable[[Any], str]:
    """The standard library's compact encoder: UTF-8 text, no inf/nan, `default` for other objects."""
    # allow_nan=False: inf and nan raise instead of becoming `Infinity`, which JSON.parse refuses.
    if c_make_encoder is not None:
        iterencode = c_make_encoder(None, default, encode_basestring, None, ":", ",", False, False, False)
        return lambda obj: "".join(iterencode(obj, 0))
    encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=default)
    return encoder.encode


# Built once: plain data (the common case) is encoded with no per-call set-up.
std_dumps = std_encoder(refuse)


def _finite_float(literal: str) -> float:
    value = float(literal)
    if math.isinf(value):  # a literal such as 1e999: JSON numbers are finite
        raise ValueError(f"number out of range: {literal[:32]}")
    return value


def _no_constant(literal: str) -> Any:
    raise ValueError(f"{literal} is not JSON")  # NaN, Infinity, -Infinity: Python extensions


# The C scanner of a decoder built once, called directly: json.loads would add a copy of the
# payload, two regex matches and a few calls to every message. parse_constant runs only for
# the NaN/Infinity literals, parse_float once per float literal (one Python call each).
# typeshed types make_scanner's context as a scanner; the C scanner reads a JSONDecoder's hooks.
scan: Callable[[str, int], tuple[Any, int]] = make_scanner(
    json.JSONDecoder(parse_float=_finite_float, parse_constant=_no_constant)  # type: ignore[arg-type]
)
_WHITESPACE = re.compile(r"[ \t\n\r]*")  # JSON's whitespace, allowed around the value


class TrailingData(ValueError):
    """Something other than whitespace follows the JSON value."""


def _skip_whitespace(text: str, pos: int) -> int:
    match = _WHITESPACE.match(text, pos)
    return match.end() if match is not None else pos


def std_parse(text: str, pos: int) -> Any:
    """The JSON value filling text[pos:], as json.loads(text[pos:]) but without copying.

    Raises ValueError (TrailingData for junk after the value) or RecursionError.
    """
    try:
        data, end = scan(text, pos)
    except StopIteration:  # no value at pos: perhaps leading whitespace (rare)
        try:
            data, end = scan(text, _skip_whitespace(text, pos))
        except StopIteration as exc:
            raise ValueError("no JSON value") from exc
    if end != len(text) and _skip_whitespace(text, end) != len(text):
        raise TrailingData("data after the value")
    return data


# --------------------------------------------------------------------------- orjson


class _Orjson(Protocol):
    OPT_PASSTHROUGH_DATACLASS: int
    OPT_PASSTHROUGH_DATETIME: int
    OPT_PASSTHROUGH_SUBCLASS: int

    def dumps(self, obj: Any, /, default: Callable[[Any], Any] | None = ..., option: int | None = ...) -> bytes: ...

    def loads(self, obj: bytes | bytearray | memoryview | str, /) -> Any: ...


def _import_orjson() -> _Orjson | None:
    try:
        return cast(_Orjson, importlib.import_module("orjson"))
    except ImportError:
        return None


_ORJSON = _import_orjson()
_orjson: _Orjson | None = _ORJSON  # the active one: None when the standard library is forced
_options = 0
if _ORJSON is not None:
    # Subclasses, dataclasses and datetimes go to `default` (and so to the standard library), as there.
    _options = _ORJSON.OPT_PASSTHROUGH_SUBCLASS | _ORJSON.OPT_PASSTHROUGH_DATACLASS | _ORJSON.OPT_PASSTHROUGH_DATETIME

# Below this many characters of JSON the standard library's scanner is as fast as the extra copy
# orjson needs; the tests lower it to 0 to run every decode through orjson.
ORJSON_MIN_DECODE = 192
# Texts that could nest deeper than this are left to the standard library, whose limit is the
# recursion limit less the stack in use: it must be the one to say no.
DEPTH_SAFE = 512
_DIGIT_MARKS = bytes(0x30 if 0x30 <= i <= 0x39 else 0x20 for i in range(256))
_LONG_DIGIT_RUN = b"0" * 19  # the shortest integer literal orjson could turn into a float


# Called after use_backend() (the C accelerator follows the backend: speedups.py).
_listeners: list[Callable[[], None]] = []


def on_backend_change(listener: Callable[[], None]) -> None:
    _listeners.append(listener)


def active_orjson() -> _Orjson | None:
    """orjson when it is the backend in use, else None."""
    return _orjson


def options() -> int:
    """The options every orjson.dumps here passes."""
    return _options


def backend() -> str:
    """The backend in use: "orjson" or "json"."""
    return "json" if _orjson is None else "orjson"


def use_backend(name: str | None = None) -> str:
    """Choose the backend: "json" (the standard library), "orjson" (ImportError if it is not
    installed) or None for the best available (the default). Returns the one now in use."""
    global _orjson
    if name == "orjson" and _ORJSON is None:
        raise ImportError("orjson is not installed: pip install 'fastapi-realtime[speed]'")
    if name not in (None, "json", "orjson"):
        raise ValueError(f"unknown JSON backend {name!r}: 'json' or 'orjson'")
    _orjson = None if name == "json" else _ORJSON
    for listener in _listeners:
        listener()
    return backend()


def _orjson_agrees(text: str, obj: Any) -> bool:
    """False if the standard library could write `obj` otherwise than orjson wrote `text`."""
    # On str: `in` on bytes goes through the buffer protocol, several times slower.
    if "null" in text or "e-" in text or "0.0000" in text:
        return False
    try:
        # Refuses every type but the exact core ones (no subclass, enum, UUID...). Version 2 is
        # quickest for small data; 4 (references) for data repeating its strings.
        marshal.dumps(obj, 4 if len(text) > 2048 else 2)
    except ValueError:
        return False
    return True


def dumps(obj: Any) -> str:
    """Plain data as compact JSON text; raises NotPlain when it holds bytes or other objects,
    and what the standard library raises for inf, nan, cycles and too deep nesting."""
    orjson = _orjson
    if orjson is not None:
        try:
            text = orjson.dumps(obj, option=_options).decode()
        except TypeError:  # orjson.JSONEncodeError
            return std_dumps(obj)
        if "null" in text or "e-" in text or "0.0000" in text:  # _orjson_agrees, inlined
            return std_dumps(obj)
        try:
            marshal.dumps(obj, 4 if len(text) > 2048 else 2)
        except ValueError:
            return std_dumps(obj)
        return text
    return std_dumps(obj)


def dumps_binary(obj: Any, attachments: list[bytes]) -> str | None:
    """Data holding bytes: each bytes value becomes a placeholder, its bytes appended to
    `attachments`. Returns None, with `attachments` emptied, when orjson is not in use or the
    data holds anything else that is not plain: the caller then uses the standard library."""
    orjson = _orjson
    if orjson is None:
        return None

    def swap(value: Any) -> Any:
        if isinstance(value, BINARY_TYPES):
            attachments.append(bytes(value))
            return {"_placeholder": True, "num": len(attachments) - 1}
        raise NotPlain

    try:
        text = orjson.dumps(obj, default=swap, option=_options).decode()
    except TypeError:
        text = None
    if text is None or not _orjson_agrees(text, obj):
        attachments.clear()
        return None
    return text


def parse(text: str, pos: int) -> Any:
    """The JSON value filling text[pos:]; ValueError (or RecursionError) if there is none."""
    orjson = _orjson
    if orjson is not None and len(text) - pos >= ORJSON_MIN_DECODE:
        try:
            raw = text[pos:].encode()
        except UnicodeEncodeError:  # a lone surrogate: orjson refuses it, the standard library reads it
            raw = b""
        if (
            raw
            and _LONG_DIGIT_RUN not in raw.translate(_DIGIT_MARKS)
            and (len(raw) < 2 * DEPTH_SAFE or raw.count(b"[") + raw.count(b"{") < DEPTH_SAFE)
        ):
            try:
                return orjson.loads(raw)
            except ValueError:  # orjson.JSONDecodeError: the standard library decides (and says why)
                pass
    return std_parse(text, pos)
