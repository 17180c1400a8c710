"""enable_metrics and metrics_router: the observer installed on a server, its counts exported
to a prometheus_client registry, and an endpoint serving them."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import math
import os
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import REGISTRY, CollectorRegistry, multiprocess
from prometheus_client.exposition import choose_encoder

from ..server import Realtime
from .counts import EventNamesObserver, MetricsObserver
from .export import Flusher, RegistryCollector, Shape, attach, detach, sink_for

logger = logging.getLogger("fastapi_realtime.metrics")

DEFAULT_LATENCY_BUCKETS: tuple[float, ...] = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
FLUSH_INTERVAL = 1.0
"""Seconds between two pushes of a process's counts to the multiprocess files."""


def multiprocess_dir() -> str | None:
    """prometheus_client's multiprocess mode is on (the names it reads, in its order)."""
    return os.environ.get("prometheus_multiproc_dir") or os.environ.get("PROMETHEUS_MULTIPROC_DIR")


class RealtimeMetrics:
    """The metrics of one server. `registry` holds them (one process); in multiprocess mode
    they go to the files of PROMETHEUS_MULTIPROC_DIR, pushed every FLUSH_INTERVAL and at scrape."""

    def __init__(
        self,
        realtime: Realtime,
        *,
        registry: CollectorRegistry | None,
        event_names: bool,
        max_event_names: int,
        max_namespaces: int,
        prefix: str,
        latency_buckets: Sequence[float],
    ) -> None:
        bounds = tuple(sorted(float(b) for b in latency_buckets if not math.isinf(float(b))))
        if not bounds:
            raise ValueError("latency_buckets needs at least one finite bound")
        self.registry = registry if registry is not None else REGISTRY
        self.event_names = event_names
        self.max_event_names = max_event_names
        self.max_namespaces = max_namespaces
        self.prefix = prefix
        self.latency_buckets = bounds
        self.multiprocess_dir = multiprocess_dir()
        observer_class = EventNamesObserver if event_names else MetricsObserver
        self.observer: MetricsObserver = observer_class(bounds, max_namespaces, max_event_names)
        shape = Shape(prefix, event_names, bounds)
        self._realtime = weakref.ref(realtime)  # weak: the server's entry in _enabled must not keep it
        self._collector: RegistryCollector | None = None
        self._flusher: Flusher | None = None
        self._timer_loop: asyncio.AbstractEventLoop | None = None
        self._exposition: CollectorRegistry | None = None
        if self.multiprocess_dir is not None:
            self._flusher = Flusher(sink_for(shape), self.observer)
            self.observer.on_activity = self._start_timer
            _at_exit(self)
        else:
            self._collector = attach(self.registry, shape, self.observer)
        realtime.observe(self.observer)

    @property
    def multiprocess(self) -> bool:
        return self.multiprocess_dir is not None

    def flush(self) -> None:
        """Push this process's counts to the multiprocess files now (nothing to do otherwise)."""
        if self._flusher is not None:
            self._flusher.flush()

    def exposition_registry(self) -> CollectorRegistry:
        """What /metrics serves: `registry`, or in multiprocess mode every process's values."""
        if self.multiprocess_dir is None:
            return self.registry
        if self._exposition is None:
            exposition = CollectorRegistry()
            multiprocess.MultiProcessCollector(exposition, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
            self._exposition = exposition
        return self._exposition

    def disable(self) -> None:
        """Stop counting and unregister (the server may enable metrics again afterwards)."""
        realtime = self._realtime()
        if realtime is not None:
            if realtime in _enabled and _enabled[realtime] is self:
                del _enabled[realtime]
            try:
                realtime.unobserve(self.observer)
            except ValueError:
                pass  # already removed by the app
        if self._collector is not None:
            detach(self.registry, self._collector, self.observer)
            self._collector = None
        if self._flusher is not None:
            self._flusher.flush()
            _mp_live.discard(self)
        self._timer_loop = None

    # -- multiprocess: the periodic push --------------------------------------------------------
    def _start_timer(self) -> None:
        """Called on each connection: arm the push timer on this loop if it is not yet (a new
        loop, as under a test runner, gets its own)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if self._timer_loop is not loop:
            self._timer_loop = loop
            loop.call_later(FLUSH_INTERVAL, self._tick, loop)

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer_loop is not loop:
            return  # disabled, or superseded by a timer on another loop
        try:
            self.flush()
        except Exception:
            logger.exception("pushing the metrics to the multiprocess files failed")
        loop.call_later(FLUSH_INTERVAL, self._tick, loop)


# The server -> its metrics (weak keys: a server that goes away takes its entry with it).
_enabled: weakref.WeakKeyDictionary[Realtime, RealtimeMetrics] = weakref.WeakKeyDictionary()
_enable_lock = threading.Lock()
# Multiprocess mode: what to push once more as the process exits.
_mp_live: weakref.WeakSet[RealtimeMetrics] = weakref.WeakSet()
_exit_hook_installed = False


def _at_exit(metrics: RealtimeMetrics) -> None:
    global _exit_hook_installed
    _mp_live.add(metrics)
    if not _exit_hook_installed:
        _exit_hook_installed = True
        atexit.register(_exit_flush)


def _lifespan(metrics: RealtimeMetrics) -> Callable[[Any], contextlib.AbstractAsyncContextManager[None]]:
    """The app's lifespan, through the router: uvicorn ends a worker on SIGTERM by raising the
    signal again once the app has shut down, so no atexit hook runs; this exit does."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        yield
        if metrics.multiprocess:
            _exit_flush()

    return lifespan


def _exit_flush() -> None:
    """The last counts, then this process's live gauges are dropped (they are the sum over live
    processes only). A worker that is killed, or forked and left with os._exit (gunicorn), runs
    no atexit: there call prometheus_client.multiprocess.mark_process_dead from the master."""
    path = multiprocess_dir()
    for metrics in list(_mp_live):
        try:
            metrics.flush()
        except Exception:
            logger.exception("pushing the metrics at exit failed")
    if path is not None:
        multiprocess.mark_process_dead(os.getpid(), path)  # type: ignore[no-untyped-call]


def enable_metrics(
    realtime: Realtime,
    *,
    registry: CollectorRegistry | None = None,
    event_names: bool = False,
    max_event_names: int = 100,
    max_namespaces: int = 100,
    prefix: str = "socketio",
    latency_buckets: Sequence[float] = DEFAULT_LATENCY_BUCKETS,
) -> RealtimeMetrics:
    """Count what `realtime` does and show it in `registry` (default: prometheus_client's, so
    an app's existing /metrics shows it).

    `event_names=True` adds the event name as a label of the event counters, for the first
    `max_event_names` distinct names (later ones count as "other"); namespaces past
    `max_namespaces` count as "other" too. Calling it again on the same server returns the
    same object; the later call's options must then be the defaults or the same.
    """
    given = {
        "registry": registry, "event_names": event_names, "max_event_names": max_event_names,
        "max_namespaces": max_namespaces, "prefix": prefix, "latency_buckets": latency_buckets,
    }
    with _enable_lock:
        existing = _enabled.get(realtime)
        if existing is not None:
            _check_same(existing, given)
            return existing
        metrics = RealtimeMetrics(
            realtime, registry=registry, event_names=event_names, max_event_names=max_event_names,
            max_namespaces=max_namespaces, prefix=prefix, latency_buckets=latency_buckets,
        )
        _enabled[realtime] = metrics
        return metrics


_DEFAULTS: dict[str, Any] = {
    "registry": None, "event_names": False, "max_event_names": 100, "max_namespaces": 100,
    "prefix": "socketio", "latency_buckets": DEFAULT_LATENCY_BUCKETS,
}


def _check_same(existing: RealtimeMetrics, given: dict[str, Any]) -> None:
    for name, value in given.items():
        if value is _DEFAULTS[name] or value == _DEFAULTS[name]:
            continue
        current: Any = getattr(existing, name)
        if name == "registry":
            same = value is current
        elif name == "latency_buckets":
            same = tuple(sorted(float(b) for b in value if not math.isinf(float(b)))) == current
        else:
            same = value == current
        if not same:
            raise ValueError(f"metrics are already enabled on this server with another {name}")


def metrics_router(
    realtime: Realtime, *, path: str = "/metrics", registry: CollectorRegistry | None = None, **enable_options: Any
) -> APIRouter:
    """A router serving the metrics (enabled if they are not yet) in Prometheus' text format,
    or OpenMetrics when the scraper asks for it. In multiprocess mode it serves the sum over
    every process (prometheus_client's MultiProcessCollector)."""
    metrics = enable_metrics(realtime, registry=registry, **enable_options)
    router = APIRouter(lifespan=_lifespan(metrics))

    # A plain function: FastAPI runs it in its thread pool, so a large registry does not hold
    # up the event loop (the counts are read thread-safely, see counts.MetricsObserver.snapshot).
    def serve_metrics(request: Request) -> Response:
        metrics.flush()
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(metrics.exposition_registry()), headers={"Content-Type": content_type})

    router.add_api_route(path, serve_metrics, methods=["GET"], include_in_schema=False)
    return router
