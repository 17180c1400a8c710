"""The fixture itself: a real redis-server that answers, and comes back after a restart."""

from __future__ import annotations

import redis

from .conftest import RedisServer


def test_redis_server_answers_and_restarts(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    assert client.ping()
    client.set("k", "v")
    redis_server.restart()
    client = redis.Redis.from_url(redis_server.url)
    assert client.get("k") is None  # no persistence: a restart loses everything
    client.close()
