"""The README's sticky-session recipe, run as printed: nginx with `ip_hash` in front of two
uvicorn processes that share rooms through the Redis adapter. Long-polling (and the upgrade
to WebSocket) works through it, and broadcasts reach clients whichever process holds them."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port, wait_for_port

from .conftest import RedisServer
from .nodes import Client, python_node, until

pytestmark = pytest.mark.timeout(60)


def readme_nginx_block() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("**Sticky by client address.**")
    block = re.search(r"```nginx\n(.*?)```", text[start:], re.S)
    assert block, "README has no nginx block after 'Sticky by client address'"
    return block.group(1)


@contextlib.contextmanager
def nginx(block: str, workdir: Path) -> Iterator[subprocess.Popen[bytes]]:
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "nginx.conf"
    conf.write_text(
        f"daemon off;\npid {workdir}/nginx.pid;\nerror_log {workdir}/error.log;\nevents {{}}\n"
        f"http {{\naccess_log off;\nclient_body_temp_path {workdir}/body;\nproxy_temp_path {workdir}/proxy;\n"
        f"fastcgi_temp_path {workdir}/fcgi;\nuwsgi_temp_path {workdir}/uwsgi;\nscgi_temp_path {workdir}/scgi;\n"
        f"{block}\n}}\n"
    )
    proc = subprocess.Popen([binary, "-c", str(conf), "-p", str(workdir)], stderr=subprocess.PIPE)
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(10)


def test_nginx_ip_hash_recipe(redis_server: RedisServer, tmp_path: Path) -> None:
    ports = [free_port(), free_port()]
    front = free_port()
    block = readme_nginx_block()
    # The README's ports and `listen 80`, made free ones of 127.0.0.1.
    block = block.replace("127.0.0.1:8001", f"127.0.0.1:{ports[0]}").replace("127.0.0.1:8002", f"127.0.0.1:{ports[1]}")
    block = block.replace("listen 80;", f"listen 127.0.0.1:{front};")
    with (
        python_node(redis_server.url, name="a", port=ports[0]) as a,
        python_node(redis_server.url, name="b", port=ports[1]) as b,
        nginx(block, tmp_path / "nginx") as proxy,
    ):
        wait_for_port(front, proxy)
        url = f"http://127.0.0.1:{front}"

        async def body() -> None:
            polling = [await Client(url, transport="polling").connect({"rooms": ["r"]}) for _ in range(3)]
            upgraded = Client(url, transport="polling")
            await upgraded.sio.connect(url, auth={"rooms": ["r"]}, wait_timeout=5)  # polling, then WebSocket
            try:
                for node in (a, b):
                    await node.acontrol("emit", rooms=["r"], event=f"from-{node.name}", args=[])
                    await until(lambda: all(c.got(f"from-{node.name}") for c in [*polling, upgraded]),
                                what=f"broadcast from {node.name}")
                res = await b.acontrol("emitWithAck", rooms=["r"], event="q", args=[], timeout=3000)
                assert len(res["responses"]) == 4 and "error" not in res
                # many polling round trips of one session, all through the proxy to its process
                for i in range(20):
                    assert await polling[0].sio.call("echo", i, timeout=5) == i
            finally:
                for c in [*polling, upgraded]:
                    await c.close()

        asyncio.run(asyncio.wait_for(body(), 40))
