"""The document of the described application, built once per module."""

from __future__ import annotations

from typing import Any

import pytest

from fastapi_realtime.asyncapi import build_asyncapi
from tests.asyncapi.app import make_realtime


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build_asyncapi(make_realtime(), title="Test app", version="2.1.0", description="For the tests.")
