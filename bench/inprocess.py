"""This package's own cost per event and ack, in-process: ``python -m bench.inprocess``.

One client's events go through the ASGI app over WebSocket with no sockets and no server (the
ASGI receive and send are plain coroutines here), one at a time, each answered with an ack
before the next goes in; the raw ASGI echo of bench/app_raw.py runs through the same harness
as the floor. What is left between the two is this package's work per round trip.

CPU time per round trip swings with the machine like every other timing here. ``--valgrind``
counts instructions instead (valgrind's cachegrind, two runs of different lengths, so start-up
cancels out): the same code gives the same count to within a few instructions, so a change of
a fraction of a percent shows, where the timed figures need many rounds to show 10%.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

Message = dict[str, Any]
App = Callable[[dict[str, Any], Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]

EVENT = '421["echo",{"n":1,"s":"hello world"}]'
# What each app answers an EVENT with: the ack (ours), or the frame itself (the echo).
REPLY_PREFIX = {"ours": "431[", "raw": "421["}


def _ours() -> App:
    from fastapi_realtime import Realtime, Socket

    realtime = Realtime()

    async def echo(socket: Socket, data: Any) -> Any:
        return data

    realtime.on("echo")(echo)
    return realtime


def _raw() -> App:
    from bench.app_raw import app

    return app  # type: ignore[no-any-return]


class _Connection:
    """The ASGI side of one WebSocket: messages pushed in, the reply awaited."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._inbox: list[Message] = []
        self._waiter: asyncio.Future[None] | None = None
        self._prefix = ""
        self.replied: asyncio.Future[None] | None = None

    async def receive(self) -> Message:
        while not self._inbox:
            self._waiter = self._loop.create_future()
            await self._waiter
        return self._inbox.pop(0)

    async def send(self, message: Message) -> None:
        text = message.get("text")
        replied = self.replied
        if text is not None and text.startswith(self._prefix) and replied is not None and not replied.done():
            replied.set_result(None)

    def push(self, message: Message) -> None:
        self._inbox.append(message)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def round_trip(self, message: Message, reply_prefix: str) -> None:
        """Push `message` and wait for the app's reply (a sent text starting with `reply_prefix`)."""
        self._prefix = reply_prefix
        self.replied = self._loop.create_future()
        self.push(message)
        await self.replied


async def _run(server: str, rounds: int) -> float:
    """CPU µs per round trip over `rounds` events (after a tenth as many to warm up)."""
    app = _ours() if server == "ours" else _raw()
    connection = _Connection()
    scope = {"type": "websocket", "path": "/ws", "query_string": b"EIO=4&transport=websocket", "headers": []}
    connection.push({"type": "websocket.connect"})
    serving = asyncio.ensure_future(app(scope, connection.receive, connection.send))
    if server == "ours":
        await connection.round_trip({"type": "websocket.receive", "text": "40"}, "40")
    event = {"type": "websocket.receive", "text": EVENT}
    elapsed = 0.0
    for count in (max(1, rounds // 10), rounds):
        started = time.process_time()
        for _ in range(count):
            await connection.round_trip(event, REPLY_PREFIX[server])
        elapsed = time.process_time() - started
    connection.push({"type": "websocket.disconnect", "code": 1000})
    await serving
    return elapsed / rounds * 1e6


def _instructions(server: str, rounds: int) -> int:
    """Instructions (valgrind's `I refs`) of a whole run of `rounds` round trips."""
    command = [
        "valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
        sys.executable, "-m", "bench.inprocess", "--server", server, "--rounds", str(rounds),
    ]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{done.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.inprocess", description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", choices=["ours", "raw", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=50_000, help="round trips timed (default 50,000)")
    parser.add_argument("--valgrind", action="store_true",
                        help="count instructions per round trip with valgrind instead of timing")
    options = parser.parse_args(argv)
    names = ["ours", "raw"] if options.server == "both" else [options.server]
    if options.valgrind and shutil.which("valgrind") is None:
        parser.error("--valgrind needs valgrind on the PATH (Debian: apt install valgrind)")
    results: dict[str, float] = {}
    for name in names:
        if options.valgrind:
            # Two lengths: start-up and imports cancel out in the difference.
            short, long = 1_000, 6_000
            total = (_instructions(name, long) - _instructions(name, short)) / ((long - short) * 1.1)
            results[name] = total
            print(f"{name:5} {total:10,.0f} instructions per event and ack")
        else:
            results[name] = asyncio.run(_run(name, options.rounds))
            print(f"{name:5} {results[name]:8.2f} CPU µs per event and ack")
    if len(results) == 2:
        digits = 0 if options.valgrind else 2
        print(f"ours - raw: {results['ours'] - results['raw']:,.{digits}f} ({results['ours'] / results['raw']:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
