"""Every test here runs on both JSON backends: the standard library and orjson (when installed)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fastapi_realtime.socketio import _json


@pytest.fixture(autouse=True, params=["json", "orjson"])
def json_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name: str = request.param
    if name == "orjson" and _json._ORJSON is None:
        pytest.skip("orjson is not installed")
    previous = _json.backend()
    _json.use_backend(name)
    monkeypatch.setattr(_json, "ORJSON_MIN_DECODE", 0)  # every decode through orjson, short ones too
    yield name
    _json.use_backend(previous)
