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


# A buffered event is one tuple: (emitted at, size in bytes, rooms, except rooms, frames), its
# frames being its one frame (the usual case) or a tuple of them.
# Plain tuples are the cheapest to build and free, and holding only untracked objects (floats,
# ints, strings, bytes, tuples of strings) they leave the garbage collector's tracking at its
# first pass: a full buffer adds nothing to the full collections of a large heap.
_AT, _SIZE, _ROOMS, _EXCEPT, _FRAMES = range(5)
_Entry = tuple[Any, ...]


def _reaches(entry: _Entry, rooms: set[str]) -> bool:
    """§2.4.8: sent to all or to one of the rooms, and excluding none of them."""
    targets: tuple[str, ...] = entry[_ROOMS]
    if targets and rooms.isdisjoint(targets):
        return False
    return rooms.isdisjoint(entry[_EXCEPT])


def _frame_size(frame: EioFrame) -> int:
    """Bytes on the wire (text frames are UTF-8; most are ASCII, which needs no encoding)."""
    return len(frame) if isinstance(frame, bytes) or frame.isascii() else len(frame.encode())


def _frames_size(frames: Sequence[EioFrame]) -> int:
    return sum(map(_frame_size, frames))


def _appends_offset(encode: Encode, packet: Packet, offset: str, frames: list[EioFrame]) -> bool:
    """Whether appending `,"<offset>"` to the encoded packet's first frame gives `frames`, its
    encoding with the offset as last argument. It does with the text parser (compact JSON, the
    array closing the frame; our offsets need no escaping), which so skips the copy of the
    packet and the encoding of one more argument on every event; not with msgpack."""
    plain = encode(packet)
    head = plain[0]
    return (
        len(plain) == len(frames)
        and isinstance(head, str)
        and f'{head[:-1]},"{offset}"]' == frames[0]
        and plain[1:] == frames[1:]
    )


class MemoryRecoveryStore(RecoveryStore):
    """In-process store: a bounded buffer of sent events and a table of snapshots."""

    def __init__(self, options: RecoveryOptions, clock: Callable[[], float] = time.monotonic) -> None:
        self.options = options
        self.clock = clock
        # Offsets are "<instance>-<seq>": a restarted process never recognises old ones.
        self._instance = secrets.token_hex(4)
        self._seq = 0  # the last seq issued
        self._first = 1  # the seq of the oldest buffered entry: the buffer holds _first.._seq
        self._buffer: deque[_Entry] = deque()
        self._bytes = 0
        # The caps, read once: every store checks them.
        self._max_packets = options.max_packets
        self._max_bytes = options.max_bytes
        self._max_age = options.max_disconnection_duration
        self._sessions: dict[str, tuple[float, SessionSnapshot]] = {}
        # Whether `encode` lets the offset be appended to the encoded packet (learnt on the first
        # event; see _appends_offset).
        self._splice: bool | None = None

    async def store(
        self, packet: Packet, opts: BroadcastOptions, encode: Encode, offset: str | None = None
    ) -> list[EioFrame]:
        seq = self._seq = self._seq + 1
        if offset is None and self._splice:
            frames = encode(packet)
            head = frames[0]
            if isinstance(head, str) and head[-1:] == "]":
                frames[0] = f'{head[:-1]},"{self._instance}-{seq}"]'
                self._hold_all(frames, opts)
                return frames
        # A supplied offset is sent as given; this store can only resume from its own.
        own = offset is None
        offset = offset or f"{self._instance}-{seq}"
        frames = encode(Packet(packet.type, packet.namespace, [*packet.data, offset], packet.id))
        if own and self._splice is None:
            self._splice = _appends_offset(encode, packet, offset, frames)
        self._hold_all(frames, opts)
        return frames

    def _hold_all(self, frames: list[EioFrame], opts: BroadcastOptions) -> None:
        if len(frames) == 1:  # the usual event: one frame, held as it is
            self._hold(frames[0], _frame_size(frames[0]), opts)
        else:
            self._hold(tuple(frames), _frames_size(frames), opts)

    def _hold(self, frames: EioFrame | tuple[EioFrame, ...], size: int, opts: BroadcastOptions) -> None:
        """Buffer one event's frames (one frame, or a tuple of several), then drop what is past the caps."""
        now = self.clock()
        rooms = opts.rooms
        except_rooms = opts.except_rooms
        buffer = self._buffer
        # Rooms as tuples: frozensets would keep the entry tracked by the collector.
        buffer.append((now, size, tuple(rooms) if rooms else (), tuple(except_rooms) if except_rooms else (), frames))
        self._bytes += size
        if len(buffer) > self._max_packets or self._bytes > self._max_bytes or buffer[0][_AT] < now - self._max_age:
            self._trim(now)

    def _trim(self, now: float) -> None:
        buffer = self._buffer
        max_packets = self._max_packets
        max_bytes = self._max_bytes
        oldest = now - self._max_age
        dropped = 0
        while buffer and (len(buffer) > max_packets or self._bytes > max_bytes or buffer[0][_AT] < oldest):
            self._bytes -= buffer.popleft()[_SIZE]
            dropped += 1
        self._first += dropped

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
        first = self._first
        # The client's last offset must still be buffered, or what followed it may be gone.
        if not first <= seq <= self._seq:
            return None
        del self._sessions[pid]  # a pid restores at most once
        expires, snapshot = found
        rooms = set(snapshot.rooms)
        missed: list[EioFrame] = []
        for entry in islice(self._buffer, seq - first + 1, None):
            if _reaches(entry, rooms):
                frames = entry[_FRAMES]
                if isinstance(frames, tuple):
                    missed.extend(frames)
                else:
                    missed.append(frames)
        return Restored(snapshot, missed, expires)
