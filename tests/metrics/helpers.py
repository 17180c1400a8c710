"""Scraping /metrics over HTTP into {(name, labels): value}, and waiting for expected values."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families

Key = tuple[str, frozenset[tuple[str, str]]]
Series = dict[Key, float]


async def scrape(base: str, prefix: str = "socketio_") -> Series:
    async with httpx.AsyncClient(timeout=5) as http:
        response = await http.get(base + "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    out: Series = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name.startswith(prefix):
                out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def series(name: str, value: float, **labels: str) -> tuple[Key, float]:
    return (name, frozenset(labels.items())), value


def timing_dependent(key: Key) -> bool:
    """The ack histogram's finite buckets and sum depend on how long the acks took."""
    name, labels = key
    return name == "socketio_ack_latency_seconds_sum" or (
        name == "socketio_ack_latency_seconds_bucket" and ("le", "+Inf") not in labels
    )


async def settled(base: str, expected: dict[Key, float], skip: Callable[[Key], bool] = timing_dependent, limit: float = 10.0) -> Series:
    """Scrape until the series (but those `skip` leaves out) equal `expected`, or `limit`
    seconds pass; returns the last scrape, so the caller's assert shows any difference."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while True:
        got = {key: v for key, v in (await scrape(base)).items() if not skip(key)}
        if got == expected or loop.time() > deadline:
            return got
        await asyncio.sleep(0.1)
