"""The blocking facade: sync usage of the test client, and how the facade is generated."""

from __future__ import annotations

import inspect
import threading

import pytest

from fastapi_realtime.testing import (
    BlockingClient,
    BlockingClientSocket,
    ClientSocket,
    ConnectionRefused,
    RealtimeTestClient,
)
from fastapi_realtime.testing.blocking import Blocking, Mirror
from tests.testing.chat import TRANSPORTS, Transport, eventually_sync, make_chat

pytestmark = pytest.mark.timeout(30)


@TRANSPORTS
def test_sync_usage(transport: Transport) -> None:
    chat = make_chat()
    with RealtimeTestClient(chat.app) as client:
        sio = client.connect(transport=transport)
        other = client.connect(transport=transport)
        assert sio.wait_for("welcome") == sio.id
        assert sio.call("echo", b"\x00", "x") == (b"\x00", "x")
        sio.on("question", lambda q: q + 1)
        assert sio.call("ask", 1) == 2
        client.run(chat.rt.to("lobby").emit, "news", {"n": 1})
        assert other.wait_for("news") == {"n": 1}
        assert sio.wait_for("news") == {"n": 1}
        with pytest.raises(TimeoutError):
            sio.wait_for("news", timeout=0.05)
        assert ("news", ({"n": 1},)) in sio.received
        sio.drop()
        eventually_sync(lambda: len(chat.reasons) == 1)
        other.disconnect()
        eventually_sync(lambda: len(chat.reasons) == 2)
    assert chat.reasons[1] == "client namespace disconnect"


def test_sync_refusal() -> None:
    chat = make_chat()
    with RealtimeTestClient(chat.app) as client:
        with pytest.raises(ConnectionRefused) as refused:
            client.connect(auth={"token": "bad"})
        assert refused.value.data == {"reason": "bad token"}



def _public_coroutine_methods(cls: type) -> set[str]:
    return {name for name, member in vars(cls).items() if not name.startswith("_") and inspect.iscoroutinefunction(member)}


def _members(cls: type, kind: type) -> dict[str, object]:
    return {name: member for name, member in vars(cls).items() if isinstance(member, kind)}


def test_every_async_method_has_its_blocking_form() -> None:
    # Nothing to keep in step by hand: a new async method shows up here until the facade declares it.
    assert _public_coroutine_methods(ClientSocket) <= set(_members(BlockingClientSocket, Blocking))
    assert _public_coroutine_methods(RealtimeTestClient) <= set(_members(BlockingClient, Blocking))


def test_blocking_methods_keep_the_async_signature_and_doc() -> None:
    chat = make_chat()
    with RealtimeTestClient(chat.app) as client:
        sio = client.connect()
        for name in _members(BlockingClientSocket, Blocking):
            blocking, original = getattr(sio, name), getattr(sio.socket, name)
            assert inspect.signature(blocking) == inspect.signature(original), name
            assert blocking.__doc__ == original.__doc__ and blocking.__name__ == name
        assert list(inspect.signature(client.connect).parameters) == list(
            inspect.signature(client.client.connect).parameters
        )


def test_mirrors_read_the_socket_and_are_read_only() -> None:
    chat = make_chat()
    with RealtimeTestClient(chat.app) as client:
        sio = client.connect()
        assert isinstance(sio, BlockingClientSocket) and sio.socket in client.client.sockets
        for name in _members(BlockingClientSocket, Mirror):
            assert getattr(sio, name) == getattr(sio.socket, name), name
            with pytest.raises(AttributeError):
                setattr(sio, name, None)
        assert sio.connected and sio.id == sio.socket.id
        sio.socket.offset = "set-on-the-socket"  # what a test may still do, as example_app's do
        assert sio.offset == "set-on-the-socket"
        assert repr(sio) == repr(sio.socket)


def test_calls_run_on_the_loop_thread() -> None:
    chat = make_chat()
    with RealtimeTestClient(chat.app) as client:
        sio = client.connect()
        threads: list[int] = []

        def answer(n: int) -> int:
            threads.append(threading.get_ident())
            return n

        sio.on("question", answer)
        assert sio.call("ask", 7) == 7
        assert threads and threads[0] != threading.get_ident()
        assert client.run(lambda: _thread_id()) != threading.get_ident()
        received = sio.received
        received.clear()  # a copy: the socket's own record is untouched
        assert sio.received


async def _thread_id() -> int:
    return threading.get_ident()
