"""The Redis Streams adapter's wire, sans I/O: entry ids, stream names, entry fields, options.

As @socket.io/redis-streams-adapter 0.3.x writes them (protocol.md §8).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any

from ..recovery import SessionSnapshot
from . import wire
from .cluster import MessageType
from .redis_link import positive_seconds

OFFSET = re.compile(r"^[0-9]{1,20}-[0-9]{1,20}$")


EntryId = tuple[int, int]


def parse_id(text: str) -> EntryId:
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def format_id(entry: EntryId) -> str:
    return f"{entry[0]}-{entry[1]}"


def java_hash(text: str) -> int:
    """JavaScript's `hash = hash * 31 + charCode; hash |= 0` over UTF-16 code units."""
    value = 0
    data = text.encode("utf-16-le")
    for i in range(0, len(data), 2):
        value = (value * 31 + int.from_bytes(data[i : i + 2], "little")) & 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def stream_for(namespace: str, name: str, count: int) -> str:
    if count == 1:
        return name
    h = java_hash(namespace)
    # JavaScript's % keeps the dividend's sign.
    index = abs(h) % count * (-1 if h < 0 else 1)
    return f"{name}-{index}"


@dataclass(frozen=True, slots=True, kw_only=True)
class RedisStreamsOptions:
    """Options (Node's names in comments). Durations are in seconds."""

    stream_name: str = "socket.io"  # streamName
    stream_count: int = 1  # streamCount
    channel_prefix: str = "socket.io"  # channelPrefix
    use_sharded_pubsub: bool = False  # useShardedPubSub
    max_len: int = 10_000  # maxLen (XADD MAXLEN ~)
    read_count: int = 100  # readCount
    block_time: float = 5.0  # blockTimeInMs / 1000
    session_key_prefix: str = "sio:session:"  # sessionKeyPrefix
    only_plaintext: bool = False  # onlyPlaintext
    requests_timeout: float = 5.0

    def __post_init__(self) -> None:
        for name in ("stream_name", "channel_prefix", "session_key_prefix"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"{name} must be a non-empty string")
        for name in ("stream_count", "max_len", "read_count"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer")
        for name in ("block_time", "requests_timeout"):
            positive_seconds(name, getattr(self, name))
        for name in ("use_sharded_pubsub", "only_plaintext"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool")


def text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def decode_entry(fields: dict[bytes, bytes]) -> dict[str, Any]:
    """A stream entry's fields as a §6.1 message: data is JSON when it starts with `{`, else
    base64 msgpack."""
    message: dict[str, Any] = {
        "uid": text(fields.get(b"uid", b"")),
        "nsp": text(fields.get(b"nsp", b"")),
    }
    try:
        message["type"] = int(text(fields.get(b"type", b"")))
    except ValueError:
        raise wire.MalformedMessage("the entry's type is not a number") from None
    raw = fields.get(b"data")
    if raw:
        if raw[:1] == b"{":
            message["data"] = wire.from_json(raw)
        else:
            try:
                message["data"] = wire.unpack(base64.b64decode(raw, validate=True))
            except ValueError as exc:
                raise wire.MalformedMessage(f"the entry's data is not base64: {exc}") from None
    return message


def ephemeral(message: dict[str, Any]) -> bool:
    kind = message["type"]
    if kind == MessageType.BROADCAST:
        return "requestId" in message.get("data", {})
    return kind in (MessageType.SERVER_SIDE_EMIT, MessageType.FETCH_SOCKETS)


def reaches(rooms: list[str], opts: dict[str, Any]) -> bool:
    targets = wire.room_list(opts.get("rooms"), "opts.rooms")
    excluded = set(wire.room_list(opts.get("except"), "opts.except"))
    return (not targets or any(room in targets for room in rooms)) and not any(room in excluded for room in rooms)


def pairs(entries: Any) -> list[tuple[Any, dict[bytes, bytes]]]:
    out: list[tuple[Any, dict[bytes, bytes]]] = []
    for item in entries or ():
        if isinstance(item, (list, tuple)) and len(item) == 2:
            raw_id, fields = item
            if isinstance(fields, list):
                fields = dict(zip(fields[::2], fields[1::2]))
            if isinstance(fields, dict):
                out.append((raw_id, fields))
    return out


def snapshot_of(value: Any) -> SessionSnapshot:
    session = wire.expect_dict(value, "session")
    data = session.get("data")
    return SessionSnapshot(
        sid=wire.expect_str(session.get("sid"), "session sid"),
        pid=wire.expect_str(session.get("pid"), "session pid"),
        rooms=wire.room_list(session.get("rooms"), "session rooms"),
        data=data if isinstance(data, dict) else {},
    )
