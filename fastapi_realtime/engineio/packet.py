"""Engine.IO v4 packets (protocol.md §1.2, §1.4)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from enum import IntEnum

from ..exceptions import RemoteProtocolError


class PacketType(IntEnum):
    OPEN = 0
    CLOSE = 1
    PING = 2
    PONG = 3
    MESSAGE = 4
    UPGRADE = 5
    NOOP = 6


@dataclass(frozen=True, slots=True)
class Packet:
    type: PacketType
    data: str | bytes = ""


# A frame is a packet in its WebSocket form: text "<digit><data>", or raw bytes for a
# binary message. Outgoing data is kept in this form so it is encoded once per packet.
Frame = str | bytes


def message_frame(data: str | bytes) -> Frame:
    """A message packet as a frame: text gets its type digit, binary goes as it is."""
    return data if isinstance(data, bytes) else _MESSAGE + data


def record_size(frame: Frame) -> int:
    """Bytes of one frame as a polling record (binary is `b` + base64)."""
    if isinstance(frame, bytes):
        return 1 + (len(frame) + 2) // 3 * 4
    return len(frame) if frame.isascii() else len(frame.encode())


def text_frame(packet_type: PacketType, data: str = "") -> str:
    """A text packet as a frame: its type digit, then its data."""
    return f"{int(packet_type)}{data}"


def encode_packet(packet: Packet) -> Frame:
    """Encode one packet as a WebSocket frame."""
    if isinstance(packet.data, bytes):
        if packet.type is not PacketType.MESSAGE:
            raise ValueError("only message packets carry binary data")
        return packet.data
    return text_frame(packet.type, packet.data)


# The fixed frames the server sends.
CLOSE_FRAME = text_frame(PacketType.CLOSE)
PING_FRAME = text_frame(PacketType.PING)
PONG_PROBE_FRAME = text_frame(PacketType.PONG, "probe")
NOOP_FRAME = text_frame(PacketType.NOOP)
_MESSAGE = text_frame(PacketType.MESSAGE)
_BY_DIGIT = {str(int(kind)): kind for kind in PacketType}


def decode_packet(raw: Frame) -> Packet:
    """Decode one frame (WebSocket form, or a polling record with `b`+base64)."""
    if isinstance(raw, bytes):
        return Packet(PacketType.MESSAGE, raw)
    if not raw:
        raise RemoteProtocolError("empty Engine.IO packet")
    head = raw[0]
    if head == "b":
        try:
            return Packet(PacketType.MESSAGE, base64.b64decode(raw[1:], validate=True))
        except (binascii.Error, ValueError) as exc:
            raise RemoteProtocolError("invalid base64 in Engine.IO packet") from exc
    kind = _BY_DIGIT.get(head)
    if kind is not None:
        return Packet(kind, raw[1:])
    raise RemoteProtocolError(f"invalid Engine.IO packet type {raw[:16]!r}")
