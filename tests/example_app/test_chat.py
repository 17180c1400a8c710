"""The example chat's realtime side, in-process: RealtimeTestClient drives the real app (no browser, no uvicorn)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from typing import Any, Literal

import httpx
import pytest

from example_app.chat import BURST_MESSAGES
from example_app.main import create_app
from fastapi_realtime.testing import BlockingClient, BlockingClientSocket, ConnectionRefused, RealtimeTestClient

pytestmark = pytest.mark.timeout(60)

Transport = Literal["websocket", "polling"]
TRANSPORTS = pytest.mark.parametrize("transport", ["websocket", "polling"])


@pytest.fixture(autouse=True)
def no_server_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """A handler that raised is only logged by the library: fail the test on it."""
    with caplog.at_level(logging.ERROR, logger="fastapi_realtime"):
        yield
    errors = [r.getMessage() for r in caplog.records if r.name.startswith("fastapi_realtime") and r.levelno >= logging.ERROR]
    assert errors == []


@pytest.fixture
def client() -> Iterator[BlockingClient]:
    with RealtimeTestClient(create_app()) as blocking:
        yield blocking


def body(value: Any) -> Any:
    """An event's payload. With recovery on, stored events carry their offset as a last argument."""
    if isinstance(value, tuple):
        assert len(value) == 2 and isinstance(value[1], str), value
        return value[0]
    return value


def wait_body(sio: BlockingClientSocket, event: str, timeout: float = 5.0) -> Any:
    return body(sio.wait_for(event, timeout=timeout))


def enter(client: BlockingClient, nickname: str, room: str = "general", transport: Transport = "websocket") -> BlockingClientSocket:
    sio = client.connect(auth={"nickname": nickname}, transport=transport)
    assert wait_body(sio, "welcome")["nickname"] == nickname
    joined = sio.call("join", {"room": room})
    assert joined["room"] == room, joined
    return sio


def events(sio: BlockingClientSocket, name: str) -> list[Any]:
    return [body(args[0] if len(args) == 1 else tuple(args)) for event, args in sio.received if event == name]


def system_texts(sio: BlockingClientSocket) -> list[str]:
    return [line["text"] for line in events(sio, "system")]


@TRANSPORTS
def test_join_send_and_receive(client: BlockingClient, transport: Transport) -> None:
    alice = enter(client, "alice", transport=transport)
    bob = client.connect(auth={"nickname": "bob"}, transport=transport)
    joined = bob.call("join", {"room": "#General "})  # the room name is normalised by the model
    assert joined["room"] == "general"
    assert joined["members"] == ["alice", "bob"]
    assert [line["text"] for line in joined["history"]] == ["alice joined"]
    assert wait_body(alice, "system")["text"] == "bob joined"

    receipt = alice.call("message", {"room": "general", "text": "  hello bob  "})
    assert set(receipt) == {"id", "ts"}
    line = wait_body(bob, "message")
    assert line == {"id": receipt["id"], "room": "general", "kind": "chat", "text": "hello bob",
                    "ts": receipt["ts"], "author": "alice", "sid": alice.id}

    # A later joiner gets the conversation so far.
    carol = enter(client, "carol")
    history = carol.call("join", {"room": "general"})["history"]
    assert [(h["kind"], h["text"]) for h in history] == [
        ("system", "alice joined"), ("system", "bob joined"), ("chat", "hello bob"), ("system", "carol joined")]
    # The sender's copy is the page's own: the room's broadcast skips it.
    assert events(alice, "message") == []


def test_leave_and_room_list(client: BlockingClient) -> None:
    alice = enter(client, "alice", room="lab")
    bob = enter(client, "bob", room="lab")
    rooms = wait_body(bob, "rooms")
    while next((r for r in rooms if r["name"] == "lab"), {"members": 0})["members"] != 2:
        rooms = wait_body(bob, "rooms")
    assert {"name": "lab", "members": 2, "nicknames": ["alice", "bob"]} in rooms

    assert bob.call("leave") is None
    assert wait_body(alice, "system")["text"] == "bob joined"
    assert wait_body(alice, "system")["text"] == "bob left"
    assert bob.call("message", {"room": "lab", "text": "still here?"}) == {
        "error": "not_in_room", "message": "join #lab before writing to it"}

    # A client that leaves for good (namespace disconnect) is gone at once; the emptied room goes too.
    alice.disconnect()
    rooms = wait_body(bob, "rooms")
    while any(r["name"] == "lab" for r in rooms):
        rooms = wait_body(bob, "rooms")
    assert [r["name"] for r in rooms] == ["general", "random", "help"]


def test_invalid_message_gets_the_validation_ack(client: BlockingClient) -> None:
    alice = enter(client, "alice")
    bob = enter(client, "bob")

    too_long = alice.call("message", {"room": "general", "text": "x" * 501})
    assert too_long["error"] == "validation_error"
    [error] = too_long["detail"]
    assert error["type"] == "string_too_long"
    assert error["loc"] == ["args", "msg", "text"]

    blank = alice.call("message", {"room": "general", "text": "   "})
    assert [e["type"] for e in blank["detail"]] == ["string_too_short"]

    bad_room = alice.call("message", {"room": "no spaces", "text": "hi"})
    assert bad_room["detail"][0]["type"] == "room_name"
    assert bad_room["detail"][0]["msg"] == "room names are 1-24 characters: a-z, 0-9, - and _"

    missing = alice.call("message", {"text": "hi"})
    assert [(e["type"], e["loc"]) for e in missing["detail"]] == [("missing", ["args", "msg", "room"])]

    not_an_object = alice.call("message", "hi")
    assert not_an_object["error"] == "validation_error"

    assert alice.call("join", {"room": "-bad"})["detail"][0]["type"] == "room_name"
    assert alice.call("set-nickname", {"nickname": ""})["error"] == "validation_error"

    # Nothing invalid reached the room; a valid message still does.
    receipt = alice.call("message", {"room": "general", "text": "valid"})
    assert wait_body(bob, "message")["id"] == receipt["id"]
    assert [line["text"] for line in events(bob, "message")] == ["valid"]


def test_typing_indicator(client: BlockingClient) -> None:
    alice = enter(client, "alice")
    bob = enter(client, "bob")

    alice.emit("typing", {"typing": True})
    assert wait_body(bob, "typing") == {"room": "general", "id": alice.id, "nickname": "alice", "typing": True}
    alice.emit("typing", {"typing": False})
    assert wait_body(bob, "typing")["typing"] is False

    # Without an ack to answer, an invalid payload comes back as an "error" event.
    alice.emit("typing", {"typing": "maybe"})
    error = wait_body(alice, "error")
    assert error["event"] == "typing"
    assert error["error"] == "validation_error"
    assert error["detail"][0]["loc"] == ["args", "update", "typing"]
    # The typist never sees its own indicator.
    assert alice.call("message", {"room": "general", "text": "done"})
    wait_body(bob, "message")
    assert events(alice, "typing") == []
    assert len(events(bob, "typing")) == 2


@TRANSPORTS
def test_dropped_client_recovers_the_message_it_missed(client: BlockingClient, transport: Transport) -> None:
    alice = enter(client, "alice", transport=transport)
    bob = enter(client, "bob")
    sid = alice.id

    alice.drop()
    receipt = bob.call("message", {"room": "general", "text": "sent while alice was away"})
    assert set(receipt) == {"id", "ts"}

    alice.reconnect()
    assert alice.recovered
    assert alice.id == sid
    missed = wait_body(alice, "message")
    assert (missed["id"], missed["text"], missed["author"]) == (receipt["id"], "sent while alice was away", "bob")

    # Still in the room with the same name, and the room never saw her leave.
    alice.call("message", {"room": "general", "text": "back"})
    assert wait_body(bob, "message")["text"] == "back"
    assert system_texts(bob) == []
    assert wait_body(alice, "welcome")["nickname"] == "alice"


def test_rename_survives_recovery(client: BlockingClient) -> None:
    alice = enter(client, "alice")
    bob = enter(client, "bob")
    assert alice.call("set-nickname", {"nickname": "  ally   cat "}) == {"nickname": "ally cat"}
    assert wait_body(bob, "system")["text"] == "alice is now known as ally cat"

    alice.drop()
    alice.reconnect()
    assert alice.recovered
    assert wait_body(alice, "welcome")["nickname"] == "ally cat"  # `enter` took the first one
    alice.call("message", {"room": "general", "text": "renamed"})
    assert wait_body(bob, "message")["author"] == "ally cat"


def test_unrecovered_client_starts_a_new_session(client: BlockingClient) -> None:
    alice = enter(client, "alice")
    bob = enter(client, "bob")
    sid = alice.id

    alice.drop()
    # An offset the server never issued (as after a server restart): no recovery, a new session.
    alice.socket.offset = "unknown-1"
    alice.reconnect()
    assert not alice.recovered
    assert alice.id != sid
    # The old place is released at once: the client presented the old session's private id.
    assert wait_body(bob, "system")["text"] == "alice left"
    assert alice.call("message", {"room": "general", "text": "hello?"})["error"] == "not_in_room"
    assert alice.call("join", {"room": "general"})["members"] == ["alice", "bob"]
    assert wait_body(bob, "system")["text"] == "alice joined"


def test_dropped_member_leaves_when_the_window_closes() -> None:
    with RealtimeTestClient(create_app(recovery_window=0.2)) as client:
        alice = enter(client, "alice")
        bob = enter(client, "bob")
        alice.drop()
        started = time.monotonic()
        assert wait_body(bob, "system", timeout=10)["text"] == "alice left"
        assert time.monotonic() - started >= 0.2  # not before the window closed
        alice.reconnect()
        assert not alice.recovered


def test_nickname_from_auth_cookie_or_guest(client: BlockingClient) -> None:
    with pytest.raises(ConnectionRefused) as refused:
        client.connect(auth={"nickname": "x" * 40})
    assert refused.value.message == "invalid nickname"
    assert refused.value.data == {"max_length": 24}

    carol = client.connect(headers={"cookie": "chat_nickname=carol%20c"})
    assert wait_body(carol, "welcome")["nickname"] == "carol c"
    # The auth wins over the cookie.
    dave = client.connect(auth={"nickname": "dave"}, headers={"cookie": "chat_nickname=carol"})
    assert wait_body(dave, "welcome")["nickname"] == "dave"
    guest = client.connect()
    assert guest.id is not None
    assert wait_body(guest, "welcome")["nickname"] == f"guest-{guest.id[:4]}"


def test_flood_guard(client: BlockingClient) -> None:
    alice = enter(client, "alice")
    for i in range(BURST_MESSAGES):
        assert "id" in alice.call("message", {"room": "general", "text": f"spam {i}"})
    refused = alice.call("message", {"room": "general", "text": "one more"})
    assert refused["error"] == "slow_down"
    # Other events are not limited.
    alice.emit("typing", {"typing": False})
    assert alice.call("join", {"room": "general"})["room"] == "general"


def test_http_routes() -> None:
    async def get(path: str) -> Any:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(create_app()), base_url="http://test") as http:
            response = await http.get(path)
            assert response.status_code == 200
            return response.json()

    assert asyncio.run(get("/api/health")) == {"status": "ok", "online": 0}
    rooms = asyncio.run(get("/api/rooms"))
    assert rooms == [{"name": n, "members": 0, "nicknames": []} for n in ("general", "random", "help")]
