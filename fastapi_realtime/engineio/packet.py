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

CLOSE_FRAME = "1"
PING_FRAME = "2"
PONG_PROBE_FRAME = "3probe"
NOOP_FRAME = "6"


def encode_packet(packet: Packet) -> Frame:
    """Encode one packet as a WebSocket frame."""
    if isinstance(packet.data, bytes):
        if packet.type is not PacketType.MESSAGE:
            raise ValueError("only message packets carry binary data")
        return packet.data
    return f"{int(packet.type)}{packet.data}"


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
    if "0" <= head <= "6" and head.isascii():
        return Packet(PacketType(ord(head) - 48), raw[1:])
    raise RemoteProtocolError(f"invalid Engine.IO packet type {raw[:16]!r}")
