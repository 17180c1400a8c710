"""Rooms and fan-out behind a narrow seam: in memory by default, Redis for several nodes.

The Redis adapters import redis-py and msgpack only when they are used (`fastapi-realtime[redis]`).
"""

from .base import Adapter, BroadcastOptions, NamespaceHooks, SocketInfo
from .emitter import AsyncRedisEmitter, RedisEmitter
from .memory import MemoryAdapter
from .redis import RedisAdapter, RedisAdapterFactory
from .redis_streams import RedisStreamsAdapter
from .sharded import ShardedRedisAdapter

__all__ = [
    "Adapter",
    "AsyncRedisEmitter",
    "BroadcastOptions",
    "MemoryAdapter",
    "NamespaceHooks",
    "RedisAdapter",
    "RedisAdapterFactory",
    "RedisEmitter",
    "RedisStreamsAdapter",
    "ShardedRedisAdapter",
    "SocketInfo",
]
