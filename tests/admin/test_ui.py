"""The real @socket.io/admin-ui 0.5 page (npm package, ui/dist) in headless Chromium against the
instrumented server: login, the dashboard's clients, their rooms and transport, a disconnect from
the UI, and a wrong password refused. The page is served by a separate static server, as a hosted
UI would be (so CORS with credentials is exercised); the UI-files route of instrument() is checked
over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.admin.helpers import PASSWORD, Recorder, serve_admin
from tests.conftest import NODE_DIR, free_port, run_server
from tests.example_app.test_browser import WAIT_MS, chromium

pytestmark = pytest.mark.timeout(90)
UI_DIR = NODE_DIR / "node_modules" / "@socket.io" / "admin-ui" / "ui" / "dist"
T = TypeVar("T")


@pytest.fixture(scope="module")
def ui_dir() -> Path:
    if not (UI_DIR / "index.html").is_file():
        pytest.fail("@socket.io/admin-ui is missing: cd tests/interop && npm install", pytrace=False)
    return UI_DIR


@contextlib.contextmanager
def static_site(directory: Path) -> Iterator[str]:
    port = free_port()
    args = ["-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(directory)]
    with run_server(args, port):
        yield f"http://127.0.0.1:{port}"


class Loop:
    """An event loop in a thread, for the python-socketio clients beside the sync browser."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def login(page: Page, site: str, server: str, password: str) -> None:
    # The page's fonts come from CDNs: not reachable here, and not needed.
    page.route(re.compile(r"^https://(fonts\.googleapis\.com|cdn\.jsdelivr\.net)/"), lambda route: route.abort())
    page.goto(f"{site}/", timeout=WAIT_MS)
    page.get_by_label("Server URL").fill(server)
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Connect").click()


def test_ui_files_are_served(ui_dir: Path) -> None:
    with serve_admin(UI_DIR=str(ui_dir)) as url, httpx.Client(base_url=url, timeout=5) as http:
        index = http.get("/admin-ui/")
        assert index.status_code == 200 and "Socket.IO Admin UI" in index.text
        assert "localStorage.setItem('path'" in index.text  # this server's defaults
        assert http.get("/admin-ui").status_code in (307, 302)
        script = next(p.name for p in (ui_dir / "js").iterdir() if p.name.startswith("app.") and p.suffix == ".js")
        asset = http.get(f"/admin-ui/js/{script}")
        assert asset.status_code == 200 and "javascript" in asset.headers["content-type"]
        for bad in ("/admin-ui/../admin_app.py", "/admin-ui/%2e%2e/%2e%2e/pyproject.toml", "/admin-ui/nope.js"):
            assert http.get(bad).status_code == 404, bad


def test_dashboard_shows_clients_and_disconnects(ui_dir: Path) -> None:
    errors: list[str] = []
    with static_site(ui_dir) as site, serve_admin(CORS_ORIGIN=site, STATS_INTERVAL="2") as url:
        loop = Loop()
        ada = loop.run(Recorder(url).connect(["/"], auth={"rooms": ["lobby"], "name": "ada"}))
        bob = loop.run(Recorder(url, ["polling"]).connect(["/"], auth={"rooms": ["kitchen"]}))
        ada_sid = ada.sid()
        try:
            with chromium() as browser:
                page = browser.new_context().new_page()
                page.set_default_timeout(WAIT_MS)
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                login(page, site, url, PASSWORD)
                expect(page.get_by_role("dialog")).to_be_hidden(timeout=WAIT_MS)

                # The dashboard counts come from server_stats: 3 clients, the UI's own included.
                main = page.locator("main")
                expect(main).to_contain_text("WebSocket2 66.7 %", timeout=WAIT_MS)
                expect(main).to_contain_text("HTTP long-polling1 33.3 %")
                expect(main).to_contain_text("Healthy1100.0 %")
                expect(page.get_by_role("row", name="/ 2")).to_be_visible()

                page.goto(f"{site}/#/sockets/")
                rows = page.locator("tbody tr:visible")  # views in transition linger in the page
                ada_row = rows.filter(has_text=ada.sid())
                bob_row = rows.filter(has_text=bob.sid())
                expect(ada_row).to_contain_text("WebSocket", timeout=WAIT_MS)
                expect(bob_row).to_contain_text("HTTP long-polling", timeout=WAIT_MS)

                page.goto(f"{site}/#/rooms/")
                expect(page.get_by_role("row", name=re.compile(r"^lobby Public 1")).first).to_be_visible()
                expect(page.get_by_role("row", name=re.compile(r"^kitchen Public 1")).first).to_be_visible()

                page.goto(f"{site}/#/n/%2F/sockets/{ada.sid()}")
                expect(page.get_by_text("lobby", exact=True).first).to_be_visible()

                # Disconnect ada from the sockets list.
                page.get_by_role("navigation").get_by_role("link", name="Sockets").click()
                expect(page).to_have_url(re.compile(r"#/sockets/?$"))
                expect(rows.filter(has_text=ada_sid)).to_have_count(1)
                rows.filter(has_text=ada_sid).locator("button").click()
                for _ in range(100):
                    if ada.disconnects:
                        break
                    page.wait_for_timeout(50)
                assert ada.disconnects, "the UI's disconnect did not reach the client"
                # The click also opens the socket's page (the row's own click), which shows it gone.
                expect(page.locator("main")).to_contain_text("DISCONNECTED", ignore_case=True)
                page.get_by_role("navigation").get_by_role("link", name="Sockets").click()
                expect(page).to_have_url(re.compile(r"#/sockets/?$"))
                expect(rows.filter(has_text=ada_sid)).to_have_count(0, timeout=WAIT_MS)
                expect(rows.filter(has_text=bob.sid())).to_have_count(1)
        finally:
            loop.run(ada.close())
            loop.run(bob.close())
            loop.close()
    assert errors == []


def test_wrong_password_is_refused_by_the_ui(ui_dir: Path) -> None:
    with static_site(ui_dir) as site, serve_admin(CORS_ORIGIN=site) as url, chromium() as browser:
        page = browser.new_context().new_page()
        page.set_default_timeout(WAIT_MS)
        login(page, site, url, "wrong")
        expect(page.locator(".v-dialog")).to_contain_text(re.compile("invalid credentials", re.I), timeout=WAIT_MS)
