"""The in-memory adapter: one process, every socket local."""

from __future__ import annotations

from collections.abc import Callable

from ..socketio.packet import Packet
from .base import AckCallback, Adapter, BroadcastOptions


class MemoryAdapter(Adapter):
    async def broadcast(self, packet: Packet, opts: BroadcastOptions) -> None:
        self.broadcast_local(packet, opts)

    def broadcast_local(self, packet: Packet, opts: BroadcastOptions) -> int:
        # Encode once; every recipient gets the same frame objects.
        frames = self.nsp.encode(packet)
        deliver = self.nsp.deliver
        volatile = opts.volatile
        count = 0
        for sid in self.matching(opts):
            count += deliver(sid, frames, volatile)
        return count

    async def broadcast_with_ack(
        self, packet: Packet, opts: BroadcastOptions, on_count: Callable[[int], None], on_ack: AckCallback
    ) -> None:
        nsp = self.nsp
        ack_id = nsp.next_ack_id()
        packet = Packet(packet.type, packet.namespace, packet.data, ack_id)
        frames = nsp.encode(packet)
        count = 0
        for sid in self.matching(opts):
            if nsp.deliver(sid, frames, opts.volatile) and nsp.register_ack(sid, ack_id, on_ack):
                count += 1
        on_count(count)
