"""The example chat app, end to end: real uvicorn, real Chromium, the official socket.io-client bundle."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.conftest import run_uvicorn

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
WAIT_MS = 5_000  # every browser wait is bounded by this
HTTP_TIMEOUT = 5.0


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with run_uvicorn("example_app.main:app") as url:
        yield url


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium under playwright. Called inside each test so a missing browser is a FAILED test."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs it (target `chromium`, Debian's package)",
                    pytrace=False)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, timeout=20_000)
        try:
            yield browser
        finally:
            browser.close()


def enter_chat(context: BrowserContext, base_url: str, nickname: str, room: str, errors: list[str]) -> Page:
    """Open the page, log in with `nickname` and wait until the room is joined."""
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.on("pageerror", lambda exc: errors.append(f"{nickname}: {exc}"))
    page.goto(f"{base_url}/", timeout=WAIT_MS)
    page.fill("#nickname", nickname)
    page.fill("#room", room)
    page.click("#login-form button[type=submit]")
    expect(page.locator("#status")).to_contain_text("online", timeout=WAIT_MS)
    expect(page.locator("#me")).to_have_text(nickname, timeout=WAIT_MS)
    expect(page.locator("#messages .msg.system").last).to_contain_text(f"You joined #{room}", timeout=WAIT_MS)
    return page


def test_http_routes(base_url: str) -> None:
    with httpx.Client(base_url=base_url, timeout=HTTP_TIMEOUT) as client:
        health = client.get("/api/health")
        assert health.status_code == 200
        assert health.json()["status"] == "ok"

        rooms = client.get("/api/rooms")
        assert rooms.status_code == 200
        by_name = {room["name"]: room for room in rooms.json()}
        assert {"general", "random", "help"} <= by_name.keys()
        assert by_name["general"]["members"] == 0

        index = client.get("/")
        assert index.status_code == 200
        assert index.headers["content-type"].startswith("text/html")
        assert '<script src="/static/socket.io.min.js">' in index.text

        bundle = client.get("/static/socket.io.min.js")
        assert bundle.status_code == 200
        assert "javascript" in bundle.headers["content-type"]
        assert "Socket.IO v4" in bundle.text[:200]

        for asset in ("/static/app.js", "/static/style.css"):
            assert client.get(asset).status_code == 200, asset

        # The realtime routes live on the same app: an Engine.IO handshake over long-polling.
        handshake = client.get("/socket.io/", params={"EIO": "4", "transport": "polling"})
        assert handshake.status_code == 200
        assert handshake.text.startswith('0{"sid":')


def test_two_users_chat(base_url: str) -> None:
    errors: list[str] = []
    with chromium() as browser:
        chat_between_two_users(browser, base_url, errors)
    assert errors == []


def chat_between_two_users(browser: Browser, base_url: str, errors: list[str]) -> None:
    alice_context, bob_context = browser.new_context(), browser.new_context()
    try:
        alice = enter_chat(alice_context, base_url, "alice", "general", errors)
        bob = enter_chat(bob_context, base_url, "bob", "general", errors)
        expect(alice.locator("#messages .msg.system", has_text="bob joined")).to_be_visible(timeout=WAIT_MS)

        with httpx.Client(base_url=base_url, timeout=HTTP_TIMEOUT) as client:
            general = next(r for r in client.get("/api/rooms").json() if r["name"] == "general")
        assert general["members"] == 2
        assert general["nicknames"] == ["alice", "bob"]
        expect(bob.locator("#rooms .room.current .count")).to_have_text("2", timeout=WAIT_MS)

        # Typing is shown to the rest of the room, not to the typist.
        alice.locator("#text").press_sequentially("hello bob", delay=15)
        expect(bob.locator("#typing")).to_have_text("alice is typing…", timeout=WAIT_MS)
        expect(alice.locator("#typing")).to_have_text("")

        alice.locator("#text").press("Enter")
        received = bob.locator("#messages .msg.user", has_text="hello bob")
        expect(received).to_be_visible(timeout=WAIT_MS)
        expect(received.locator(".author")).to_have_text("alice")
        expect(bob.locator("#typing")).to_have_text("", timeout=WAIT_MS)
        # The server's ack marks the sender's copy as delivered.
        sent = alice.locator('#messages .msg.mine[data-status="delivered"]', has_text="hello bob")
        expect(sent).to_be_visible(timeout=WAIT_MS)
        expect(sent.locator(".delivery")).to_have_text("✓ delivered")
        expect(sent.locator(".author")).to_have_text("alice")

        bob.locator("#text").fill("hi alice")
        bob.locator("#composer button[type=submit]").click()
        expect(alice.locator("#messages .msg.user", has_text="hi alice")).to_be_visible(timeout=WAIT_MS)
        expect(bob.locator('#messages .msg.mine[data-status="delivered"]', has_text="hi alice")).to_be_visible(
            timeout=WAIT_MS)

        # The client upgrades from long-polling to a websocket.
        expect(alice.locator("#status")).to_have_text(re.compile(r"online · websocket"), timeout=WAIT_MS)

        bob.click("#leave")
        expect(alice.locator("#messages .msg.system", has_text="bob left")).to_be_visible(timeout=WAIT_MS)
        expect(alice.locator("#rooms .room.current .count")).to_have_text("1", timeout=WAIT_MS)
    finally:
        alice_context.close()
        bob_context.close()


def test_reconnection_is_recovered(base_url: str) -> None:
    errors: list[str] = []
    with chromium() as browser:
        alice_context, bob_context = browser.new_context(), browser.new_context()
        try:
            reconnect_and_recover(alice_context, bob_context, base_url, errors)
        finally:
            alice_context.close()
            bob_context.close()
    assert errors == []


def reconnect_and_recover(alice_context: BrowserContext, bob_context: BrowserContext, base_url: str,
                          errors: list[str]) -> None:
    # A room of their own: members of other tests may still be held for recovery elsewhere.
    alice = enter_chat(alice_context, base_url, "alice", "reconnect", errors)
    bob = enter_chat(bob_context, base_url, "bob", "reconnect", errors)
    expect(alice.locator("#messages .msg.system", has_text="bob joined")).to_be_visible(timeout=WAIT_MS)
    sid = alice.evaluate("socket.id")

    # Drop Alice's transport and hold her reconnection until Bob's message is out, so that
    # message can only reach her through the recovered session.
    alice.evaluate("socket.io.reconnection(false); socket.io.engine.close()")
    expect(alice.locator("#status")).to_contain_text("offline", timeout=WAIT_MS)
    bob.locator("#text").fill("sent while alice was away")
    bob.locator("#text").press("Enter")
    expect(bob.locator('#messages .msg.mine[data-status="delivered"]', has_text="sent while alice was away")
           ).to_be_visible(timeout=WAIT_MS)
    missed = alice.locator("#messages .msg.user", has_text="sent while alice was away")
    expect(missed).to_have_count(0)

    alice.evaluate("socket.io.reconnection(true); socket.connect()")
    notice = alice.locator("#messages .notice.recovered")
    expect(notice).to_have_text("Reconnected — nothing missed (1 line arrived while you were away).",
                                timeout=WAIT_MS)
    expect(missed).to_be_visible(timeout=WAIT_MS)
    expect(missed.locator(".author")).to_have_text("bob")
    expect(alice.locator("#status")).to_contain_text("online", timeout=WAIT_MS)
    assert alice.evaluate("socket.id") == sid
    # The notice sits above what was caught up.
    texts = alice.locator("#messages > li").all_inner_texts()
    assert [i for i, t in enumerate(texts) if "nothing missed" in t or "sent while alice" in t] == \
        [len(texts) - 2, len(texts) - 1], texts
    # Still in the room, and the room never saw her go.
    alice.locator("#text").fill("back again")
    alice.locator("#text").press("Enter")
    expect(bob.locator("#messages .msg.user", has_text="back again")).to_be_visible(timeout=WAIT_MS)
    expect(bob.locator("#messages .msg.system", has_text="alice left")).to_have_count(0)
    expect(bob.locator("#rooms .room.current .count")).to_have_text("2", timeout=WAIT_MS)

    # A drop followed by the client's own automatic reconnection is recovered as well.
    alice.evaluate("socket.io.engine.close()")
    expect(notice).to_have_count(2, timeout=WAIT_MS)
    expect(notice.last).to_have_text("Reconnected — nothing missed.")

    # A session the server cannot restore (an offset it never issued, as after a restart; the
    # client's auth overrides the offset it would send): the page says so and joins its room
    # again; the room sees her leave and come back.
    alice.evaluate("socket.auth.offset = 'unknown-1'; socket.io.engine.close()")
    expect(alice.locator("#messages .notice.new-session")).to_contain_text("Reconnected (new session)",
                                                                            timeout=WAIT_MS)
    alice.evaluate("delete socket.auth.offset")
    expect(alice.locator("#messages .msg.system", has_text="You joined #reconnect")).to_be_visible()
    assert alice.evaluate("socket.id") != sid
    expect(bob.locator("#messages .msg.system", has_text="alice left")).to_be_visible(timeout=WAIT_MS)
    # (The first "alice joined" is in the history Bob got when he joined.)
    expect(bob.locator("#messages .msg.system", has_text="alice joined")).to_have_count(2, timeout=WAIT_MS)
    expect(bob.locator("#rooms .room.current .count")).to_have_text("2", timeout=WAIT_MS)
    # Her earlier messages, now history, are still shown as hers.
    expect(alice.locator('#messages .msg.mine[data-status="delivered"]', has_text="back again")).to_be_visible()


def test_invalid_nickname_is_refused(base_url: str) -> None:
    """The connect handler's ConnectionRejected reaches the page as a connect_error."""
    errors: list[str] = []
    with chromium() as browser:
        context = browser.new_context()
        try:
            page = context.new_page()
            page.set_default_timeout(WAIT_MS)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{base_url}/", timeout=WAIT_MS)
            # Bypass the form's maxlength to send what a hand-made client could send.
            page.eval_on_selector("#nickname", "el => el.removeAttribute('maxlength')")
            page.fill("#nickname", "x" * 40)
            page.click("#login-form button[type=submit]")
            expect(page.locator("#login-error")).to_contain_text("invalid nickname", timeout=WAIT_MS)
            expect(page.locator("#chat")).to_be_hidden()
            assert errors == []
        finally:
            context.close()
