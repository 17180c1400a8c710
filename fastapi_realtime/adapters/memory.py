"""The in-memory adapter: one process, every socket local."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._types import EioFrame
from ..socketio.packet import Packet
from .base import AckCallback, Adapter, BroadcastOptions


class MemoryAdapter(Adapter):
    async def broadcast(self, packet: Packet, opts: BroadcastOptions) -> None:
        # Encode once; every recipient gets the same frame objects.
        self.deliver_local(await self.nsp.frames_for(packet, opts), opts, packet.data)

    def deliver_local(self, frames: list[EioFrame], opts: BroadcastOptions, data: Any = None) -> int:
        """Deliver to the local sockets `opts` reaches; how many took it. With `data` (the
        event's), the observers hear who got it."""
        deliver = self.nsp.deliver
        volatile = opts.volatile
        if data is not None and self.nsp.observation.observer is not None:
            sids = [sid for sid in self.matching(opts) if deliver(sid, frames, volatile)]
            self.sent(data, sids)
            return len(sids)
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
        sids = [
            sid for sid in self.matching(opts)
            if nsp.deliver(sid, frames, opts.volatile) and nsp.register_ack(sid, ack_id, on_ack)
        ]
        self.sent(packet.data, sids)
        on_count(len(sids))
