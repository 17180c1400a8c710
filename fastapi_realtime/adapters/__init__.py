"""Rooms and fan-out behind a narrow seam: in memory by default, other backends slot in."""

from .base import Adapter, BroadcastOptions, NamespaceHooks, SocketInfo
from .memory import MemoryAdapter

__all__ = ["Adapter", "BroadcastOptions", "MemoryAdapter", "NamespaceHooks", "SocketInfo"]
