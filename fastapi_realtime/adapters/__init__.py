"""Rooms and fan-out behind a narrow seam: in memory by default, Redis for several nodes.

The Redis adapters import redis-py and msgpack only when they are used (`fastapi-realtime[redis]`).
"""

from .base import Adapter, BroadcastOptions, NamespaceHooks, SocketInfo
from .memory import MemoryAdapter
from .redis import RedisAdapter, RedisAdapterFactory

__all__ = [
    "Adapter",
    "BroadcastOptions",
    "MemoryAdapter",
    "NamespaceHooks",
    "RedisAdapter",
    "RedisAdapterFactory",
    "SocketInfo",
]
