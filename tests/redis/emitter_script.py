"""Runs RedisEmitter / AsyncRedisEmitter commands against a Redis, as a process of its own (a worker
that serves no clients), for tests/redis/test_emitter.py.

    python -m tests.redis.emitter_script sync|async <redisUrl> <commandsJSON> [optionsJSON]

The commands are those of tests/interop/emitter.mjs (Node's emitter), so one list drives either:
a list, run in order; every command takes nsp (default "/"), rooms and except (room lists):
    {"op": "emit", "event": "...", "args": [...], "volatile"?: bool, "compress"?: bool}
    {"op": "socketsJoin", "target": ["room", ...]}
    {"op": "socketsLeave", "target": ["room", ...]}
    {"op": "disconnectSockets", "close"?: bool}
    {"op": "serverSideEmit", "event": "...", "args": [...]}
    {"op": "sleep", "ms": 100}
Binary arguments are written {"$bin": "<hex>"}. optionsJSON: {"key"?: "socket.io", "client"?: true}
(with "client", the emitter is made with from_client over a redis-py client of the script's own).
Prints {"ok": true, "published": [what each PUBLISH answered...]}, or {"ok": false, "error": ...}
and exits 1.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import traceback
from typing import Any

import redis
import redis.asyncio

from fastapi_realtime.adapters import AsyncRedisEmitter, RedisEmitter
from fastapi_realtime.adapters.emitter import AsyncEmitterOperator, EmitterOperator
from tests.interop.node import unbin


def rooms(cmd: dict[str, Any], name: str) -> list[str]:
    value = cmd.get(name)
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def run_sync(url: str, commands: list[dict[str, Any]], options: dict[str, Any]) -> list[int]:
    key = options.get("key", "socket.io")
    if options.get("client"):
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        emitter = RedisEmitter.from_client(client, key=key)
    else:
        client = None
        emitter = RedisEmitter.from_url(url, key=key)
    published: list[int] = []
    try:
        with emitter:
            for cmd in commands:
                ns = emitter.of(cmd.get("nsp", "/"))
                op: EmitterOperator = ns.to(rooms(cmd, "rooms")).except_(rooms(cmd, "except"))
                kind = cmd["op"]
                if kind == "emit":
                    if cmd.get("volatile"):
                        op = op.volatile
                    if "compress" in cmd:
                        op = op.compress(cmd["compress"])
                    published.append(op.emit(cmd["event"], *unbin(cmd.get("args") or [])))
                elif kind == "socketsJoin":
                    published.append(op.sockets_join(rooms(cmd, "target")))
                elif kind == "socketsLeave":
                    published.append(op.sockets_leave(rooms(cmd, "target")))
                elif kind == "disconnectSockets":
                    published.append(op.disconnect_sockets(bool(cmd.get("close"))))
                elif kind == "serverSideEmit":
                    published.append(ns.server_side_emit(cmd["event"], *unbin(cmd.get("args") or [])))
                elif kind == "sleep":
                    time.sleep(cmd.get("ms", 0) / 1000)
                else:
                    raise ValueError(f"unknown command {cmd!r}")
    finally:
        if client is not None:
            client.close()
    return published


async def run_async(url: str, commands: list[dict[str, Any]], options: dict[str, Any]) -> list[int]:
    key = options.get("key", "socket.io")
    if options.get("client"):
        client = redis.asyncio.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        emitter = AsyncRedisEmitter.from_client(client, key=key)
    else:
        client = None
        emitter = AsyncRedisEmitter.from_url(url, key=key)
    published: list[int] = []
    try:
        async with emitter:
            for cmd in commands:
                ns = emitter.of(cmd.get("nsp", "/"))
                op: AsyncEmitterOperator = ns.to(rooms(cmd, "rooms")).except_(rooms(cmd, "except"))
                kind = cmd["op"]
                if kind == "emit":
                    if cmd.get("volatile"):
                        op = op.volatile
                    if "compress" in cmd:
                        op = op.compress(cmd["compress"])
                    published.append(await op.emit(cmd["event"], *unbin(cmd.get("args") or [])))
                elif kind == "socketsJoin":
                    published.append(await op.sockets_join(rooms(cmd, "target")))
                elif kind == "socketsLeave":
                    published.append(await op.sockets_leave(rooms(cmd, "target")))
                elif kind == "disconnectSockets":
                    published.append(await op.disconnect_sockets(bool(cmd.get("close"))))
                elif kind == "serverSideEmit":
                    published.append(await ns.server_side_emit(cmd["event"], *unbin(cmd.get("args") or [])))
                elif kind == "sleep":
                    await asyncio.sleep(cmd.get("ms", 0) / 1000)
                else:
                    raise ValueError(f"unknown command {cmd!r}")
    finally:
        if client is not None:
            await client.aclose()
    return published


def main(argv: list[str]) -> int:
    try:
        if len(argv) not in (3, 4) or argv[0] not in ("sync", "async"):
            raise SystemExit(__doc__)
        mode, url, commands = argv[0], argv[1], json.loads(argv[2])
        options = json.loads(argv[3]) if len(argv) == 4 else {}
        if mode == "sync":
            published = run_sync(url, commands, options)
        else:
            published = asyncio.run(run_async(url, commands, options))
    except Exception:
        print(json.dumps({"ok": False, "error": traceback.format_exc()}))
        return 1
    print(json.dumps({"ok": True, "published": published}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
