"""Engine.IO v4 polling payloads: records joined by the record separator (protocol.md §1.4)."""

from __future__ import annotations

import base64
from collections.abc import Iterable

from ..exceptions import RemoteProtocolError
from .packet import Frame, Packet, decode_packet

SEPARATOR = "\x1e"


def frame_to_record(frame: Frame) -> str:
    """A frame as a polling record: binary becomes `b` + base64."""
    if isinstance(frame, bytes):
        return "b" + base64.b64encode(frame).decode("ascii")
    return frame


def encode_payload(frames: Iterable[Frame]) -> str:
    return SEPARATOR.join(map(frame_to_record, frames))


def decode_payload(body: str, *, max_packets: int = 10_000) -> list[Packet]:
    """Split a POST body into packets; raise RemoteProtocolError if it is malformed or too long."""
    records = body.split(SEPARATOR, max_packets)
    if len(records) > max_packets:
        raise RemoteProtocolError("too many packets in payload")
    return [decode_packet(record) for record in records]
