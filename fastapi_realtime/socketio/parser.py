"""The per-connection Socket.IO decoder: text parts, then the binary attachments they announce."""

from __future__ import annotations

from ..exceptions import RemoteProtocolError
from . import _json
from .packet import Header, Packet, decode_text, reconstruct
from .speedups import FAST


class Decoder:
    """Feed Engine.IO message payloads in; get complete Socket.IO packets out."""

    __slots__ = ("max_attachments", "_pending", "_buffers")

    def __init__(self, *, max_attachments: int = 10) -> None:
        self.max_attachments = max_attachments
        self._pending: Header | None = None
        self._buffers: list[bytes] = []

    def feed(self, data: str | bytes) -> Packet | None:
        """Return the packet `data` completes, or None while attachments are still due."""
        if isinstance(data, str):
            if self._pending is not None:
                raise RemoteProtocolError("text packet while binary attachments were due")
            fast = FAST.decode
            # Longer texts: orjson's (in decode_text), where it is the backend.
            if fast is not None and len(data) < _json.ORJSON_MIN_DECODE:
                found = fast(data)
                if found is not None:
                    return found
            header = decode_text(data, max_attachments=self.max_attachments)
            if header.attachments == 0:
                packet = header.packet
                if packet.data is not None and header.packet.type >= 5:
                    return Packet(packet.type, packet.namespace, reconstruct(packet.data, []), packet.id)
                return packet
            self._pending = header
            return None
        if self._pending is None:
            raise RemoteProtocolError("binary data with no pending packet")
        self._buffers.append(data)
        header = self._pending
        if len(self._buffers) < header.attachments:
            return None
        buffers, self._buffers, self._pending = self._buffers, [], None
        packet = header.packet
        return Packet(packet.type, packet.namespace, reconstruct(packet.data, buffers), packet.id)
