"""A server on the msgpack parser (npm socket.io-msgpack-parser's format), for test_msgpack.py."""

from __future__ import annotations

from typing import Any

from fastapi_realtime import Realtime, Socket

rt = Realtime(parser="msgpack", ping_interval=5.0, ping_timeout=5.0)
app = rt


@rt.on("connect")
async def connect(socket: Socket, auth: Any) -> None:
    await socket.join("all")
    await socket.emit("welcome", {"id": socket.id, "auth": auth})


@rt.on("echo")
async def echo(socket: Socket, *args: Any) -> Any:
    return tuple(args)


@rt.on("shout")
async def shout(socket: Socket, text: str) -> None:
    await rt.to("all").emit("shouted", text, b"\x00\x01\xff")


@rt.on("ask")
async def ask(socket: Socket, question: str) -> Any:
    return await socket.emit_with_ack("question", question, timeout=5)
