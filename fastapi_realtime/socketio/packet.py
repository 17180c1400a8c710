"""Socket.IO v5 packets and their text encoding (protocol.md §2.1, §2.2)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from enum import IntEnum
from typing import Any, NamedTuple

from ..exceptions import RemoteProtocolError
from . import _json
from ._json import BINARY_TYPES
from ._json import scan as _scan


class PacketType(IntEnum):
    CONNECT = 0
    DISCONNECT = 1
    EVENT = 2
    ACK = 3
    CONNECT_ERROR = 4
    BINARY_EVENT = 5
    BINARY_ACK = 6


# Event names a client may not send (the Node decoder refuses them).
RESERVED_EVENTS = frozenset(
    {"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}
)

# Ack ids are JavaScript numbers: above this the client could not tell two ids apart.
MAX_ACK_ID = 2**53 - 1  # Number.MAX_SAFE_INTEGER
# Longest digit run read as an ack id or attachment count; bounding it keeps int() cheap
# and clear of Python's int-string-digits limit.
_MAX_DIGITS = len(str(MAX_ACK_ID))


class Packet(NamedTuple):
    """One Socket.IO packet; a named tuple because the hot paths build millions of them."""

    type: PacketType
    namespace: str = "/"
    data: Any = None
    id: int | None = None


JsonDefault = Callable[[Any], Any]

_TYPES = tuple(PacketType)
_DIGITS = tuple(str(int(type_)) for type_ in PacketType)


# Surrogates cannot be written as UTF-8; a client can still send one as a `\ud800` escape.
_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape_surrogate(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"  # what JavaScript's JSON.stringify writes


def _header(type_: int, namespace: str, ack_id: int | None, attachments: int) -> str:
    head = str(type_)
    if attachments or type_ >= PacketType.BINARY_EVENT:
        head += f"{attachments}-"
    if namespace != "/":
        head += namespace + ","
    if ack_id is not None:
        head += str(ack_id)
    return head


def _non_finite_path(data: Any) -> str | None:
    """Where in `data` a float JSON cannot write (inf, nan) sits, as `[1]['a']`; None if nowhere."""
    stack: list[tuple[str, Any]] = [("", data)]
    seen: set[int] = set()  # the data may hold a cycle
    while stack:
        path, value = stack.pop()
        if isinstance(value, float):
            if not math.isfinite(value):
                return f"{path} is {value!r}"
        elif isinstance(value, (list, tuple, dict)) and id(value) not in seen:
            seen.add(id(value))
            items = value.items() if isinstance(value, dict) else enumerate(value)
            stack.extend((f"{path}[{key!r}]", item) for key, item in reversed(list(items)))
    return None


def encode(packet: Packet, default: JsonDefault | None = None) -> list[str | bytes]:
    """Encode a packet: the text part first, then one bytes item per binary attachment.

    EVENT and ACK become BINARY_EVENT / BINARY_ACK when the data holds bytes. Plain data is
    encoded in one pass; only data holding bytes or other objects takes a second pass, whose
    `default` hook swaps each bytes value for its placeholder. Data JSON cannot represent
    (inf, nan, a reference cycle, an object `default` does not convert) raises ValueError or
    TypeError saying what it was.
    """
    data = packet.data
    attachments: list[bytes] = []
    if data is None:
        body = ""
    else:
        try:
            try:
                body = _json.dumps(data)
            except _json.NotPlain:

                def swap_binary(obj: Any) -> Any:
                    if isinstance(obj, BINARY_TYPES):
                        attachments.append(bytes(obj))
                        return {"_placeholder": True, "num": len(attachments) - 1}
                    if default is not None:
                        return default(obj)
                    raise TypeError(
                        f"cannot encode {packet.type.name} data: an object of type {type(obj).__name__}"
                        " is not JSON serializable; convert it first or pass a `default` hook"
                    )

                maybe = _json.dumps_binary(data, attachments)  # orjson, if it can do it alone
                body = maybe if maybe is not None else _json.std_encoder(swap_binary)(data)
        except ValueError as exc:
            where = _non_finite_path(data)
            if where is None:
                raise ValueError(f"cannot encode {packet.type.name} data as JSON: {exc}") from exc
            raise ValueError(
                f"cannot encode {packet.type.name} data as JSON: data{where}; JSON has no"
                " inf or nan (send null or a string instead)"
            ) from exc
        except RecursionError as exc:
            raise ValueError(
                f"cannot encode {packet.type.name} data as JSON: it holds a reference cycle or is nested too deeply"
            ) from exc
        if not body.isascii():  # O(1); only non-ASCII text pays for the check
            try:
                body.encode("utf-8")  # faster than searching for surrogates
            except UnicodeEncodeError:
                body = _SURROGATE.sub(_escape_surrogate, body)
    type_ = packet.type
    if attachments:
        if type_ == PacketType.EVENT or type_ == PacketType.ACK:
            type_ = _TYPES[type_ + 3]
        return [_header(type_, packet.namespace, packet.id, len(attachments)) + body, *attachments]
    if type_ < 5 and packet.namespace == "/":  # the common case: `2[...]`, `31[...]`
        ack_id = packet.id
        return [_DIGITS[type_] + body if ack_id is None else f"{_DIGITS[type_]}{ack_id}{body}"]
    return [_header(type_, packet.namespace, packet.id, 0) + body]


def reconstruct(data: Any, attachments: Sequence[bytes]) -> Any:
    """Put the attachments back in place of their placeholders, in place (`data` is fresh from the
    JSON parser), with an explicit stack so nesting depth costs no recursion.

    As Node's socket.io-parser: a placeholder is any object whose `_placeholder` is the boolean
    true (other keys are ignored), and its `num` must index an attachment. Stricter than Node:
    `num` must be an integer (not 0.0, not true), and every attachment must be referenced
    exactly once. Anything else raises RemoteProtocolError("Illegal attachments").
    """
    count = len(attachments)
    used = [False] * count

    def take(placeholder: dict[str, Any]) -> bytes:
        num = placeholder.get("num")
        if type(num) is not int or not 0 <= num < count or used[num]:
            raise RemoteProtocolError("Illegal attachments")
        used[num] = True
        return attachments[num]

    if type(data) is dict and data.get("_placeholder") is True:
        data = take(data)
    elif type(data) is list or type(data) is dict:
        stack: list[Any] = [data]
        while stack:
            node = stack.pop()
            for key, value in enumerate(node) if type(node) is list else node.items():
                kind = type(value)
                if kind is dict:
                    if value.get("_placeholder") is True:
                        node[key] = take(value)  # replacing a value keeps the dict's size: safe mid-iteration
                    else:
                        stack.append(value)
                elif kind is list:
                    stack.append(value)
    if not all(used):
        raise RemoteProtocolError("Illegal attachments")
    return data


_ABSENT: Any = object()


def _valid_payload(type_: PacketType, data: Any) -> bool:
    """Node's decoder rules (§2.1); `data` is _ABSENT when the packet has no payload."""
    if type_ is PacketType.CONNECT:
        return data is _ABSENT or type(data) is dict
    if type_ is PacketType.DISCONNECT:
        return data is _ABSENT
    if type_ is PacketType.EVENT or type_ is PacketType.BINARY_EVENT:
        if type(data) is not list or not data:
            return False
        name = data[0]
        return (type(name) is str and name not in RESERVED_EVENTS) or type(name) in (int, float)
    if type_ is PacketType.ACK or type_ is PacketType.BINARY_ACK:
        return type(data) is list
    return type(data) in (dict, str)  # CONNECT_ERROR


def _parse_json(text: str, pos: int) -> Any:
    """The JSON value filling text[pos:] (leading and trailing JSON whitespace allowed)."""
    try:
        return _json.parse(text, pos)
    except _json.TrailingData as exc:
        raise RemoteProtocolError("invalid JSON payload: data after the value") from exc
    except (ValueError, RecursionError) as exc:
        raise RemoteProtocolError("invalid JSON payload") from exc


class Header(NamedTuple):
    """A decoded text part: the packet, and how many attachments must follow it."""

    packet: Packet
    attachments: int


# tuple.__new__ skips the named tuples' generated __new__ (a Python call with keyword defaults).
_new_tuple = tuple.__new__
_EVENT = PacketType.EVENT
_ACK = PacketType.ACK


def ack_packet(namespace: str, data: Any, ack_id: int) -> Packet:
    """An ACK (every acked event builds one): without the named tuple's generated __new__."""
    return _new_tuple(Packet, (_ACK, namespace, data, ack_id))


def decode_text(text: str, *, max_attachments: int) -> Header:
    """Decode the text part of a packet sent by a client; raise RemoteProtocolError if invalid.

    Linear in len(text): one scan per field, digit runs bounded, the JSON parsed in place.
    """
    head = text[:1]
    if head == "2" or head == "3":
        # The common shapes, EVENT or ACK with an optional namespace and ack id before an array
        # (`2[`, `212[`, `31[`, `2/chat,5[`), in one pass with no intermediate objects. Anything
        # else (whitespace, odd ids, no array) takes the general path below, which says what is wrong.
        pos = 1
        namespace = "/"
        if text[1:2] == "/":
            pos = text.find(",", 2) + 1  # 0: no comma, leave it to the general path
            namespace = text[1 : pos - 1]
        bracket = text.find("[", pos, pos + _MAX_DIGITS + 1) if pos else -1
        ack_id = None
        data: Any
        if bracket > pos:
            digits = text[pos:bracket]
            if digits.isdigit() and digits.isascii():
                ack_id = int(digits)
                if ack_id > MAX_ACK_ID:
                    bracket = -1
            else:
                bracket = -1
        if bracket != -1:
            if len(text) < _json.ORJSON_MIN_DECODE:  # as _json.parse does, without two calls
                try:
                    data, stop = _scan(text, bracket)
                except (ValueError, RecursionError, StopIteration) as exc:
                    raise RemoteProtocolError("invalid JSON payload") from exc
                if stop != len(text):  # whitespace or junk after the array
                    data = _parse_json(text, bracket)
            else:
                data = _parse_json(text, bracket)  # an array: it starts with `[`
            if head == "2":
                name = data[0] if data else None
                kind = type(name)
                if not ((kind is str and name not in RESERVED_EVENTS) or kind is int or kind is float):
                    raise RemoteProtocolError("invalid payload for EVENT")
                return _new_tuple(Header, (_new_tuple(Packet, (_EVENT, namespace, data, ack_id)), 0))
            return _new_tuple(Header, (_new_tuple(Packet, (_ACK, namespace, data, ack_id)), 0))
    if not ("0" <= head <= "6") or not head:
        raise RemoteProtocolError(f"unknown packet type {head!r}")
    type_ = _TYPES[ord(head) - 48]
    pos = 1
    end = len(text)
    attachments = 0
    if type_ is PacketType.BINARY_EVENT or type_ is PacketType.BINARY_ACK:
        dash = text.find("-", 1, _MAX_DIGITS + 2)  # a longer count is illegal anyway
        count = text[1:dash] if dash != -1 else ""
        if not count.isdigit() or not count.isascii():
            raise RemoteProtocolError("Illegal attachments")
        attachments = int(count)
        if attachments > max_attachments:
            raise RemoteProtocolError("too many attachments")
        pos = dash + 1
    namespace = "/"
    if pos < end and text[pos] == "/":
        comma = text.find(",", pos)
        if comma == -1:
            namespace, pos = text[pos:], end
        else:
            namespace, pos = text[pos:comma], comma + 1
    ack_id = None
    if pos < end and "0" <= text[pos] <= "9":
        start = pos
        stop = min(end, pos + _MAX_DIGITS + 1)  # one more than allowed, to see a run is too long
        while pos < stop and "0" <= text[pos] <= "9":
            pos += 1
        if pos - start > _MAX_DIGITS:
            raise RemoteProtocolError("invalid ack id: too many digits")
        ack_id = int(text[start:pos])
        if ack_id > MAX_ACK_ID:
            raise RemoteProtocolError("invalid ack id: above 2**53-1")
    data = _parse_json(text, pos) if pos < end else _ABSENT
    if not _valid_payload(type_, data):
        raise RemoteProtocolError(f"invalid payload for {type_.name}")
    return Header(Packet(type_, namespace, None if data is _ABSENT else data, ack_id), attachments)
