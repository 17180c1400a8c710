"""Node socket.io 4.8 servers as members of a Redis-backed cluster, for the mixed-cluster tests.

`node_cluster_node(redis_url, adapter, options)` runs tests/interop/cluster_node.mjs (a socket.io server with
@socket.io/redis-adapter `redis` / `sharded`, or @socket.io/redis-streams-adapter `streams`) on a free port of
127.0.0.1 and yields a `NodeClusterNode`; `node.control(name, ...)` drives it through its HTTP control API
(documented at the top of cluster_node.mjs and on `NodeClusterNode.control`). `run_node_emitter` runs
@socket.io/redis-emitter commands (tests/interop/emitter.mjs).

Binary values are `bytes` on this side and {"$bin": hex} in the JSON, both ways.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

from tests.conftest import NODE_DIR, free_port
from tests.interop.node import unbin

CLUSTER_NODE = NODE_DIR / "cluster_node.mjs"
EMITTER = NODE_DIR / "emitter.mjs"
READY_TIMEOUT = 20.0
CONTROL_TIMEOUT = 10.0


def tobin(value: Any) -> Any:
    """Bytes to the scripts' {"$bin": hex} marker (the inverse of `unbin`)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bin": bytes(value).hex()}
    if isinstance(value, dict):
        return {k: tobin(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [tobin(v) for v in value]
    return value


class NodeClusterNode:
    """A running cluster_node.mjs: `url` (http://127.0.0.1:port, socket.io at /socket.io/), `uid` (the adapter
    uid of "/", as it appears in the adapter's messages), `uids` ({namespace: uid}), and `output()` (what the
    process printed so far). `http_timeout` bounds each control call (10 s; raise it for a longer ack timeout)."""

    def __init__(self, proc: subprocess.Popen[str], port: int, adapter: str) -> None:
        self.proc = proc
        self.port = port
        self.adapter = adapter
        self.url = f"http://127.0.0.1:{port}"
        self.uid = ""
        self.uids: dict[str, str] = {}
        self.http_timeout = CONTROL_TIMEOUT
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._output: list[str] = []
        # a reader thread, so that waiting for the ready line can time out
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self._output.append(raw)
            self._lines.put(raw)
        self._lines.put(None)

    def output(self) -> str:
        return "".join(self._output)

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                raw = self._lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise RuntimeError(f"node {self.adapter} not ready within {timeout}s; output:\n{self.output()}") from None
            if raw is None:
                self.proc.wait(5)
                raise RuntimeError(f"node {self.adapter} exited with {self.proc.returncode}; output:\n{self.output()}")
            if raw.startswith("{"):
                msg = json.loads(raw)
                if msg.get("ready") is True:
                    self.uid = str(msg["uid"])
                    self.uids = {str(k): str(v) for k, v in msg["uids"].items()}
                    return
                if msg.get("ready") is False:
                    raise RuntimeError(f"node {self.adapter} failed to start: {msg.get('error')}\n{self.output()}")

    def control(self, name: str, body: dict[str, Any] | None = None, /, **fields: Any) -> Any:
        """POST /control/<name> with `body` and `fields` (a trailing `_` is dropped from a field name, for
        `except_`), bytes as {"$bin"}; returns the JSON answer with bytes restored. Every call takes `nsp`
        (default "/"); `rooms`/`except` select sockets as `io.to(rooms).except(except)` does.

        - emit {event, args, rooms, except, volatile?, local?, compress?} -> {ok}
        - emitWithAck {event, args, rooms, except, timeout (ms, 5000)} -> {responses} | {error, responses}
        - fetchSockets {rooms, except, local?, timeout?} -> [{id, rooms, data, handshake}] (the whole cluster)
        - socketsJoin / socketsLeave {rooms, except, target: [room...], local?} -> {ok}
        - disconnectSockets {rooms, except, close, local?} -> {ok}
        - serverSideEmit {event, args, ack: bool, timeout (ms, 8000: a guard; the adapters time out at 5 s, the
          classic one at `requestsTimeout`)} -> {ok} | {responses} | {error, responses}
        - serverCount -> {count}
        - received -> [{nsp, event, args, ack}]: the server-side events this node received ("ping-node" with an
          ack answers {from: "node", args}; other acked events are left unanswered)
        - events -> [{nsp, id, event, args, ack}]: the events this node's sockets received from their clients
        - localSockets -> [{id, rooms}] (this node only); rooms -> {room: [sid...]} (this node's adapter)
        - settle -> {ok} once every pending (S|P)SUBSCRIBE is confirmed; reset -> {ok} (clears received/events)

        socketsJoin/Leave/disconnectSockets call the adapter as io.in(...).socketsJoin(...) does, awaiting it:
        with a ClusterAdapter (sharded, streams) the local effect is done when the call returns; the classic
        adapter applies even local sockets when its own request comes back from Redis, so poll for the effect.
        A non-2xx answer raises RuntimeError with the node's output.
        """
        payload = {k.removesuffix("_"): v for k, v in {**(body or {}), **fields}.items()}
        request = urllib.request.Request(
            f"{self.url}/control/{name}",
            data=json.dumps(tobin(payload)).encode(),
            headers={"content-type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.http_timeout) as res:
                return unbin(json.loads(res.read()))
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise RuntimeError(f"control {name} failed ({exc.code}): {detail}\nnode output:\n{self.output()}") from None
        except (urllib.error.URLError, TimeoutError) as exc:
            raise RuntimeError(f"control {name} failed: {exc}\nnode output:\n{self.output()}") from None

    def stop(self) -> int:
        """SIGTERM (the node closes io and exits 0), then SIGKILL after 5 s; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)


@contextlib.contextmanager
def node_cluster_node(
    redis_url: str, adapter: str, options: dict[str, Any] | None = None
) -> Iterator[NodeClusterNode]:
    """Run a Node cluster member (`adapter`: "redis", "sharded" or "streams") on `redis_url` for the block.

    `options` go to cluster_node.mjs as JSON: `cluster` (a Redis Cluster's URLs, used instead of redis_url),
    `namespaces` (extra namespaces), `server` / `connectionStateRecovery` (Server options), and the adapter's own
    options (key, requestsTimeout, channelPrefix, subscriptionMode, streamName, ...). The block starts once the
    node's subscriptions are live. Its output is written to stderr when it stops (pytest shows it for a failing
    test), and the block fails if the node crashed meanwhile or did not exit 0 on SIGTERM.
    """
    port = free_port()
    args = ["node", str(CLUSTER_NODE), str(port), redis_url, adapter]
    if options:
        args.append(json.dumps(options))
    proc = subprocess.Popen(
        args, cwd=NODE_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "NODE_NO_WARNINGS": "1"},
    )
    node = NodeClusterNode(proc, port, adapter)
    crashed: int | None = None
    code = 0
    try:
        node.wait_ready()
        yield node
        crashed = proc.poll()
    finally:
        code = node.stop()
        sys.stderr.write(f"--- node {adapter} :{port} (exit {code}) ---\n{node.output()}")
    if crashed is not None:
        raise RuntimeError(f"node {adapter} :{port} died during the test (exit {crashed}):\n{node.output()}")
    if code != 0:  # SIGTERM makes it close io and exit 0
        raise RuntimeError(f"node {adapter} :{port} did not stop cleanly (exit {code}):\n{node.output()}")


def run_node_emitter(
    redis_url: str, commands: list[dict[str, Any]], timeout: float = 20, options: dict[str, Any] | None = None
) -> None:
    """Run @socket.io/redis-emitter `commands` (see tests/interop/emitter.mjs: op emit / socketsJoin /
    socketsLeave / disconnectSockets / serverSideEmit / sleep, with nsp, rooms, except...) on `redis_url`;
    returns once every message is in Redis. `options`: {key}."""
    args = ["node", str(EMITTER), redis_url, json.dumps(tobin(commands))]
    if options:
        args.append(json.dumps(options))
    res = subprocess.run(args, cwd=NODE_DIR, capture_output=True, text=True, timeout=timeout)
    last = res.stdout.strip().splitlines()[-1:] or [""]
    if res.returncode != 0 or last[0] != '{"ok":true}':
        raise RuntimeError(f"emitter failed (exit {res.returncode}):\n{res.stdout}{res.stderr}")
