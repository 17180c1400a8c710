"""Logging a user can see: uvicorn's --log-level and a user's logging config decide what shows."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx

from fastapi_realtime._logging import RateLimitedLog
from tests.conftest import free_port, logged_uvicorn, run_server

APP = "tests.protocol.hardening_app:app"
STARTUP = "Socket.IO endpoint at /socket.io/"


def _touch(url: str) -> None:
    # A refused origin and an unknown session: both logged at WARNING.
    httpx.get(url + "/socket.io/", params={"EIO": "4", "transport": "polling"}, headers={"Origin": "http://evil.example"})
    httpx.get(url + "/socket.io/", params={"EIO": "4", "transport": "polling", "sid": "A" * 20})


def test_info_level_shows_the_startup_line(tmp_path: Path) -> None:
    with logged_uvicorn(APP, tmp_path, log_level="info") as (url, log):
        _touch(url)
    text = log.text()
    assert STARTUP in text
    assert "origin 'http://evil.example'" in text
    assert "unknown session" in text


def test_warning_level_hides_info_but_keeps_warnings(tmp_path: Path) -> None:
    with logged_uvicorn(APP, tmp_path, log_level="warning") as (url, log):
        _touch(url)
    text = log.text()
    assert STARTUP not in text
    assert "origin 'http://evil.example'" in text


def test_a_users_logging_config_decides(tmp_path: Path) -> None:
    config = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "OURS %(name)s %(levelname)s %(message)s"}},
        "handlers": {"out": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"}},
        "loggers": {"fastapi_realtime": {"handlers": ["out"], "level": "ERROR", "propagate": False}},
    }
    path = tmp_path / "logging.json"
    path.write_text(json.dumps(config))
    port = free_port()
    out = tmp_path / "server.log"
    args = ["-m", "uvicorn", APP, "--host", "127.0.0.1", "--port", str(port), "--log-config", str(path)]
    with open(out, "wb") as output, run_server(args, port, output=output):
        _touch(f"http://127.0.0.1:{port}")
    text = out.read_text()
    assert STARTUP not in text and "evil.example" not in text  # ERROR and above only


def test_rate_limited_log_counts_what_it_held_back(caplog: object) -> None:
    now = [0.0]
    logger = logging.getLogger("fastapi_realtime.test")
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    handler = Keep()
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        log = RateLimitedLog(logger, logging.WARNING, interval=10.0, clock=lambda: now[0])
        for i in range(5):
            log("event %d", i)
        now[0] = 11.0
        log("event %d", 5)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
    assert records == ["event 0", "event 5 (4 similar messages suppressed in the last 10s)"]
