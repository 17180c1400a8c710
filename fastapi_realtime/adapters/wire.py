"""What travels between nodes, sans I/O: msgpack and JSON as Node's adapters write them, and
the checks every decoded message passes before a node acts on it (protocol.md §6.1, §7).

Nothing here is pickled: msgpack and JSON carry data only. A message that fails a check raises
`MalformedMessage`; the adapter logs it (rate-limited) and drops it.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import struct
from collections.abc import Callable
from typing import Any

from ..socketio.packet import RESERVED_EVENTS, PacketType
from .base import BroadcastOptions

JsonDefault = Callable[[Any], Any]

# Bounds on what a decoder accepts from Redis, whatever sent it.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
MAX_ROOMS = 100_000


class MalformedMessage(ValueError):
    """A message from Redis that no conforming node would send."""


def _msgpack() -> Any:
    try:
        import msgpack  # type: ignore[import-untyped]
    except ImportError as exc:  # pragma: no cover - the redis extra installs it
        raise ImportError(
            "the Redis adapters need msgpack: pip install 'fastapi-realtime[redis]'"
        ) from exc
    return msgpack


def _ext_hook(code: int, data: bytes) -> Any:
    # notepack.io writes `undefined` in an array as fixext1 type 0, and a Date as fixext8 type 0
    # holding milliseconds as a float64; @msgpack/msgpack uses the standard timestamp (-1),
    # which msgpack turns into a datetime itself (timestamp=3).
    if code == 0 and len(data) == 1:
        return None
    if code == 0 and len(data) == 8:
        (millis,) = struct.unpack(">d", data)
        if not math.isfinite(millis):
            raise MalformedMessage("a Date that is not finite")
        return _dt.datetime.fromtimestamp(millis / 1000, _dt.timezone.utc)
    raise MalformedMessage(f"msgpack extension type {code} is not data")


def _plain_default(default: JsonDefault | None) -> Callable[[Any], Any]:
    def convert(obj: Any) -> Any:
        if isinstance(obj, (set, frozenset)):
            return list(obj)
        if isinstance(obj, _dt.datetime):
            return obj.isoformat()
        if default is not None:
            return default(obj)
        raise TypeError(f"an object of type {type(obj).__name__} cannot travel to other nodes")

    return convert


def pack(obj: Any, default: JsonDefault | None = None) -> bytes:
    """msgpack as notepack.io writes it: str as str, bytes as bin (checked byte for byte)."""
    packed: bytes = _msgpack().packb(obj, use_bin_type=True, default=_plain_default(default), datetime=False)
    return packed


def unpack(raw: bytes) -> Any:
    if len(raw) > MAX_MESSAGE_BYTES:
        raise MalformedMessage(f"a message of {len(raw)} bytes (limit {MAX_MESSAGE_BYTES})")
    msgpack = _msgpack()
    try:
        return msgpack.unpackb(
            raw, raw=False, strict_map_key=False, ext_hook=_ext_hook, timestamp=3
        )
    except MalformedMessage:
        raise
    except Exception as exc:  # msgpack raises several types for bad input
        raise MalformedMessage(f"not msgpack: {exc}") from None


def _no_constant(literal: str) -> Any:
    raise MalformedMessage(f"{literal} is not JSON")


def to_json(obj: Any, default: JsonDefault | None = None) -> bytes:
    """JSON text as JSON.stringify writes it (bytes as Node's Buffer.toJSON shape)."""

    def convert(value: Any) -> Any:
        if isinstance(value, (bytes, bytearray, memoryview)):
            return {"type": "Buffer", "data": list(bytes(value))}
        return _plain_default(default)(value)

    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=convert).encode()


def from_json(raw: bytes) -> Any:
    if len(raw) > MAX_MESSAGE_BYTES:
        raise MalformedMessage(f"a message of {len(raw)} bytes (limit {MAX_MESSAGE_BYTES})")
    try:
        return json.loads(raw, parse_constant=_no_constant)
    except MalformedMessage:
        raise
    except (ValueError, RecursionError) as exc:
        raise MalformedMessage(f"not JSON: {exc}") from None


def decode_any(raw: bytes) -> Any:
    """JSON when the payload starts with `{` (as Node's adapters decide), msgpack otherwise."""
    if raw[:1] == b"{":
        return from_json(raw)
    return unpack(raw)


def has_binary(obj: Any) -> bool:
    stack = [obj]
    while stack:
        value = stack.pop()
        if isinstance(value, (bytes, bytearray, memoryview)):
            return True
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, (list, tuple)):
            stack.extend(value)
    return False


# -- checks -------------------------------------------------------------------------------------
def expect_dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedMessage(f"{what} is not a map")
    return value


def expect_str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise MalformedMessage(f"{what} is not a string")
    return value


def expect_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedMessage(f"{what} is not an integer")
    return value


def room_list(value: Any, what: str) -> list[str]:
    """Rooms as Node sends them: strings (a JavaScript number names the same room as its text)."""
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_ROOMS:
        raise MalformedMessage(f"{what} is not a list of rooms")
    rooms: list[str] = []
    for room in value:
        if isinstance(room, str):
            rooms.append(room)
        elif isinstance(room, int) and not isinstance(room, bool):
            rooms.append(str(room))
        else:
            raise MalformedMessage(f"{what} holds a room that is not a string")
    return rooms


def encode_options(opts: BroadcastOptions) -> dict[str, Any]:
    """`{rooms, except, flags}`; notepack drops undefined keys, so flags only holds what is set."""
    flags: dict[str, Any] = {}
    if opts.volatile:
        flags["volatile"] = True
    if opts.timeout is not None:
        flags["timeout"] = int(opts.timeout * 1000)
    return {"rooms": sorted(opts.rooms), "except": sorted(opts.except_rooms), "flags": flags}


def decode_options(value: Any) -> BroadcastOptions:
    opts = expect_dict(value, "opts")
    flags = opts.get("flags")
    if flags is None:
        flags = {}
    flags = expect_dict(flags, "opts.flags")
    timeout = flags.get("timeout")
    seconds: float | None = None
    if isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and math.isfinite(timeout) and timeout > 0:
        seconds = timeout / 1000
    return BroadcastOptions(
        rooms=frozenset(room_list(opts.get("rooms"), "opts.rooms")),
        except_rooms=frozenset(room_list(opts.get("except"), "opts.except")),
        volatile=bool(flags.get("volatile")),
        local=False,
        timeout=seconds,
    )


def event_data(packet: Any, namespace: str) -> list[Any] | None:
    """The `[event, ...args]` of a broadcast packet `{type, data, nsp}` for `namespace`; None
    when it is for another namespace. A missing nsp means "/", as in Node."""
    packet = expect_dict(packet, "packet")
    nsp = packet.get("nsp", "/")
    if nsp is None:
        nsp = "/"
    if expect_str(nsp, "packet.nsp") != namespace:
        return None
    kind = packet.get("type", PacketType.EVENT)
    if kind not in (PacketType.EVENT, PacketType.BINARY_EVENT):
        raise MalformedMessage(f"packet type {kind!r} is not an event")
    data = packet.get("data")
    if not isinstance(data, list) or not data or not isinstance(data[0], str):
        raise MalformedMessage("packet data is not [event, ...args]")
    if data[0] in RESERVED_EVENTS:
        raise MalformedMessage(f"{data[0]!r} is a reserved event name")
    return data


def event_packet_dict(namespace: str, data: list[Any]) -> dict[str, Any]:
    return {"type": int(PacketType.EVENT), "data": data, "nsp": namespace}
