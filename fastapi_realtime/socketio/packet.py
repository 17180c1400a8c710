"""Socket.IO v5 packets and their text encoding (protocol.md §2.1, §2.2)."""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import IntEnum
from json.encoder import encode_basestring
from typing import Any, NamedTuple

try:
    from json.encoder import c_make_encoder  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - interpreters without the C accelerator
    c_make_encoder = None

from ..exceptions import RemoteProtocolError


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

BINARY_TYPES = (bytes, bytearray, memoryview)


class Packet(NamedTuple):
    """One Socket.IO packet; a named tuple because the hot paths build millions of them."""

    type: PacketType
    namespace: str = "/"
    data: Any = None
    id: int | None = None


JsonDefault = Callable[[Any], Any]

_TYPES = tuple(PacketType)


class _NotPlain(Exception):
    """The data holds something plain JSON cannot: bytes, or an object needing `default`."""


def _refuse(obj: Any) -> Any:
    raise _NotPlain


def _make_encoder(default: JsonDefault) -> Callable[[Any], str]:
    if c_make_encoder is not None:
        iterencode = c_make_encoder(None, default, encode_basestring, None, ":", ",", False, False, False)
        return lambda obj: "".join(iterencode(obj, 0))
    encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=default)
    return encoder.encode


# Built once: plain data (the common case) is encoded with no per-call set-up.
_encode_plain = _make_encoder(_refuse)


def _header(type_: int, namespace: str, ack_id: int | None, attachments: int) -> str:
    head = str(type_)
    if attachments or type_ >= PacketType.BINARY_EVENT:
        head += f"{attachments}-"
    if namespace != "/":
        head += namespace + ","
    if ack_id is not None:
        head += str(ack_id)
    return head


def encode(packet: Packet, default: JsonDefault | None = None) -> list[str | bytes]:
    """Encode a packet: the text part first, then one bytes item per binary attachment.

    EVENT and ACK become BINARY_EVENT / BINARY_ACK when the data holds bytes. Plain data is
    encoded in one pass; only data holding bytes or other objects takes a second pass, whose
    `default` hook swaps each bytes value for its placeholder.
    """
    data = packet.data
    attachments: list[bytes] = []
    if data is None:
        body = ""
    else:
        try:
            body = _encode_plain(data)
        except _NotPlain:

            def swap_binary(obj: Any) -> Any:
                if isinstance(obj, BINARY_TYPES):
                    attachments.append(bytes(obj))
                    return {"_placeholder": True, "num": len(attachments) - 1}
                if default is not None:
                    return default(obj)
                raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")

            body = _make_encoder(swap_binary)(data)
    type_ = packet.type
    if attachments and (type_ == PacketType.EVENT or type_ == PacketType.ACK):
        type_ = _TYPES[type_ + 3]
    return [_header(type_, packet.namespace, packet.id, len(attachments)) + body, *attachments]


def _is_placeholder(obj: Any) -> bool:
    return type(obj) is dict and obj.get("_placeholder") is True


def reconstruct(data: Any, attachments: list[bytes]) -> Any:
    """Put attachments back in place of their placeholders."""
    if type(data) is list:
        return [reconstruct(item, attachments) for item in data]
    if type(data) is dict:
        if _is_placeholder(data):
            num = data.get("num")
            if type(num) is not int or not 0 <= num < len(attachments):
                raise RemoteProtocolError("invalid attachment placeholder")
            return attachments[num]
        return {key: reconstruct(value, attachments) for key, value in data.items()}
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


class Header(NamedTuple):
    """A decoded text part: the packet, and how many attachments must follow it."""

    packet: Packet
    attachments: int


def decode_text(text: str, *, max_attachments: int) -> Header:
    """Decode the text part of a packet sent by a client; raise RemoteProtocolError if invalid."""
    head = text[:1]
    if not ("0" <= head <= "6") or not head:
        raise RemoteProtocolError(f"unknown packet type {head!r}")
    type_ = _TYPES[ord(head) - 48]
    pos = 1
    end = len(text)
    attachments = 0
    if type_ in (PacketType.BINARY_EVENT, PacketType.BINARY_ACK):
        dash = text.find("-", pos)
        count = text[pos:dash] if dash != -1 else ""
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
    start = pos
    while pos < end and "0" <= text[pos] <= "9":
        pos += 1
    ack_id = int(text[start:pos]) if pos > start else None
    data: Any = _ABSENT
    if pos < end:
        try:
            data = json.loads(text[pos:])
        except (ValueError, RecursionError) as exc:
            raise RemoteProtocolError("invalid JSON payload") from exc
    if not _valid_payload(type_, data):
        raise RemoteProtocolError(f"invalid payload for {type_.name}")
    return Header(Packet(type_, namespace, None if data is _ABSENT else data, ack_id), attachments)
