"""From the observers' counts to prometheus_client: metric families built at scrape time (one
process), or real Counter/Gauge/Histogram objects fed with deltas (multiprocess mode, where
prometheus_client reads every process's values from its mmap files)."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from .counts import Labels, MetricsObserver, Snapshot

Kind = Literal["counter", "gauge", "histogram"]


@dataclass(frozen=True)
class MetricSpec:
    key: str  # the name after the prefix, without the counters' `_total`
    kind: Kind
    help: str
    labels: Labels


def metric_specs(event_names: bool) -> tuple[MetricSpec, ...]:
    events: Labels = ("namespace", "event") if event_names else ("namespace",)
    return (
        MetricSpec("connected_sockets", "gauge", "Connected Socket.IO sockets.", ("namespace", "transport")),
        MetricSpec("engine_connections", "gauge", "Open Engine.IO connections.", ("transport",)),
        MetricSpec("engine_handshakes", "counter", "Engine.IO handshakes that opened a connection.", ("transport",)),
        MetricSpec("engine_refusals", "counter", "Engine.IO requests refused, by error code.", ("transport", "code", "reason")),
        MetricSpec("engine_upgrades", "counter", "Engine.IO connections upgraded from polling to WebSocket.", ()),
        MetricSpec("engine_disconnects", "counter", "Engine.IO connections closed, by reason.", ("reason",)),
        MetricSpec("queue_overflows", "counter", "Connections closed because their outgoing queue overflowed.", ()),
        MetricSpec("connects", "counter", "Sockets that joined a namespace.", ("namespace",)),
        MetricSpec("connect_refusals", "counter", "Namespace connections refused by a middleware or connect handler.", ("namespace",)),
        MetricSpec("disconnects", "counter", "Sockets that left a namespace, by reason.", ("namespace", "reason")),
        MetricSpec("events_received", "counter", "Events received from clients.", events),
        MetricSpec("events_emitted", "counter", "Events delivered to local clients (a broadcast counts each recipient).", events),
        MetricSpec("ack_latency_seconds", "histogram", "Time from a server emit_with_ack to the client's ack.", ("namespace",)),
        MetricSpec("recoveries", "counter", "Connection state recovery attempts, by outcome.", ("namespace", "outcome")),
        MetricSpec("adapter_errors", "counter", "Cluster adapter errors, by kind.", ("kind",)),
    )


def families(prefix: str, specs: Sequence[MetricSpec], bounds: Sequence[float], snap: Snapshot) -> Iterator[Metric]:
    """The metric families of a snapshot (with no samples when `snap` is empty: `describe`)."""
    les = [floatToGoString(b) for b in bounds] + ["+Inf"]  # type: ignore[no-untyped-call]
    for spec in specs:
        name = f"{prefix}_{spec.key}"
        labels = list(spec.labels)
        if spec.kind == "histogram":
            hist = HistogramMetricFamily(name, spec.help, labels=labels)
            for values, (counts, total) in sorted(snap.histograms.get(spec.key, {}).items()):
                cumulative, running = [], 0
                for le, n in zip(les, counts):
                    running += n
                    cumulative.append((le, float(running)))
                hist.add_metric(list(values), cumulative, total)
            yield hist
            continue
        family: CounterMetricFamily | GaugeMetricFamily = (
            CounterMetricFamily(name, spec.help, labels=labels)
            if spec.kind == "counter"
            else GaugeMetricFamily(name, spec.help, labels=labels)
        )
        for values, value in sorted(snap.values.get(spec.key, {}).items()):
            family.add_metric(list(values), value)
        yield family


class Shape:
    """What must match for two servers to share metric names: labels and buckets."""

    def __init__(self, prefix: str, event_names: bool, bounds: Sequence[float]) -> None:
        self.prefix = prefix
        self.event_names = event_names
        self.bounds = tuple(bounds)
        self.specs = metric_specs(event_names)

    def check(self, other: Shape) -> None:
        if (self.event_names, self.bounds) != (other.event_names, other.bounds):
            raise ValueError(
                f"metrics with prefix {self.prefix!r} are already registered with other labels or "
                "buckets: give this server another prefix or registry"
            )


class RegistryCollector:
    """One per registry and prefix: the sum over the servers that registered there (a process
    may serve several Realtime apps; each would otherwise register the same names twice)."""

    def __init__(self, shape: Shape) -> None:
        self.shape = shape
        self.observers: weakref.WeakSet[MetricsObserver] = weakref.WeakSet()

    def describe(self) -> Iterable[Metric]:
        # The names only: registering must not need the counts.
        return list(families(self.shape.prefix, self.shape.specs, self.shape.bounds, Snapshot()))

    def collect(self) -> Iterable[Metric]:
        total = Snapshot()
        for observer in list(self.observers):
            total.merge(observer.snapshot())
        return list(families(self.shape.prefix, self.shape.specs, self.shape.bounds, total))


_collectors: weakref.WeakKeyDictionary[CollectorRegistry, dict[str, RegistryCollector]] = weakref.WeakKeyDictionary()
_collectors_lock = threading.Lock()


def attach(registry: CollectorRegistry, shape: Shape, observer: MetricsObserver) -> RegistryCollector:
    with _collectors_lock:
        by_prefix = _collectors.setdefault(registry, {})
        collector = by_prefix.get(shape.prefix)
        if collector is None:
            collector = RegistryCollector(shape)
            registry.register(collector)
            by_prefix[shape.prefix] = collector
        else:
            collector.shape.check(shape)
        collector.observers.add(observer)
        return collector


def detach(registry: CollectorRegistry, collector: RegistryCollector, observer: MetricsObserver) -> None:
    with _collectors_lock:
        collector.observers.discard(observer)
        if not collector.observers:
            registry.unregister(collector)
            _collectors.get(registry, {}).pop(collector.shape.prefix, None)


# -- multiprocess mode ----------------------------------------------------------------------------
class MultiprocessSink:
    """The real metric objects of one prefix in this process (not registered anywhere: in
    multiprocess mode values are read back from the files by MultiProcessCollector)."""

    def __init__(self, shape: Shape) -> None:
        self.shape = shape
        self.metrics: dict[str, Counter | Gauge | Histogram] = {}
        for spec in shape.specs:
            name = f"{shape.prefix}_{spec.key}"
            if spec.kind == "counter":
                self.metrics[spec.key] = Counter(name, spec.help, spec.labels, registry=None)
            elif spec.kind == "gauge":
                # livesum: the sum over the live processes; a process that exits takes its
                # value with it (enable.py marks it dead at exit).
                self.metrics[spec.key] = Gauge(name, spec.help, spec.labels, registry=None, multiprocess_mode="livesum")
            else:
                self.metrics[spec.key] = Histogram(name, spec.help, spec.labels, registry=None, buckets=shape.bounds)


_sinks: dict[str, MultiprocessSink] = {}


def sink_for(shape: Shape) -> MultiprocessSink:
    with _collectors_lock:
        sink = _sinks.get(shape.prefix)
        if sink is None:
            sink = _sinks[shape.prefix] = MultiprocessSink(shape)
        else:
            sink.shape.check(shape)
        return sink


class Flusher:
    """Pushes one observer's counts into the sink as deltas from what it pushed before (deltas,
    so that several servers of one process add up in the same series)."""

    def __init__(self, sink: MultiprocessSink, observer: MetricsObserver) -> None:
        self.sink = sink
        self.observer = observer
        self.pushed = Snapshot()
        # The loop's timer and a scrape served by a thread may flush at once.
        self._lock = threading.Lock()

    def flush(self) -> None:
        with self._lock:
            snap = self.observer.snapshot()
            for key, series in snap.values.items():
                metric = self.sink.metrics[key]
                before = self.pushed.values.get(key, {})
                for labels, value in series.items():
                    old = before.get(labels)
                    if old is None or value != old:
                        # Made on first sight even at 0, so a series shows as in one process.
                        child = metric.labels(*labels) if labels else metric
                        if value != (old or 0):
                            child.inc(value - (old or 0))  # type: ignore[union-attr]
            for key, hseries in snap.histograms.items():
                hist = self.sink.metrics[key]
                assert isinstance(hist, Histogram)
                hbefore = self.pushed.histograms.get(key, {})
                for labels, (counts, total) in hseries.items():
                    old_counts, old_total = hbefore.get(labels, ([0] * len(counts), 0.0))
                    _add_to_histogram(hist.labels(*labels), self.shape_bounds, counts, old_counts, total - old_total)
            self.pushed = snap

    @property
    def shape_bounds(self) -> tuple[float, ...]:
        return self.sink.shape.bounds


def _add_to_histogram(child: Histogram, bounds: Sequence[float], counts: Sequence[int], old: Sequence[int], added_sum: float) -> None:
    deltas = [n - o for n, o in zip(counts, old)]
    if not any(deltas):
        return
    buckets, sum_value = getattr(child, "_buckets", None), getattr(child, "_sum", None)
    if buckets is not None and sum_value is not None and len(buckets) == len(deltas):
        # prometheus_client keeps per-bucket (non-cumulative) values, as we do: add to them
        # directly rather than replaying every observation.
        for value, delta in zip(buckets, deltas):
            if delta:
                value.inc(delta)
        sum_value.inc(added_sum)
        return
    # Another layout: replay each bucket's count at its upper bound (the sum is approximate).
    for i, delta in enumerate(deltas):
        value = bounds[i] if i < len(bounds) else abs(bounds[-1]) * 2 + 1
        for _ in range(delta):
            child.observe(value)
