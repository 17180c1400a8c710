"""Every test here runs on both JSON backends (the standard library and orjson, when installed),
each with the C accelerator (fastapi_realtime/socketio/_speedups.c) off and on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fastapi_realtime.socketio import _json, speedups


@pytest.fixture(autouse=True, params=["json", "orjson", "json+speedups", "orjson+speedups"])
def json_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    param: str = request.param
    name, _, accelerated = param.partition("+")
    if name == "orjson" and _json._ORJSON is None:
        pytest.skip("orjson is not installed")
    previous = _json.backend()
    was_on = speedups.enabled()
    _json.use_backend(name)
    speedups.use_speedups(bool(accelerated))  # ImportError if it was not built: make test builds it
    if not accelerated:
        monkeypatch.setattr(_json, "ORJSON_MIN_DECODE", 0)  # every decode through orjson, short ones too
    yield name
    _json.use_backend(previous)
    speedups.use_speedups(was_on)
