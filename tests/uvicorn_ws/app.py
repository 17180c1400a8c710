"""The Socket.IO app served with the coalescing protocol by the tests of this folder.

Its handlers send many frames within one event-loop iteration (no await between the emits
suspends), so that the protocol joins them into one write: the clients check that they all
arrive, in order, intact, and before a close that follows them.
"""

# No `from __future__ import annotations`: the core finds the socket parameter by its annotation.
from typing import Any

from fastapi_realtime import Realtime, Socket

rt = Realtime(cors_allowed_origins="*")
app = rt


def pattern(size: int) -> str:
    """A payload whose every position can be checked (a shifted or cut frame shows)."""
    return ("0123456789abcdefghijklmnopqrstuv" * (size // 32 + 1))[:size]


@rt.on("connect")
async def connect(socket: Socket, auth: Any) -> None:
    await socket.join("all")


@rt.on("burst")
async def burst(socket: Socket, n: int) -> int:
    """`n` events "m" 0..n-1 to this client, then the ack: all written in one loop iteration."""
    for i in range(int(n)):
        await socket.emit("m", i)
    return int(n)


@rt.on("room_burst")
async def room_burst(socket: Socket, n: int) -> int:
    """`n` events "r" 0..n-1 to every client in the room, in one loop iteration."""
    op = rt.to("all")
    for i in range(int(n)):
        await op.emit("r", i)
    return int(n)


@rt.on("big")
async def big(socket: Socket, size: int) -> int:
    """A small frame, a large one and a small one again, in one iteration."""
    await socket.emit("m", -1)
    await socket.emit("big", pattern(int(size)))
    await socket.emit("m", -2)
    return int(size)


@rt.on("burst_close")
async def burst_close(socket: Socket, n: int) -> None:
    """`n` events "m", then the server ends the connection: the frames go out before the close."""
    for i in range(int(n)):
        await socket.emit("m", i)
    await socket.disconnect(close=True)
