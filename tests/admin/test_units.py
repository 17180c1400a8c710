"""instrument()'s options, bcrypt hashes made by Node, and zero cost when not instrumented."""

from __future__ import annotations

import asyncio
import subprocess

import pytest

from fastapi_realtime import Realtime
from fastapi_realtime.admin import AdminObserver, BasicAuth, Instrumentation, Observer, instrument
from fastapi_realtime.client import ClientManager
from tests.admin.helpers import PASSWORD_HASH
from tests.conftest import NODE_DIR


def test_not_instrumented_means_not_observed() -> None:
    rt = Realtime()
    rt.of("/")
    assert rt.observation.observer is None


def test_instrument_only_observes_its_own_server() -> None:
    plain, watched = Realtime(), Realtime()
    plain.of("/")
    watched.of("/")
    instrumentation = instrument(watched, auth=False)
    assert plain.observation.observer is None
    assert watched.observation.observer is instrumentation.observer
    assert isinstance(instrumentation.observer, AdminObserver) and isinstance(instrumentation.observer, Observer)
    # Nothing of the server is wrapped: the seam is all it uses.
    for rt in (plain, watched):
        assert type(rt.manager.handler) is ClientManager and rt.event_middlewares == []
        assert not {"add_all", "remove", "remove_all", "broadcast", "init", "close"} & set(vars(rt.of("/").adapter))
    with pytest.raises(RuntimeError):
        instrument(watched, auth=False)


def test_the_method_form() -> None:
    rt = Realtime()
    instrumentation = rt.instrument(auth=False, mode="production", namespace="/watch", read_only=True)
    assert isinstance(instrumentation, Instrumentation)
    assert rt.observation.observer is instrumentation.observer and not instrumentation.observer.development
    assert instrumentation.namespace == "/watch" and instrumentation.supported_features == ["AGGREGATED_EVENTS"]
    with pytest.raises(RuntimeError):
        rt.instrument(auth=False)
    with pytest.raises(TypeError):
        Realtime().instrument()  # auth is required
    with pytest.raises(ValueError):
        Realtime().instrument(auth=False, mode="debug")


def test_options_are_checked() -> None:
    with pytest.raises(TypeError):
        instrument(Realtime())  # type: ignore[call-arg]  # auth is required, as in Node
    for bad in (None, True, {"type": "digest"}, "x"):
        with pytest.raises(ValueError):
            instrument(Realtime(), auth=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="bcrypt hash"):
        BasicAuth("admin", "plain-text-password")
    with pytest.raises(ValueError):
        instrument(Realtime(), auth=False, mode="debug")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        instrument(Realtime(), auth=False, ui_path="/ui")  # no ui_dir
    instrument(Realtime(), auth={"type": "basic", "username": "admin", "password": PASSWORD_HASH})


def test_hash_made_by_node_bcryptjs() -> None:
    script = "console.log(require('bcryptjs').hashSync('p\u00e4ss', 4))"
    node_hash = subprocess.run(["node", "-e", script], cwd=NODE_DIR, capture_output=True, text=True,
                               timeout=20, check=True).stdout.strip()
    assert node_hash.startswith("$2")
    auth = BasicAuth("admin", node_hash)

    async def check() -> None:
        assert await auth.verify("admin", "p\u00e4ss")
        assert not await auth.verify("admin", "pass")
        assert not await auth.verify("admin", None)
        assert not await auth.verify("admin", "x" * 10_000)

    asyncio.run(check())
