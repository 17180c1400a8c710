"""Realtime's constructor: keyword-only, unknown options refused, values validated at once."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest

from fastapi_realtime import Realtime


async def allow(_: Any) -> bool:
    return True


def test_defaults() -> None:
    rt = Realtime()
    options = rt.engine_options
    assert rt.path == "/socket.io"
    assert (options.ping_interval, options.ping_timeout, options.upgrade_timeout) == (25.0, 20.0, 10.0)
    assert options.max_http_buffer_size == 1_000_000
    assert options.transports == ("polling", "websocket")
    assert options.allow_upgrades is True
    assert options.cors_allowed_origins is None
    assert options.cookie is None
    assert options.max_queue == 1024
    assert rt.connect_timeout == 45.0
    assert rt.max_attachments == 10


def test_positional_arguments_refused() -> None:
    with pytest.raises(TypeError):
        Realtime("/socket.io")  # type: ignore[call-arg]


@pytest.mark.parametrize("name", ["pingInterval", "ping_intervall", "cors_allowed_origin", "maxHttpBufferSize", "cors"])
def test_misspelt_option_raises_type_error(name: str) -> None:
    kwargs: dict[str, Any] = {name: 1}
    with pytest.raises(TypeError, match=re.escape(name)):
        Realtime(**kwargs)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("ping_interval", 0),
        ("ping_interval", -1.0),
        ("ping_interval", "25"),
        ("ping_interval", True),
        ("ping_interval", None),
        ("ping_timeout", 0),
        ("ping_timeout", -0.5),
        ("upgrade_timeout", 0),
        ("connect_timeout", 0),
        ("connect_timeout", "45"),
        ("max_http_buffer_size", 1.5),
        ("max_http_buffer_size", 1e6),
        ("max_http_buffer_size", "1000"),
        ("max_http_buffer_size", 0),
        ("max_http_buffer_size", -1),
        ("max_http_buffer_size", True),
        ("max_queue", 0),
        ("max_queue", 2.0),
        ("max_pending_events", 0),
        ("max_pending_events", 1.5),
        ("max_attachments", -1),
        ("max_attachments", 1.0),
        ("transports", ()),
        ("transports", []),
        ("transports", ("flashsocket",)),
        ("transports", ("polling", "webtransport")),
        ("transports", "websockets"),  # one name, misspelt (a correct one is one transport)
        ("max_pending_sessions", 0),
        ("max_pending_sessions", 1.5),
        ("cookie", ""),
        ("cookie", 1),
        ("path", "socket.io"),
        ("path", ""),
        ("cors_allowed_origins", [1]),
        ("allow_request", "yes"),
        ("allow_request", lambda conn: True),  # a plain function would refuse every request
        ("allow_upgrades", "no"),
        ("cors_credentials", "yes"),
        ("transports", ("polling", "polling")),
        ("docs", "no"),
        ("recovery", "yes"),
        ("adapter", 42),
        ("http_compression", "gzip"),
        ("http_compression", 1),
        ("http_compression_threshold", 0),
        ("http_compression_threshold", 1.5),
        ("parser", "json"),
        ("parser", None),
    ],
)
def test_invalid_value_raises_value_error(option: str, value: Any) -> None:
    with pytest.raises(ValueError):
        Realtime(**{option: value})


@pytest.mark.parametrize(
    ("kwargs", "check"),
    [
        ({"transports": ["websocket"]}, lambda rt: rt.engine_options.transports == ("websocket",)),
        ({"transports": ("polling",)}, lambda rt: rt.engine_options.transports == ("polling",)),
        ({"ping_interval": 0.3, "ping_timeout": 1}, lambda rt: rt.engine_options.ping_interval == 0.3),
        ({"max_attachments": 0}, lambda rt: rt.max_attachments == 0),
        ({"max_pending_events": 8}, lambda rt: rt.options.max_pending_events == 8),
        ({"cookie": "io"}, lambda rt: rt.engine_options.cookie == "io"),
        ({"cors_allowed_origins": "*"}, lambda rt: rt.engine_options.cors_allowed_origins == "*"),
        (
            {"cors_allowed_origins": "https://a.example"},
            lambda rt: rt.engine_options.cors_allowed_origins == ("https://a.example",),
        ),
        (
            {"cors_allowed_origins": ["https://a.example", "https://b.example"]},
            lambda rt: rt.engine_options.cors_allowed_origins == ("https://a.example", "https://b.example"),
        ),
        ({"allow_request": allow}, lambda rt: rt.engine_options.allow_request is allow),
        ({"path": "/rt/"}, lambda rt: rt.path == "/rt"),
        ({"path": "/"}, lambda rt: rt.path == "/"),
    ],
)
def test_valid_values(kwargs: dict[str, Any], check: Any) -> None:
    assert check(Realtime(**kwargs))


def test_options_are_frozen() -> None:
    options = Realtime().engine_options
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.ping_interval = 1.0  # type: ignore[misc]


def test_settings_name_every_option_once() -> None:
    """Realtime(**settings) is typed by Settings; the defaults live in the dataclasses alone."""
    from fastapi_realtime.options import ENGINE_SETTINGS, SERVER_SETTINGS, Settings

    assert not ENGINE_SETTINGS & SERVER_SETTINGS
    assert set(Settings.__annotations__) == ENGINE_SETTINGS | SERVER_SETTINGS


def test_compression_options() -> None:
    assert Realtime().engine_options.compression_threshold == 1024
    assert Realtime(http_compression_threshold=10).engine_options.compression_threshold == 10
    assert Realtime(http_compression=False).engine_options.compression_threshold is None
