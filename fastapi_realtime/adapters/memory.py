"""The in-memory adapter: one process, every socket local."""

from __future__ import annotations

from collections.abc import Callable

from .._types import EioFrame
from ..socketio.packet import Packet
from .base import AckCallback, Adapter, BroadcastOptions


class MemoryAdapter(Adapter):
    async def broadcast(self, packet: Packet, opts: BroadcastOptions) -> None:
        # Encode once; every recipient gets the same frame objects.
        self.sent(packet.data, self.deliver_local(await self.nsp.frames_for(packet, opts), opts))

    def deliver_local(self, frames: list[EioFrame], opts: BroadcastOptions) -> int:
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
