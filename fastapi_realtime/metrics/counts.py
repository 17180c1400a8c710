"""The metrics' observer: plain Python counts, kept in the hooks and read at collection time.

The hooks run on the event loop (one thread) and sit on every event's path, so they take no
lock and make no prometheus_client call (`.labels(...).inc()` takes a lock and looks the child
up each time): an event is one dict lookup and an integer increment. Hooks the metrics do not
need are not overridden. `snapshot` turns the counts into label tuples for export.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..asgi import SHUTTING_DOWN, TOO_MANY_PENDING
from ..engineio.handshake import ERROR_MESSAGES, ErrorCode
from ..observe import Observer

OTHER = "other"
"""The label value of the names past a bound (event names, namespaces)."""

# What admission.connect reports for a connect that ended without the app refusing it: not refusals.
_NOT_REFUSED = frozenset(("client gone", "cancelled"))
# Refusal messages that name a cause and are few; any other (allow_request's own words, which
# may be anything) is counted under its code's standard message, so the label stays bounded.
_KNOWN_REFUSALS = frozenset((*ERROR_MESSAGES.values(), SHUTTING_DOWN, TOO_MANY_PENDING, "Origin not allowed"))
_ADAPTER_KINDS = ("publish", "timeout")  # shown at 0 from the start, so alerts see the series


def _text(value: Any) -> str:
    """A transport or reason as its label (the core passes StrEnum members or strings)."""
    return str(getattr(value, "value", value))


class BoundedLabels:
    """The first `limit` distinct names are their own label; later ones share OTHER.

    A name keeps the label it first got (admitted names stay, the set never shrinks), so a
    gauge's increment and decrement always meet the same series.
    """

    __slots__ = ("limit", "known")

    def __init__(self, limit: int) -> None:
        if limit < 0:
            raise ValueError("the bound must be 0 or more")
        self.limit = limit
        # name -> label; only admitted names are kept, so memory is bounded too.
        self.known: dict[Any, str] = {}

    def label(self, name: Any) -> str:
        found = self.known.get(name)
        return found if found is not None else self.admit(name)

    def admit(self, name: Any) -> str:
        """The slow path: a name not seen yet (numbers are event names too, §2.1)."""
        if type(name) in (int, float):
            name_label = str(name)
        elif type(name) is str:
            name_label = name
        else:
            return OTHER
        if len(self.known) >= self.limit:
            return OTHER
        self.known[name] = name_label
        return name_label


class NamespaceCounts:
    """What is counted per namespace label (the first `max_namespaces` namespaces, then OTHER)."""

    __slots__ = (
        "received", "emitted", "received_by", "emitted_by", "connects", "refusals", "sockets",
        "disconnects", "recoveries", "ack_counts", "ack_sum",
    )

    def __init__(self, buckets: int) -> None:
        self.received = 0
        self.emitted = 0
        # event label -> count; used instead of the totals when event names are labels.
        self.received_by: dict[str, int] = {}
        self.emitted_by: dict[str, int] = {}
        self.connects = 0
        self.refusals = 0
        self.sockets: dict[str, int] = {}  # transport -> connected sockets
        self.disconnects: dict[str, int] = {}  # reason -> count
        self.recoveries: dict[str, int] = {}  # outcome -> count
        # Per bucket, not cumulative (the last one is +Inf): one increment per ack.
        self.ack_counts = [0] * (buckets + 1)
        self.ack_sum = 0.0


Labels = tuple[str, ...]


@dataclass
class Snapshot:
    """Counter and gauge values by metric key and label values; histograms as (per-bucket counts, sum)."""

    values: dict[str, dict[Labels, float]] = field(default_factory=dict)
    histograms: dict[str, dict[Labels, tuple[list[int], float]]] = field(default_factory=dict)

    def add(self, key: str, labels: Labels, value: float) -> None:
        series = self.values.setdefault(key, {})
        series[labels] = series.get(labels, 0) + value

    def add_histogram(self, key: str, labels: Labels, counts: Sequence[int], total: float) -> None:
        series = self.histograms.setdefault(key, {})
        old = series.get(labels)
        if old is None:
            series[labels] = (list(counts), total)
        else:
            series[labels] = ([a + b for a, b in zip(old[0], counts)], old[1] + total)

    def merge(self, other: Snapshot) -> None:
        for key, series in other.values.items():
            for labels, value in series.items():
                self.add(key, labels, value)
        for key, hseries in other.histograms.items():
            for labels, (counts, total) in hseries.items():
                self.add_histogram(key, labels, counts, total)


class MetricsObserver(Observer):
    """Counts what the server does; one per server (see enable.RealtimeMetrics)."""

    event_names = False

    def __init__(self, buckets: Sequence[float], max_namespaces: int = 100, max_event_names: int = 100) -> None:
        self.bounds = tuple(float(b) for b in buckets)
        self._namespaces = BoundedLabels(max_namespaces)
        self._names = BoundedLabels(max_event_names)
        # namespace name -> its counts; names past the bound are not kept (they find _other).
        self._cells: dict[str, NamespaceCounts] = {}
        self._other: NamespaceCounts | None = None
        self.engines: dict[str, int] = {}  # transport -> open Engine.IO sessions
        self.handshakes: dict[str, int] = {}
        self.refusals: dict[tuple[str, str, str], int] = {}  # (transport, code, reason)
        self.engine_closes: dict[str, int] = {}
        self.upgrades = 0
        self.overflows = 0
        self.adapter_errors: dict[str, int] = dict.fromkeys(_ADAPTER_KINDS, 0)
        # The transport each open session, and each connected socket, was counted under: the
        # gauges move and drop exactly what they added, whatever order the hooks come in.
        self._session_transport: dict[str, str] = {}
        self._socket_transport: dict[tuple[str, str], tuple[NamespaceCounts, str]] = {}
        # Sockets between connect_started and connect_finished: counted as connects, refusals
        # or neither when their admission ends, never as disconnects.
        self._admitting: set[tuple[str, str]] = set()
        # Called on the first connection and refusal (multiprocess mode starts its flush timer).
        self.on_activity: Callable[[], None] | None = None

    # -- label bounding -----------------------------------------------------------------------
    def cell(self, nsp: str) -> NamespaceCounts:
        """The counts of namespace `nsp` (the slow path of the hooks' `_cells.get`)."""
        found = self._cells.get(nsp)
        if found is not None:
            return found
        label = self._namespaces.label(nsp)
        if label == OTHER:
            if self._other is None:
                self._other = NamespaceCounts(len(self.bounds))
            return self._other
        cell = self._cells[nsp] = NamespaceCounts(len(self.bounds))
        return cell

    def event_label(self, event: Any) -> str:
        return self._names.label(event)

    # -- Engine.IO ----------------------------------------------------------------------------
    def engine_opened(self, session: Any) -> None:
        transport = _text(session.transport)
        self._session_transport[session.sid] = transport
        self.engines[transport] = self.engines.get(transport, 0) + 1
        self.handshakes[transport] = self.handshakes.get(transport, 0) + 1
        if self.on_activity is not None:
            self.on_activity()

    def engine_refused(self, transport: str, code: int, message: str) -> None:
        if message not in _KNOWN_REFUSALS:
            try:
                message = ERROR_MESSAGES[ErrorCode(code)]
            except ValueError:
                message = ""
        key = (_text(transport), str(code), message)
        self.refusals[key] = self.refusals.get(key, 0) + 1
        if self.on_activity is not None:
            self.on_activity()

    def engine_upgraded(self, session: Any) -> None:
        old = self._session_transport.get(session.sid)
        new = _text(session.transport)
        if old is None or old == new:
            return
        self.upgrades += 1
        self._session_transport[session.sid] = new
        self.engines[old] -= 1
        self.engines[new] = self.engines.get(new, 0) + 1
        # The session's connected sockets move with it (the client object keeps them by namespace).
        sockets = getattr(session.context, "sockets", None)
        for socket in (sockets or {}).values():
            key = (socket.nsp.name, socket.id)
            counted = self._socket_transport.get(key)
            if counted is not None and counted[1] == old:
                cell = counted[0]
                cell.sockets[old] -= 1
                cell.sockets[new] = cell.sockets.get(new, 0) + 1
                self._socket_transport[key] = (cell, new)

    def engine_closed(self, session: Any, reason: str) -> None:
        transport = self._session_transport.pop(session.sid, None)
        if transport is None:
            return  # never opened (no handshake went out): not counted
        self.engines[transport] -= 1
        label = _text(reason)
        self.engine_closes[label] = self.engine_closes.get(label, 0) + 1

    def queue_overflow(self, session: Any) -> None:
        self.overflows += 1

    # -- Socket.IO ----------------------------------------------------------------------------
    def connect_started(self, nsp: str, sid: str, session: Any) -> Any:
        key = (nsp, sid)
        self._admitting.add(key)
        return key

    def connect_finished(self, token: Any, error: str | None) -> None:
        self._admitting.discard(token)
        nsp, sid = token
        cell = self._cells.get(nsp) or self.cell(nsp)
        if error is None:
            cell.connects += 1
            return
        if error not in _NOT_REFUSED:
            cell.refusals += 1
        # The socket joined the namespace (socket_connected) before its connect handler refused
        # it; if the core did not report it gone, it leaves the gauge here.
        self._drop_socket(token)

    def socket_connected(self, socket: Any) -> None:
        nsp = socket.nsp.name
        cell = self._cells.get(nsp) or self.cell(nsp)
        transport = _text(socket.client.session.transport)
        key = (nsp, socket.id)
        if key in self._socket_transport:
            return
        self._socket_transport[key] = (cell, transport)
        cell.sockets[transport] = cell.sockets.get(transport, 0) + 1

    def socket_disconnected(self, socket: Any, reason: str) -> None:
        key = (socket.nsp.name, socket.id)
        if self._drop_socket(key) and key not in self._admitting:
            # Only sockets whose connect finished: connects minus disconnects is the gauge.
            cell = self._cells.get(key[0]) or self.cell(key[0])
            label = _text(reason)
            cell.disconnects[label] = cell.disconnects.get(label, 0) + 1

    def _drop_socket(self, key: tuple[str, str]) -> bool:
        counted = self._socket_transport.pop(key, None)
        if counted is None:
            return False
        cell, transport = counted
        cell.sockets[transport] -= 1
        return True

    # The two hooks on every event's path: one lookup, one increment.
    def event_received(self, socket: Any, event: Any, args: Sequence[Any]) -> None:
        nsp = socket.nsp.name
        (self._cells.get(nsp) or self.cell(nsp)).received += 1

    def event_sent(self, nsp: str, sid: str | None, data: Sequence[Any], count: int) -> None:
        (self._cells.get(nsp) or self.cell(nsp)).emitted += count

    def ack_received(self, nsp: str, seconds: float) -> None:
        cell = self._cells.get(nsp) or self.cell(nsp)
        # Bucket i holds bounds[i-1] < seconds <= bounds[i] (Prometheus' "le"); the last is +Inf.
        cell.ack_counts[bisect_left(self.bounds, seconds)] += 1
        cell.ack_sum += seconds

    def recovery(self, nsp: str, outcome: str) -> None:
        cell = self._cells.get(nsp) or self.cell(nsp)
        cell.recoveries[outcome] = cell.recoveries.get(outcome, 0) + 1

    def adapter_error(self, kind: str) -> None:
        self.adapter_errors[kind] = self.adapter_errors.get(kind, 0) + 1

    # -- export ---------------------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        """The counts as label tuples. Safe from another thread (a scrape served by a thread
        pool): every dict is first copied by one C call, which the GIL does not interrupt, so
        no dict changes size while it is read."""
        snap = Snapshot()
        add = snap.add
        for transport, n in self.engines.copy().items():
            add("engine_connections", (transport,), n)
        for transport, n in self.handshakes.copy().items():
            add("engine_handshakes", (transport,), n)
        for labels, n in self.refusals.copy().items():
            add("engine_refusals", labels, n)
        for reason, n in self.engine_closes.copy().items():
            add("engine_disconnects", (reason,), n)
        add("engine_upgrades", (), self.upgrades)
        add("queue_overflows", (), self.overflows)
        for kind, n in self.adapter_errors.copy().items():
            add("adapter_errors", (kind,), n)
        cells = list(self._cells.copy().items())
        if self._other is not None:
            cells.append((OTHER, self._other))
        for nsp, cell in cells:
            self._snapshot_namespace(snap, nsp, cell)
        return snap

    def _snapshot_namespace(self, snap: Snapshot, nsp: str, cell: NamespaceCounts) -> None:
        add = snap.add
        if self.event_names:
            for event, n in cell.received_by.copy().items():
                add("events_received", (nsp, event), n)
            for event, n in cell.emitted_by.copy().items():
                add("events_emitted", (nsp, event), n)
        else:
            add("events_received", (nsp,), cell.received)
            add("events_emitted", (nsp,), cell.emitted)
        add("connects", (nsp,), cell.connects)
        add("connect_refusals", (nsp,), cell.refusals)
        for transport, n in cell.sockets.copy().items():
            add("connected_sockets", (nsp, transport), n)
        for reason, n in cell.disconnects.copy().items():
            add("disconnects", (nsp, reason), n)
        for outcome, n in cell.recoveries.copy().items():
            add("recoveries", (nsp, outcome), n)
        counts = list(cell.ack_counts)
        if any(counts):
            snap.add_histogram("ack_latency_seconds", (nsp,), counts, cell.ack_sum)


class EventNamesObserver(MetricsObserver):
    """The same, with the event name as a label (bounded by max_event_names)."""

    event_names = True

    def event_received(self, socket: Any, event: Any, args: Sequence[Any]) -> None:
        nsp = socket.nsp.name
        by = (self._cells.get(nsp) or self.cell(nsp)).received_by
        label = self._names.known.get(event) or self._names.admit(event)
        by[label] = by.get(label, 0) + 1

    def event_sent(self, nsp: str, sid: str | None, data: Sequence[Any], count: int) -> None:
        by = (self._cells.get(nsp) or self.cell(nsp)).emitted_by
        event = data[0] if data else None
        label = self._names.known.get(event) or self._names.admit(event)
        by[label] = by.get(label, 0) + count
