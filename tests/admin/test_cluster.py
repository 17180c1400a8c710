"""Two instrumented nodes sharing a Redis adapter: an admin client on one node sees the other
node's server_stats (its own serverId), its sockets in all_sockets, and its socket events."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.admin.helpers import Recorder, admin, run, serve_admin
from tests.redis.conftest import RedisServer

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def test_each_node_reports_itself(redis_url: str) -> None:
    with serve_admin(REDIS_URL=redis_url, SERVER_ID="node-a") as url_a, \
            serve_admin(REDIS_URL=redis_url, SERVER_ID="node-b") as url_b:
        async def body() -> None:
            remote = await Recorder(url_b).connect(["/"], auth={"rooms": ["far"]})
            watcher = await admin(url_a)
            try:
                await watcher.wait_for("server_stats", lambda a: a[0]["serverId"] == "node-a")
                # Node b's stats are snapshots every 2 s: one taken after its client joined shows it.
                await watcher.wait_for(
                    "server_stats",
                    lambda a: a[0]["serverId"] == "node-b" and {"name": "/", "socketsCount": 1} in a[0]["namespaces"],
                )
                (sockets,) = await watcher.wait_for("all_sockets")
                listed = next(s for s in sockets if s["id"] == remote.sid())
                assert sorted(listed["rooms"]) == sorted(["far", remote.sid()])
                assert listed["transport"] == "websocket" and len(listed["clientId"]) == 12

                late = await Recorder(url_b).connect(["/"])
                await watcher.wait_for("socket_connected", lambda a: a[0]["id"] == late.sid())
                # An operation from node a's admin reaches node b's socket.
                await watcher.sio.emit("emit", ("/", late.sid(), "hello", "from-a"), namespace="/admin")
                assert await late.wait_for("hello") == ["from-a"]
                await late.close()
            finally:
                await watcher.close()
                await remote.close()

        run(body, 30)
