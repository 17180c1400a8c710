"""The document's info (asyncapi/info.py)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from starlette.applications import Starlette

from fastapi_realtime.asyncapi import (
    DocsInfo,
    asyncapi_html,
    build_asyncapi,
    info_from_scope,
)
from tests.asyncapi.app import make_realtime
from tests.asyncapi.helpers import assert_valid_asyncapi, h1


@pytest.mark.parametrize(
    ("scope", "explicit", "expected"),
    [
        ({"app": FastAPI(title="Chat", version="2.1.0", description="Rooms.")}, {}, ("Chat", "2.1.0", "Rooms.")),
        # FastAPI's own defaults, as its OpenAPI docs show them; an empty description is none.
        ({"app": FastAPI()}, {}, ("FastAPI", "0.1.0", None)),
        ({"app": Starlette()}, {}, ("fastapi-realtime", "1.0.0", None)),
        ({}, {}, ("fastapi-realtime", "1.0.0", None)),
        (
            {"app": FastAPI(title="Chat", version="2.1.0", description="Rooms.")},
            {"title": "Explicit", "description": ""},
            ("Explicit", "2.1.0", None),
        ),
        ({}, {"title": "T", "version": "9", "description": "D"}, ("T", "9", "D")),
    ],
)
def test_info_from_scope(scope: dict[str, Any], explicit: dict[str, str], expected: tuple[str, str, str | None]) -> None:
    info = info_from_scope(scope, **explicit)
    assert info == DocsInfo(*expected)


def test_info_from_the_app_makes_a_valid_document() -> None:
    app = FastAPI(title="Chat <b>", version="2.1.0", description="Rooms and `messages`.")
    title, version, description = info_from_scope({"app": app})
    document = build_asyncapi(make_realtime(), title=title, version=version, description=description)
    assert document["info"] == {"title": "Chat <b>", "version": "2.1.0", "description": "Rooms and `messages`."}
    assert_valid_asyncapi(document)
    page = asyncapi_html(document)
    assert h1(page) == "Chat <b> 2.1.0" and "<p>Rooms and <code>messages</code>.</p>" in page
