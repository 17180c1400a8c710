"""Prometheus metrics of a Realtime server (extra `metrics`: prometheus-client).

    metrics = enable_metrics(realtime)          # or realtime.enable_metrics()
    app.include_router(metrics_router(realtime))  # /metrics, unless the app serves its own

The hooks only count in plain Python (no lock, no prometheus_client call on an event's path);
the counts become metric families when the registry is collected. Under prometheus_client's
multiprocess mode (PROMETHEUS_MULTIPROC_DIR) each process pushes its counts to the shared files
every second and at scrape, and the router serves the sum over the processes.
"""

from .counts import OTHER, BoundedLabels
from .enable import DEFAULT_LATENCY_BUCKETS, FLUSH_INTERVAL, RealtimeMetrics, enable_metrics, metrics_router

__all__ = [
    "DEFAULT_LATENCY_BUCKETS", "FLUSH_INTERVAL", "OTHER", "BoundedLabels", "RealtimeMetrics", "enable_metrics",
    "metrics_router",
]
