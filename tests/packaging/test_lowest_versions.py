"""The package as a user gets it, on the oldest versions it says it works with.

A wheel (through an sdist) is built from this checkout with the lowest build backend that
pyproject.toml allows and installed into a fresh venv with the `server` extra, every direct
dependency pinned at its floor (floors.py). The README's quick start (the first ```python block
under "## Quick start", read at test time, served with the README's `uvicorn ...` command) then
runs on that venv's uvicorn, and real Socket.IO clients talk to it: python-socketio's AsyncClient
from the test venv and socket.io-client under node.

Needs the network (PyPI) for uv; FASTAPI_REALTIME_SKIP_PACKAGING=1 skips it on a machine without.
"""

from __future__ import annotations

import ast
import asyncio
import json
import os
import re
import shlex
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import socketio
from packaging.utils import canonicalize_name

from tests.conftest import NODE_DIR, ROOT, free_port, wait_for_port
from tests.packaging.floors import EXTRA, PACKAGE, Built, FloorVenv, build, floor_venv, requirements

HERE = Path(__file__).resolve().parent

pytestmark = [
    pytest.mark.timeout(600),
    pytest.mark.skipif(
        os.environ.get("FASTAPI_REALTIME_SKIP_PACKAGING") == "1", reason="FASTAPI_REALTIME_SKIP_PACKAGING=1"
    ),
]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build(tmp_path_factory.mktemp("build"))


@pytest.fixture(scope="module")
def lowest(built: Built, tmp_path_factory: pytest.TempPathFactory) -> FloorVenv:
    """A fresh venv: the wheel with its `server` extra, every direct dependency at its floor."""
    return floor_venv(built, tmp_path_factory.mktemp("lowest") / "venv")


def test_wheel_metadata_version_and_license(built: Built) -> None:
    import fastapi_realtime

    assert built.metadata["Name"] == "fastapi-realtime"
    # One source for the version: pyproject reads it from _version.py, the package exports it.
    assert built.metadata["Version"] == fastapi_realtime.__version__
    assert built.metadata["License-Expression"] == "MIT"
    with zipfile.ZipFile(built.wheel) as zf:
        names = zf.namelist()
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), names
    assert f"{PACKAGE}/py.typed" in names
    assert f"{PACKAGE}/_version.py" in names


# Modules a user imports only with an extra installed: their module-level imports may come from it
# (the write-coalescing protocol: `server`; the traces: `tracing`; the metrics: `metrics`).
EXTRA_ONLY_MODULES = ("uvicorn_ws.py", "tracing.py", "metrics/")


def third_party_imports() -> tuple[set[str], set[str]]:
    """Top-level names of the non-stdlib modules the package imports: (at module level, anywhere)."""
    module_level: set[str] = set()
    anywhere: set[str] = set()
    for path in (ROOT / PACKAGE).rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        top = set() if path.relative_to(ROOT / PACKAGE).as_posix().startswith(EXTRA_ONLY_MODULES) else set(tree.body)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                root = name.split(".")[0]
                if root not in sys.stdlib_module_names and root != PACKAGE:
                    anywhere.add(root)
                    if node in top:
                        module_level.add(root)
    return module_level, anywhere


def test_every_imported_distribution_is_declared(built: Built) -> None:
    module_level, anywhere = third_party_imports()
    # The import names of these distributions are their names (fastapi, starlette, pydantic, ...).
    runtime = {canonicalize_name(r.name) for r in requirements(built.metadata)}
    with_extras = {
        canonicalize_name(r.name) for r in requirements(built.metadata, EXTRA, "redis", "speed", "msgpack", "admin", "metrics", "tracing")
    }
    assert {canonicalize_name(n) for n in module_level} <= runtime, (module_level, runtime)
    # A lazy import may come from an extra: conformance.py's uvicorn from `server`, the Redis
    # adapters' redis-py and msgpack from `redis`, the Admin UI's bcrypt from `admin`.
    # Import names that differ from their distribution's.
    distribution = {"opentelemetry": "opentelemetry-api"}
    assert {canonicalize_name(distribution.get(n, n)) for n in anywhere} <= with_extras, (anywhere, with_extras)


def test_the_lowest_versions_are_installed(lowest: FloorVenv) -> None:
    assert {"fastapi", "starlette", "pydantic", "anyio", "uvicorn", "websockets"} <= set(lowest.floors)
    assert {name: lowest.installed.get(name) for name in lowest.floors} == lowest.floors
    # The dev tools are not a user's dependencies.
    assert "pytest" not in lowest.installed and "mypy" not in lowest.installed


def test_the_installed_package_is_the_wheel(lowest: FloorVenv, tmp_path: Path) -> None:
    import fastapi_realtime

    probe = "import fastapi_realtime as p; print(p.__version__); print(p.__file__)"
    proc = subprocess.run([lowest.python, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True)
    version, location = proc.stdout.split()
    assert version == fastapi_realtime.__version__
    assert Path(location).is_relative_to(lowest.python.parent.parent), location


def quick_start() -> tuple[str, list[str]]:
    """The README's quick-start app and its `uvicorn ...` command line, as the README has them now."""
    text = (ROOT / "README.md").read_text()
    heading = re.search(r"^## Quick start[ \t]*$", text, re.M)
    assert heading, "README.md has no '## Quick start' section"
    section = text[heading.end():]
    following = re.search(r"^## ", section, re.M)
    section = section[: following.start()] if following else section
    code = re.search(r"^```python\n(.*?)^```", section, re.S | re.M)
    assert code, "README's quick start has no ```python block"
    commands = [
        shlex.split(line, comments=True)
        for block in re.findall(r"^```(?:sh|bash|shell|console)\n(.*?)^```", section, re.S | re.M)
        for line in block.splitlines()
    ]
    command = next((c for c in commands if c and c[0] == "uvicorn"), None)
    assert command, "README's quick start has no `uvicorn ...` command"
    return code.group(1), command


@pytest.fixture(scope="module")
def quickstart_url(lowest: FloorVenv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The quick start served by the lowest venv's uvicorn, from a folder outside the checkout."""
    code, command = quick_start()
    target = next(arg for arg in command[1:] if not arg.startswith("-") and ":" in arg)
    app_dir = tmp_path_factory.mktemp("quickstart")
    module = app_dir / (target.split(":")[0].replace(".", "/") + ".py")
    module.parent.mkdir(parents=True, exist_ok=True)
    module.write_text(code)
    args = command[1:]
    if "--ws" not in args:
        args += ["--ws", "websockets-sansio"]
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    log_path = app_dir / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [lowest.bin / "uvicorn", *args, "--host", "127.0.0.1", "--port", str(port)],
            cwd=app_dir,
            env={**env, "PYTHONUNBUFFERED": "1"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        try:
            wait_for_port(port, proc)
        except RuntimeError as exc:
            raise AssertionError(f"{exc}; server output:\n{log_path.read_text(errors='replace')}") from None
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        output = log_path.read_text(errors="replace")
        sys.stderr.write(output)
    assert "Traceback" not in output, output


def test_python_client_against_the_quick_start(quickstart_url: str) -> None:
    async def session() -> tuple[Any, str]:
        client = socketio.AsyncClient(reconnection=False)
        await client.connect(quickstart_url, auth={"name": "ada"}, wait_timeout=10)
        try:
            transport = client.transport()  # upgraded inside connect(): polling, then WebSocket
            return await client.call("message", "hello", timeout=10), transport
        finally:
            await client.disconnect()

    ack, transport = asyncio.run(asyncio.wait_for(session(), 30))
    assert ack == {"ok": True}
    assert transport == "websocket"


def test_node_client_against_the_quick_start(quickstart_url: str) -> None:
    assert (NODE_DIR / "node_modules" / "socket.io-client").is_dir(), "socket.io-client missing: run `make node`"
    proc = subprocess.run(
        ["node", str(HERE / "quickstart_client.mjs"), quickstart_url, str(NODE_DIR / "package.json")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no report from node: {proc.stdout}\n{proc.stderr}"
    report = json.loads(lines[-1])
    assert report["ok"] is True, report
    assert report["ack"] == {"ok": True}
