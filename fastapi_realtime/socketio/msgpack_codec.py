"""The msgpack wire format of npm `socket.io-msgpack-parser` (v3, protocol 5), sans-I/O.

Interface (what a server or client option `parser="msgpack"` calls):

    encode(packet: Packet, default: JsonDefault | None = None) -> bytes
        One packet as one binary Engine.IO message (send it as a single bytes frame; there are
        no attachments). Bytes anywhere in the data travel as msgpack bin. Raises ValueError
        (inf, nan, nesting past 511, a cycle) or TypeError (an object `default` does not convert,
        or no `default`) like packet.encode. BINARY_EVENT / BINARY_ACK are sent as EVENT / ACK.
    decode(data: bytes) -> Packet
        A packet from one binary Engine.IO message; RemoteProtocolError if it is not a valid
        packet. Packet.type is CONNECT, DISCONNECT, EVENT, ACK or CONNECT_ERROR, never binary.
    Decoder(): .feed(data: str | bytes) -> Packet
        The per-connection object mirroring parser.Decoder: every binary message is one whole
        packet; a text message is a RemoteProtocolError (the msgpack parser sends none).

The format: each packet is a msgpack map `{"type", "data"?, "id"?, "nsp"}`, written by
notepack.io 2.2 (str as str, Buffer as bin, the smallest int format, non-integers as float64,
`undefined` as fixext1 type 0, a Date as fixext8 type 0 holding int64 milliseconds). encode
writes the keys in the order the Node server's objects have them, so the bytes are those of
socket.io-msgpack-parser for the same packet: EVENT `type,data[,id],nsp` (Socket#emit), ACK
`id,type,data,nsp`, CONNECT `type[,data],nsp`, CONNECT_ERROR `type,data,nsp`, DISCONNECT
`type,nsp`. (Node's own order varies with the path: a broadcast with an ack writes `nsp`
before `id`; any order decodes.)

decode follows the Node decoder's checks (type 0-4, nsp a string, data by type, id an integer)
with the text parser's limits on top: the namespace starts with "/", the ack id is an int in
0..2**53-1, event names as packet.py (a non-reserved string or a number), and a map key must be
a string (not bin). It accepts what real clients send: extra keys (socket.io-client adds `options`),
`undefined` for an absent data or id (socket.io-client's CONNECT without auth), nil data in a
CONNECT or DISCONNECT (python-socketio writes `"data": nil`; Node refuses it, we read it as
absent). Inside the data, as if the client had used JSON: `undefined` becomes None in an array
and drops its key in a map, nan and ±inf become None (JSON.stringify writes null), a Date
becomes an aware UTC datetime (the msgpack timestamp extension too). Other extensions, and
nesting past msgpack's limit, are refused.

Needs the msgpack package (extra `fastapi-realtime[msgpack]`), imported on first use with
importlib so the codecs stay standard-library-only.
"""

from __future__ import annotations

import datetime as _dt
import importlib
import math
import struct
from collections.abc import Callable
from typing import Any, Protocol, cast

from ..exceptions import RemoteProtocolError
from .packet import _ABSENT, MAX_ACK_ID, JsonDefault, Packet, PacketType, _non_finite_path, _valid_payload


class _Msgpack(Protocol):
    def packb(self, o: Any, /, *, use_bin_type: bool, default: Callable[[Any], Any] | None, datetime: bool) -> bytes: ...

    def unpackb(
        self, packed: bytes, /, *, raw: bool, strict_map_key: bool, ext_hook: Callable[[int, bytes], Any], timestamp: int
    ) -> Any: ...


_module: _Msgpack | None = None


def _msgpack() -> _Msgpack:
    global _module
    if _module is None:
        try:
            _module = cast(_Msgpack, importlib.import_module("msgpack"))
        except ImportError as exc:
            raise ImportError("the msgpack parser needs msgpack: pip install 'fastapi-realtime[msgpack]'") from exc
    return _module


def require() -> None:
    """Raise ImportError now, naming the extra, when msgpack is not installed."""
    _msgpack()


class _Undefined:
    """JavaScript's undefined, as notepack.io writes it (fixext1 type 0)."""

    __slots__ = ()


_UNDEFINED = _Undefined()
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


def _ext_hook(code: int, data: bytes) -> Any:
    if code == 0 and len(data) == 1:
        return _UNDEFINED
    if code == 0 and len(data) == 8:  # notepack.io 2.x Date: int64 milliseconds since the epoch
        (millis,) = struct.unpack(">q", data)
        try:
            return _EPOCH + _dt.timedelta(milliseconds=millis)
        except OverflowError:
            raise RemoteProtocolError("invalid msgpack payload: a Date out of range") from None
    raise RemoteProtocolError(f"invalid msgpack payload: extension type {code}")


# A float64 (0xcb) or float32 (0xca) whose exponent is all ones (inf or nan) starts with one of
# these: their absence (the rule) spares a walk. Present by chance in other bytes, they cost one.
_NON_FINITE_MARKS = (b"\xcb\x7f", b"\xcb\xff", b"\xca\x7f", b"\xca\xff")
# undefined (fixext1 type 0), and bin 8/16/32, which msgpack also lets through as a map key.
_WALK_MARKS = (b"\xd4\x00", b"\xc4", b"\xc5", b"\xc6", *_NON_FINITE_MARKS)

_TYPES = tuple(PacketType)


def _clean(data: Any) -> Any:
    """What JSON would have carried: `undefined` and non-finite numbers to None (dropped as map
    values), map keys checked to be strings. In place, with an explicit stack."""

    def fix(value: Any) -> Any:
        if value is _UNDEFINED or (type(value) is float and not math.isfinite(value)):
            return None
        return value

    if type(data) is not list and type(data) is not dict:
        return fix(data)
    stack: list[Any] = [data]
    while stack:
        node = stack.pop()
        if type(node) is list:
            for index, value in enumerate(node):
                if type(value) is list or type(value) is dict:
                    stack.append(value)
                else:
                    node[index] = fix(value)
        else:
            for key in list(node):
                if type(key) is not str:
                    raise RemoteProtocolError("invalid msgpack payload: a map key that is not a string")
                value = node[key]
                if value is _UNDEFINED:
                    del node[key]  # JSON.stringify leaves the key out
                elif type(value) is list or type(value) is dict:
                    stack.append(value)
                else:
                    node[key] = fix(value)
    return data


def decode(data: bytes) -> Packet:
    """One packet from one binary message; RemoteProtocolError if it is not valid."""
    try:
        obj = _msgpack().unpackb(data, raw=False, strict_map_key=True, ext_hook=_ext_hook, timestamp=3)
    except RemoteProtocolError:
        raise
    except Exception as exc:  # msgpack raises many types (ExtraData, StackError, ValueError, ...)
        raise RemoteProtocolError("invalid msgpack payload") from exc
    if type(obj) is not dict:
        raise RemoteProtocolError("invalid msgpack payload: not a map")
    type_ = obj.get("type")
    if type(type_) is not int or not 0 <= type_ <= 4:
        raise RemoteProtocolError("invalid packet type")
    kind = _TYPES[type_]
    namespace = obj.get("nsp")
    if type(namespace) is not str or not namespace.startswith("/"):
        raise RemoteProtocolError("invalid namespace")
    ack_id = obj.get("id", _UNDEFINED)
    if ack_id is _UNDEFINED:
        ack_id = None
    elif type(ack_id) is not int or not 0 <= ack_id <= MAX_ACK_ID:
        raise RemoteProtocolError("invalid packet id")
    payload = obj.get("data", _ABSENT)
    if payload is _UNDEFINED or (payload is None and kind <= PacketType.DISCONNECT):
        payload = _ABSENT
    elif payload is not _ABSENT and any(mark in data for mark in _WALK_MARKS):
        payload = _clean(payload)
    if not _valid_payload(kind, payload):
        raise RemoteProtocolError(f"invalid payload for {kind.name}")
    return Packet(kind, namespace, None if payload is _ABSENT else payload, ack_id)


def _hook(kind: PacketType, default: JsonDefault | None) -> Callable[[Any], Any]:
    def convert(obj: Any) -> Any:
        if isinstance(obj, int):  # beyond 64 bits (msgpack asks): the float JavaScript would hold
            return float(obj)
        if default is not None:
            return default(obj)
        raise TypeError(
            f"cannot encode {kind.name} data: an object of type {type(obj).__name__}"
            " is not msgpack serializable; convert it first or pass a `default` hook"
        )

    return convert


def _pack(packet: Packet, data: Any, default: Callable[[Any], Any]) -> bytes:
    msgpack = _msgpack()
    kind = packet.type
    if kind == PacketType.BINARY_EVENT or kind == PacketType.BINARY_ACK:
        kind = _TYPES[kind - 3]
    namespace, ack_id = packet.namespace, packet.id
    packed: dict[str, Any]
    if data is _ABSENT:
        packed = {"type": int(kind)}
    elif kind == PacketType.ACK and ack_id is not None:
        packed = {"id": ack_id, "type": 3, "data": data}
    else:
        packed = {"type": int(kind), "data": data}
    if ack_id is not None and "id" not in packed:
        packed["id"] = ack_id
    packed["nsp"] = namespace
    return msgpack.packb(packed, use_bin_type=True, default=default, datetime=False)


def encode(packet: Packet, default: JsonDefault | None = None) -> bytes:
    """One packet as one binary message (see the module docstring)."""
    data = _ABSENT if packet.data is None else packet.data
    name = packet.type.name
    try:
        out = _pack(packet, data, _hook(packet.type, default))
    except ValueError as exc:  # msgpack: "recursion limit exceeded"
        raise ValueError(f"cannot encode {name} data as msgpack: it holds a reference cycle or is nested too deeply") from exc
    except RecursionError as exc:
        raise ValueError(f"cannot encode {name} data as msgpack: it holds a reference cycle or is nested too deeply") from exc
    if any(mark in out for mark in _NON_FINITE_MARKS):
        where = _non_finite_path(data)
        if where is not None:
            raise ValueError(
                f"cannot encode {name} data as msgpack: data{where}; the text parser has no inf or nan,"
                " nor has this one (send null or a string instead)"
            )
    return out


class Decoder:
    """Feed Engine.IO message payloads in; get packets out (the shape of parser.Decoder)."""

    __slots__ = ()

    def feed(self, data: str | bytes) -> Packet:
        if isinstance(data, str):
            raise RemoteProtocolError("text message: the msgpack parser sends binary messages only")
        return decode(data)
