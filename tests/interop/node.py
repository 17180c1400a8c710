"""Shared by the interop tests: runs a node script of this folder (socket.io-client 4.8) and reads
its JSON report lines; checks what every client's handshake holds."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from tests.conftest import NODE_DIR


def unbin(value: Any) -> Any:
    """Turn the scripts' {"$bin": hex} markers back into bytes."""
    if isinstance(value, dict):
        if set(value) == {"$bin"}:
            return bytes.fromhex(value["$bin"])
        return {k: unbin(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unbin(v) for v in value]
    return value


class NodeRun:
    """A running `node <script> <scenario> <url> <mode> ...`; its JSON stdout lines are read with deadlines."""

    def __init__(self, script: Path, scenario: str, url: str, mode: str, *extra: str, limit: float = 8.0) -> None:
        self.scenario = scenario
        self.limit = limit
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.other: list[str] = []  # non-JSON output (node warnings, stack traces)
        self.proc = subprocess.Popen(
            ["node", str(script), scenario, url, mode, *extra],
            cwd=NODE_DIR,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "INTEROP_NODE_TIMEOUT_MS": str(int(limit * 1000))},
        )
        # a reader thread, so that waiting for a line can time out
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.put(raw)
        self.lines.put(None)

    def next_json(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                raw = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise AssertionError(f"{self.scenario}: no output within {timeout}s; other output: {self.other}")
            if raw is None:
                raise AssertionError(f"{self.scenario}: node exited without a result; output: {self.other}")
            if raw.startswith("{"):
                return dict(json.loads(raw))
            self.other.append(raw.rstrip())

    def result(self) -> dict[str, Any]:
        """The final line, with bytes restored; asserts the scenario succeeded."""
        try:
            res = self.next_json(self.limit + 5)
            self.proc.wait(5)
        finally:
            self.kill()
        assert res.get("ok") is True, (
            f"node scenario {self.scenario!r} failed: {res.get('error')}\n"
            f"trace: {res.get('trace')}\nother output: {self.other}"
        )
        assert self.proc.returncode == 0
        return dict(unbin(res))

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def check_handshake(hs: dict[str, Any], url: str, transport: str, before_ms: float, after_ms: float) -> None:
    """The handshake fields every client gets: those of the request that opened the connection."""
    assert hs["headers"]["host"] == url.removeprefix("http://")
    assert hs["query"]["EIO"] == "4"
    assert hs["query"]["transport"] == transport
    assert hs["url"].startswith("/socket.io/?")
    assert "EIO=4" in hs["url"].split("?", 1)[1].split("&")
    assert hs["address"] == "127.0.0.1"
    assert hs["secure"] is False
    # an HTTP date (seconds) and a millisecond timestamp, both taken while the client connected
    when = parsedate_to_datetime(hs["time"]).timestamp()
    assert before_ms / 1000 - 1 <= when <= after_ms / 1000 + 1
    assert before_ms - 1000 <= hs["issued"] <= after_ms + 1000
