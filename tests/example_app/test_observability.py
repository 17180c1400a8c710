"""The example chat with its observability on, as `make run` serves it: the Admin UI's namespace
behind the password, /metrics, and spans for connects and events."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from example_app.main import create_app
from fastapi_realtime.testing import ConnectionRefused, RealtimeTestClient


def test_admin_metrics_and_traces_are_on() -> None:
    app = create_app(observe=True, admin_password="pw")
    with RealtimeTestClient(app) as client:
        with pytest.raises(ConnectionRefused, match="invalid credentials"):
            client.connect(namespace="/admin", auth={"username": "admin", "password": "wrong"})
        admin = client.connect(namespace="/admin", auth={"username": "admin", "password": "pw"})
        # Recovery is on in the chat: stored events carry their offset as the last argument.
        config, _offset = admin.wait_for("config")
        assert config["supportedFeatures"][:4] == ["EMIT", "JOIN", "LEAVE", "DISCONNECT"]
        chat = client.connect()
        assert chat.connected
    # The app's /metrics, through the ASGI app itself.
    transport = httpx.ASGITransport(app=app)

    async def scrape() -> str:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            response = await http.get("/metrics")
            assert response.status_code == 200
            return response.text

    text = asyncio.run(scrape())
    assert "socketio_connects_total" in text and 'namespace="/admin"' in text
    tracing = [o for o in getattr(app.state.chat.realtime.observation.observer, "observers", ())
               if type(o).__module__ == "fastapi_realtime.tracing"]
    assert tracing, "tracing is on"
