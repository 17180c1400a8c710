"""Connection state recovery (protocol.md §2.4): offsets on stored events, session snapshots.

A `RecoveryStore` sits beside the adapter, one per namespace. It gives every stored event its
offset (appended as the last argument, encoded once with the packet), keeps the encoded
frames in a bounded buffer, keeps the snapshot of a socket that disconnected for a
recoverable reason, and on reconnection hands back the snapshot and the frames it missed.
The memory store here serves one process; a shared store (several nodes) implements the
same four methods.
"""

from __future__ import annotations

import secrets
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, TypeGuard

from ._types import EioFrame
from .adapters.base import BroadcastOptions
from .reasons import RECOVERABLE_REASONS as RECOVERABLE_REASONS  # re-exported: the recovery API names it
from .socketio.packet import Packet

# A pid or offset longer than this is not ours: no lookup is even attempted.
MAX_TOKEN_LENGTH = 64

Encode = Callable[[Packet], list[EioFrame]]


@dataclass(frozen=True, slots=True, kw_only=True)
class RecoveryOptions:
    """Connection state recovery settings. Durations are in seconds."""

    max_disconnection_duration: float = 120.0
    skip_middlewares: bool = True
    # Caps on the buffer of sent events, whichever is reached first (the oldest go first).
    max_packets: int = 10_000
    max_bytes: int = 16_000_000

    def __post_init__(self) -> None:
        duration = self.max_disconnection_duration
        if isinstance(duration, bool) or not isinstance(duration, (int, float)) or duration <= 0:
            raise ValueError("max_disconnection_duration must be a positive number of seconds")
        for name in ("max_packets", "max_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer")
        if not isinstance(self.skip_middlewares, bool):
            raise ValueError("skip_middlewares must be a bool")


@dataclass(slots=True)
class SessionSnapshot:
    """What a recovered socket gets back."""

    sid: str
    pid: str
    rooms: list[str]
    data: dict[str, Any]


@dataclass(slots=True)
class Restored:
    snapshot: SessionSnapshot
    missed: list[EioFrame] = field(default_factory=list)
    # When the stored session would have expired (the store's clock), so a restore that is
    # given back (the reconnection was refused) does not extend its life.
    expires: float | None = None


def valid_token(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and 0 < len(value) <= MAX_TOKEN_LENGTH


def generate_pid() -> str:
    return secrets.token_urlsafe(15)


class RecoveryStore(ABC):
    """The recovery seam: one instance per namespace."""

    @abstractmethod
    async def store(
        self, packet: Packet, opts: BroadcastOptions, encode: Encode, offset: str | None = None
    ) -> list[EioFrame]:
        """Append the packet's offset to its arguments, keep it, and return its frames.

        `offset` comes from the adapter when it has one for this packet (a stream entry id,
        which every node emits alike); otherwise the store mints its own."""

    @abstractmethod
    async def persist(self, snapshot: SessionSnapshot) -> None:
        """Keep a disconnected socket's state for `max_disconnection_duration`."""

    @abstractmethod
    async def restore(self, pid: str, offset: str) -> Restored | None:
        """The snapshot and the frames missed since `offset`, once; None if anything is missing."""

    async def put_back(self, restored: Restored) -> None:
        """Keep a restored session again: the reconnection that took it was refused (say, by a
        middleware, to a client presenting a stolen pid), so the real owner can still recover."""
        await self.persist(restored.snapshot)

    async def close(self) -> None:
        """Release resources."""


@dataclass(slots=True)
class _Entry:
    seq: int
    at: float
    frames: list[EioFrame]
    size: int
    rooms: frozenset[str]
    except_rooms: frozenset[str]


def _reaches(entry: _Entry, rooms: set[str]) -> bool:
    """§2.4.8: sent to all or to one of the rooms, and excluding none of them."""
    if entry.rooms and entry.rooms.isdisjoint(rooms):
        return False
    return entry.except_rooms.isdisjoint(rooms)


def _frames_size(frames: Sequence[EioFrame]) -> int:
    """Bytes on the wire (text frames are UTF-8; most are ASCII, which needs no encoding)."""
    return sum(
        len(frame) if isinstance(frame, bytes) or frame.isascii() else len(frame.encode()) for frame in frames
    )


class MemoryRecoveryStore(RecoveryStore):
    """In-process store: a bounded buffer of sent events and a table of snapshots."""

    def __init__(self, options: RecoveryOptions, clock: Callable[[], float] = time.monotonic) -> None:
        self.options = options
        self.clock = clock
        # Offsets are "<instance>-<seq>": a restarted process never recognises old ones.
        self._instance = secrets.token_hex(4)
        self._seq = 0
        self._buffer: deque[_Entry] = deque()
        self._bytes = 0
        self._sessions: dict[str, tuple[float, SessionSnapshot]] = {}

    def _offset(self, seq: int) -> str:
        return f"{self._instance}-{seq}"

    async def store(
        self, packet: Packet, opts: BroadcastOptions, encode: Encode, offset: str | None = None
    ) -> list[EioFrame]:
        self._seq += 1
        seq = self._seq
        # A supplied offset is sent as given; this store can only resume from its own.
        frames = encode(Packet(packet.type, packet.namespace, [*packet.data, offset or self._offset(seq)], packet.id))
        size = _frames_size(frames)
        now = self.clock()
        self._buffer.append(_Entry(seq, now, frames, size, opts.rooms, opts.except_rooms))
        self._bytes += size
        self._trim(now)
        return frames

    def _trim(self, now: float) -> None:
        buffer = self._buffer
        options = self.options
        oldest = now - options.max_disconnection_duration
        while buffer and (
            len(buffer) > options.max_packets or self._bytes > options.max_bytes or buffer[0].at < oldest
        ):
            self._bytes -= buffer.popleft().size

    def _expire_sessions(self, now: float) -> None:
        # Insertion order is expiry order (one fixed duration), so the oldest are first.
        sessions = self._sessions
        while sessions:
            pid, (expires, _) = next(iter(sessions.items()))
            if expires > now:
                break
            del sessions[pid]

    async def persist(self, snapshot: SessionSnapshot) -> None:
        now = self.clock()
        self._keep(snapshot, now + self.options.max_disconnection_duration, now)

    def _keep(self, snapshot: SessionSnapshot, expires: float, now: float) -> None:
        self._expire_sessions(now)
        sessions = self._sessions
        sessions.pop(snapshot.pid, None)
        latest = next(reversed(sessions.values()))[0] if sessions else expires
        sessions[snapshot.pid] = (expires, snapshot)
        if expires < latest:
            # Keep insertion order = expiry order (put_back may bring an earlier expiry).
            self._sessions = dict(sorted(sessions.items(), key=lambda item: item[1][0]))

    async def put_back(self, restored: Restored) -> None:
        now = self.clock()
        expires = restored.expires if restored.expires is not None else now + self.options.max_disconnection_duration
        if expires > now:
            self._keep(restored.snapshot, expires, now)

    async def restore(self, pid: str, offset: str) -> Restored | None:
        now = self.clock()
        self._expire_sessions(now)
        self._trim(now)
        found = self._sessions.get(pid)
        if found is None:
            return None
        instance, _, seq_text = offset.rpartition("-")
        if instance != self._instance or not seq_text.isdigit() or not seq_text.isascii():
            return None  # like Node, an offset it never issued leaves the session in place
        seq = int(seq_text)
        buffer = self._buffer
        # The client's last offset must still be buffered, or what followed it may be gone.
        if not buffer or not buffer[0].seq <= seq <= buffer[-1].seq:
            return None
        del self._sessions[pid]  # a pid restores at most once
        expires, snapshot = found
        rooms = set(snapshot.rooms)
        missed: list[EioFrame] = []
        for entry in islice(buffer, seq - buffer[0].seq + 1, None):
            if _reaches(entry, rooms):
                missed.extend(entry.frames)
        return Restored(snapshot, missed, expires)
