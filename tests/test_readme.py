"""The README's examples run as written and do what its text says.

Every fenced block of README.md is read; an HTML comment on the line right before a fence
tells this file what the block is (directives are separated by `;`):

    <!-- test: file app.py -->          a module: later blocks and tests import it as `app`
    <!-- test: name NAME -->            a complete program, named so a check below can find it
    <!-- test: continues NAME -->       a fragment, run after the block NAME (and what that continues)
    <!-- test: pytest test_x.py -->     pytest tests: run with pytest in a subprocess, beside the modules
    <!-- test: skip (why) -->           not run (only compiled): a listing or a signature, never a program

A ```python block with no comment is a complete program and runs as it is. Every block that
is not skipped runs in `test_block_runs`; the named ones are then driven below (the quick
start and the HTTP routes under real uvicorn with python-socketio's client, the others with
the in-process test client) to check what the text claims.
"""

from __future__ import annotations

import ast
import asyncio
import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio

from fastapi_realtime.testing import ConnectionRefused, RealtimeTestClient
from tests.conftest import ROOT, WS_IMPL, free_port, run_server

pytestmark = pytest.mark.timeout(60)

README = ROOT / "README.md"
DIRECTIVE = re.compile(r"<!-- test: (.*) -->")
FENCE = re.compile(r"```(\S*)")
KEYS = {"file", "name", "continues", "pytest", "skip"}


@dataclass(frozen=True)
class Block:
    lang: str
    source: str
    line: int  # the README line of the block's first line of code
    directives: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str | None:
        if "file" in self.directives:
            return self.directives["file"].removesuffix(".py")
        if "pytest" in self.directives:
            return self.directives["pytest"].removesuffix(".py")
        return self.directives.get("name")

    @property
    def label(self) -> str:
        return f"line{self.line}-{self.name or self.lang}"


def parse_directives(text: str, line: int) -> dict[str, str]:
    directives: dict[str, str] = {}
    for part in text.split(";"):
        key, _, value = part.strip().partition(" ")
        if key not in KEYS or key in directives:
            raise ValueError(f"README.md:{line}: unknown or repeated test directive {key!r}")
        if key == "skip" and not re.fullmatch(r"\(.+\)", value.strip()):
            raise ValueError(f"README.md:{line}: a skip says why, in parentheses")
        if key != "skip" and not value.strip():
            raise ValueError(f"README.md:{line}: {key!r} needs a value")
        directives[key] = value.strip()
    return directives


def read_blocks(text: str) -> list[Block]:
    lines = text.splitlines()
    blocks: list[Block] = []
    pending: tuple[int, dict[str, str]] | None = None
    i = 0
    while i < len(lines):
        directive = DIRECTIVE.fullmatch(lines[i].strip())
        fence = FENCE.fullmatch(lines[i].strip())
        if directive is not None:
            if pending is not None:
                raise ValueError(f"README.md:{pending[0]}: a test directive must come right before a fence")
            pending = (i + 1, parse_directives(directive.group(1), i + 1))
        elif fence is not None:
            end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
            source = "\n".join(lines[i + 1 : end]) + "\n"
            blocks.append(Block(fence.group(1), source, i + 2, pending[1] if pending else {}))
            pending = None
            i = end
        elif pending is not None:
            raise ValueError(f"README.md:{pending[0]}: a test directive must come right before a fence")
        i += 1
    return blocks


BLOCKS = read_blocks(README.read_text(encoding="utf-8"))
NAMED = {block.name: block for block in BLOCKS if block.name is not None}
PYTHON = [block for block in BLOCKS if block.lang == "python"]


def block(name: str) -> Block:
    return NAMED[name]


def chain(name: str) -> list[Block]:
    """The block `name` preceded by what it continues, outermost first."""
    blocks = [block(name)]
    while "continues" in blocks[0].directives:
        blocks.insert(0, block(blocks[0].directives["continues"]))
    return blocks


def run(name: str) -> dict[str, Any]:
    """Execute block `name` (after what it continues) and return its globals; a traceback
    points at README.md lines."""
    namespace: dict[str, Any] = {"__name__": f"readme_{name.replace('-', '_')}"}
    for part in chain(name):
        exec(compile("\n" * (part.line - 1) + part.source, str(README), "exec", dont_inherit=True), namespace)
    return namespace


def module_source(name: str) -> str:
    return "\n".join(f"# README.md line {part.line}\n{part.source}" for part in chain(name))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --------------------------------------------------------------------------- the conventions


def test_conventions_are_kept() -> None:
    for b in BLOCKS:
        if b.directives and b.lang != "python" and set(b.directives) != {"name"}:
            pytest.fail(f"README.md:{b.line}: only a name fits a {b.lang or 'plain'} block")
        if "continues" in b.directives:
            assert b.directives["continues"] in NAMED, f"README.md:{b.line}: continues an unknown block"
        if "file" in b.directives or "pytest" in b.directives:
            assert re.fullmatch(r"\w+\.py", b.directives.get("file") or b.directives["pytest"])
    names = [b.name for b in BLOCKS if b.name is not None]
    assert len(names) == len(set(names)), "block names are unique"
    # Skips stay rare: listings and signatures only.
    assert sum("skip" in b.directives for b in PYTHON) <= 4


def test_the_several_workers_anchor_is_stable() -> None:
    # Log messages link to README.md#several-workers.
    text = README.read_text(encoding="utf-8")
    assert '<a id="several-workers"></a>\n\n## Several uvicorn workers or machines\n' in text


def test_install_line_comes_after_make() -> None:
    text = README.read_text(encoding="utf-8")
    assert text.index("make run") < text.index("make test") < text.index('pip install "fastapi-realtime[server]"')


# --------------------------------------------------------------------------- every block


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server for the blocks that use one (they read REDIS_URL, as the README runs them)."""
    from tests.redis.conftest import RedisServer

    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.mark.parametrize("b", PYTHON, ids=[b.label for b in PYTHON])
def test_block_runs(b: Block, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if "REDIS_URL" in b.source:
        monkeypatch.setenv("REDIS_URL", request.getfixturevalue("redis_url"))
    if "skip" in b.directives:
        # Not a program, but it must still be valid Python (top-level await allowed).
        compile(b.source, str(README), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
    elif "pytest" in b.directives:
        run_pytest_block(b, tmp_path)
    elif b.name is not None:
        run(b.name)
    else:
        exec(compile("\n" * (b.line - 1) + b.source, str(README), "exec", dont_inherit=True), {"__name__": "readme_block"})


def run_pytest_block(b: Block, tmp_path: Path) -> None:
    """Write the README's modules and this test file into a fresh project and run pytest there."""
    for other in BLOCKS:
        if "file" in other.directives:
            (tmp_path / other.directives["file"]).write_text(other.source, encoding="utf-8")
    (tmp_path / b.directives["pytest"]).write_text(b.source, encoding="utf-8")
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")  # not this repository's settings
    tests = [n.name for n in ast.parse(b.source).body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    tests = [n for n in tests if n.startswith("test_")]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", b.directives["pytest"]],
        cwd=tmp_path, capture_output=True, text=True, timeout=50,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(tests)} passed" in done.stdout, done.stdout


# --------------------------------------------------------------------------- the quick start, served


@contextmanager
def serve(name: str, tmp_path: Path) -> Iterator[str]:
    """Serve block `name` (with what it continues) as `app.py`, as the README says:
    `uvicorn app:app --ws websockets-sansio`."""
    (tmp_path / "app.py").write_text(module_source(name), encoding="utf-8")
    port = free_port()
    args = ["-m", "uvicorn", "app:app", "--app-dir", str(tmp_path), "--host", "127.0.0.1",
            "--port", str(port), "--ws", WS_IMPL, "--log-level", "warning"]
    with run_server(args, port):
        yield f"http://127.0.0.1:{port}"


@asynccontextmanager
async def sio_client(url: str, **connect: Any) -> AsyncIterator[tuple[socketio.AsyncClient, asyncio.Queue[Any]]]:
    """python-socketio's client, connected; every event lands in the queue as (event, *args)."""
    client = socketio.AsyncClient(reconnection=False)
    heard: asyncio.Queue[Any] = asyncio.Queue()

    async def record(event: str, *args: Any) -> None:
        await heard.put((event, *args))

    client.on("*", record)
    await client.connect(url, **connect)
    try:
        yield client, heard
    finally:
        await client.disconnect()


async def next_event(heard: asyncio.Queue[Any]) -> Any:
    return await asyncio.wait_for(heard.get(), 5.0)


@pytest.mark.anyio
async def test_quick_start(tmp_path: Path) -> None:
    with serve("app", tmp_path) as url:
        # What the README's JS snippet does, with python-socketio's client.
        async with sio_client(url, auth={"name": "bob"}) as (_, bob_heard), \
                   sio_client(url, auth={"name": "ada"}) as (ada, ada_heard):
            assert await ada.call("message", "hello", timeout=5) == {"ok": True}
            assert await next_event(bob_heard) == ("message", "ada", "hello")
            assert ada_heard.empty()  # socket.to("lobby") leaves the sender out

        nameless = socketio.AsyncClient(reconnection=False)
        errors: list[Any] = []
        nameless.on("connect_error", errors.append)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await nameless.connect(url)
        assert errors == [{"message": "name required", "data": {"field": "name"}}]

        # Pages from the listed origin may connect, others may not.
        async with httpx.AsyncClient(base_url=url) as http:
            for origin, status in [("http://localhost:5173", 200), ("https://elsewhere.example", 403)]:
                answer = await http.get("/socket.io/", params={"EIO": "4", "transport": "polling"},
                                        headers={"origin": origin})
                assert answer.status_code == status, origin
            assert answer.json()["code"] == 4


@pytest.mark.anyio
async def test_emitting_from_http_routes(tmp_path: Path) -> None:
    with serve("http-routes", tmp_path) as url:
        async with httpx.AsyncClient(base_url=url) as http:  # before any client: nobody to tell
            assert (await http.post("/announce", params={"text": "early"})).json() == {"sent": True}
            assert (await http.post("/lobby", params={"text": "early"})).json() == {"sent": True}
        async with sio_client(url, auth={"name": "ada"}) as (_, heard), httpx.AsyncClient(base_url=url) as http:
            answer = await http.post("/announce", params={"text": "hi"})
            assert answer.json() == {"sent": True}
            assert await next_event(heard) == ("announcement", "hi")
            # the plain `def` route, run by FastAPI in a worker thread
            answer = await http.post("/lobby", params={"text": "from a thread"})
            assert answer.json() == {"sent": True}
            assert await next_event(heard) == ("message", "server", "from a thread")


# --------------------------------------------------------------------------- in-process checks


@pytest.mark.anyio
async def test_dependencies_validation_and_errors() -> None:
    ns = run("errors")  # the dependencies example, its event middleware and its exception handler
    realtime = ns["realtime"]
    body = json.loads(block("validation-error").source)
    async with RealtimeTestClient(realtime) as client:
        ada = await client.connect("/chat", auth={"name": "ada"})
        bob = await client.connect("/chat", headers={"x-user": "bob"})  # no name in the auth
        await realtime.of("/chat").in_(bob.id).sockets_join("a")
        await realtime.of("/chat").in_(ada.id).sockets_join("a")

        assert await ada.call("message", {"room": "a", "text": "hi"}) == {"ok": True}
        assert await bob.wait_for("message") == ("ada", {"room": "a", "text": "hi"})
        await bob.call("message", {"room": "a", "text": "yo"})
        assert await ada.wait_for("message") == ("bob", {"room": "a", "text": "yo"})  # from the X-User header

        assert await ada.call("message", {"room": "a"}) == body  # the JSON shown in the README
        await ada.emit("message", {"room": "a"})
        assert await ada.wait_for("error") == {"event": "message", **body}

        assert await ada.call("admin") == {"error": "forbidden"}  # the middleware, then the handler

        eve = await client.connect("/chat", auth={"name": "eve"})
        acks = [await eve.call("message", {"room": "b", "text": str(n)}) for n in range(11)]
        assert acks[:10] == [{"ok": True}] * 10
        assert acks[10] == {"error": "http_error", "status_code": 429, "detail": "Too many events"}


@pytest.mark.anyio
async def test_recovery_example() -> None:
    realtime = run("recovery")["realtime"]
    async with RealtimeTestClient(realtime) as client:
        sio = await client.connect()
        await realtime.to("news").emit("headline", 1)
        assert (await sio.wait_for("headline"))[0] == 1
        first_id = sio.id
        await sio.drop()
        await realtime.to("news").emit("headline", 2)
        await sio.reconnect()
        assert sio.recovered and sio.id == first_id
        assert (await sio.wait_for("headline"))[0] == 2
        assert [args[0] for name, args in sio.received] == [1, 2]  # the missed one, once
        await realtime.to("news").emit("headline", 3)  # the rooms came back
        assert (await sio.wait_for("headline"))[0] == 3

        # No stored event received yet: no offset to send, so a new session.
        fresh = await client.connect()
        assert fresh.offset is None
        await fresh.drop()
        await fresh.reconnect()
        assert fresh.connected and not fresh.recovered


def test_asyncapi_example() -> None:
    ns = run("asyncapi")
    document, page = ns["document"], ns["page"]
    assert document["asyncapi"] == "3.0.0"
    assert document["info"]["title"] == "Chat" and document["info"]["version"] == "2.0.0"
    assert "message" in json.dumps(document["operations"])
    assert page.lstrip().lower().startswith("<!doctype html") and 'href="asyncapi.json"' in page


# --------------------------------------------------------------------------- CORS and several workers


def handshake(app: Any, **headers: str) -> httpx.Response:
    async def get() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
            return await http.get("/socket.io/", params={"EIO": "4", "transport": "polling"}, headers=headers)

    return asyncio.run(get())


def test_cors_middleware_does_not_cover_the_endpoint() -> None:
    from fastapi import FastAPI
    from fastapi.middleware.cors import CORSMiddleware

    from fastapi_realtime import Realtime

    # The default is same origin only; a list adds origins to it.
    assert handshake(Realtime(), origin="http://testserver").status_code == 200
    assert handshake(Realtime(), origin="https://app.example.com").status_code == 403
    examples = run("cors")
    assert handshake(examples["anyone"], origin="https://elsewhere.example").status_code == 200
    assert handshake(examples["listed"], origin="https://app.example.com").status_code == 200
    assert handshake(examples["listed"], origin="http://testserver").status_code == 200
    assert handshake(examples["listed"], origin="https://elsewhere.example").status_code == 403

    ns = run("cors-middleware")
    origin = ns["ORIGINS"][0]
    answer = handshake(ns["app"], origin=origin)
    assert answer.status_code == 200
    assert answer.headers.get_list("access-control-allow-origin") == [origin]

    # The middleware alone does not let that origin in.
    only_middleware = FastAPI()
    only_middleware.add_middleware(CORSMiddleware, allow_origins=ns["ORIGINS"])
    only_middleware.include_router(Realtime().router)
    assert handshake(only_middleware, origin=origin).status_code == 403

    async def websocket(app: Any) -> None:
        async with RealtimeTestClient(app, headers={"origin": origin}) as client:
            await client.connect()

    asyncio.run(websocket(ns["app"]))
    with pytest.raises(ConnectionRefused):
        asyncio.run(websocket(only_middleware))

    # The middleware answers preflights, the realtime path's too (by default it allows GET only).
    async def preflight() -> httpx.Response:
        transport = httpx.ASGITransport(app=ns["app"])
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            headers = {"origin": origin, "access-control-request-method": "POST"}
            return await http.options("/socket.io/", params={"EIO": "4", "transport": "polling"}, headers=headers)

    refused = asyncio.run(preflight())
    assert refused.status_code == 400 and refused.text == "Disallowed CORS method"


def test_websocket_only() -> None:
    realtime = run("websocket-only")["realtime"]
    assert realtime is not None
    answer = handshake(realtime)
    assert answer.status_code == 400 and answer.json() == {"code": 0, "message": "Transport unknown"}

    async def connect() -> None:
        async with RealtimeTestClient(realtime) as client:
            assert (await client.connect(transport="websocket")).connected
            with pytest.raises(ConnectionRefused):
                await client.connect(transport="polling")

    asyncio.run(connect())


def test_sticky_cookie() -> None:
    answer = handshake(run("cookie")["realtime"])
    sid = json.loads(answer.text[1:])["sid"]
    assert answer.headers["set-cookie"] == f"io={sid}; Path=/; HttpOnly; SameSite=Lax"


# --------------------------------------------------------------------------- several nodes with Redis


@contextmanager
def serve_with(name: str, tmp_path: Path, env: dict[str, str]) -> Iterator[str]:
    """Block `name` as `app.py` under uvicorn, with environment `env` (REDIS_URL)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "app.py").write_text(module_source(name), encoding="utf-8")
    port = free_port()
    args = ["-m", "uvicorn", "app:app", "--app-dir", str(tmp_path), "--host", "127.0.0.1",
            "--port", str(port), "--ws", WS_IMPL, "--log-level", "warning"]
    with run_server(args, port, env):
        yield f"http://127.0.0.1:{port}"


@pytest.mark.anyio
async def test_two_nodes_with_redis(tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"REDIS_URL": redis_url}
    with serve_with("redis-two-nodes", tmp_path / "a", env) as a, serve_with("redis-two-nodes", tmp_path / "b", env) as b:
        async with sio_client(a) as (ada, ada_heard), sio_client(b) as (_, bob_heard):
            await ada.emit("say", "hello from node a")
            assert await next_event(bob_heard) == ("said", "hello from node a")
            assert await next_event(ada_heard) == ("said", "hello from node a")
            # The emitter block, run as printed, reaches the lobby on both nodes.
            monkeypatch.setenv("REDIS_URL", redis_url)
            run("emitter")
            assert await next_event(bob_heard) == ("said", "the nightly report is ready")
            assert await next_event(ada_heard) == ("said", "the nightly report is ready")
