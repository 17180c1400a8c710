"""The admin namespace with python-socketio's AsyncClient as the admin UI (protocol.md §10):
auth and sessions, config, all_sockets, server_stats, the development-mode events and the
operations, against the instrumented app under uvicorn."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import pytest
import socketio

from tests.admin.helpers import CREDENTIALS, Recorder, admin, run, serve_admin, until
from tests.conftest import NODE_DIR

pytestmark = pytest.mark.timeout(60)
ALL_FEATURES = ["EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT",
                "AGGREGATED_EVENTS", "ALL_EVENTS"]
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with serve_admin(SERVER_ID="node-a") as base:
        yield base


def test_wrong_password_is_refused(url: str) -> None:
    async def body() -> None:
        for auth in ({"username": "admin", "password": "nope"}, {"username": "root", "password": "s3cret"},
                     {"username": 1, "password": ["x"]}, {}, {"sessionId": "0123456789abcdef"}):
            rec = Recorder(url)
            with pytest.raises(socketio.exceptions.ConnectionError):
                await rec.connect(["/admin"], auth=auth)
            await until(lambda: rec.connect_errors, what="connect_error")  # noqa: B023
            assert rec.connect_errors[0] == {"message": "invalid credentials"}
            await rec.close()

    run(body)


def test_session_config_and_all_sockets(url: str) -> None:
    async def body() -> None:
        client = await Recorder(url).connect(["/"], auth={"rooms": ["r1"], "name": "ada"})
        first = await admin(url)
        try:
            (session_id,) = await first.wait_for("session")
            assert re.fullmatch(r"[0-9a-f]{16}", session_id)
            (config,) = await first.wait_for("config")
            assert config == {"supportedFeatures": ALL_FEATURES}
            (sockets,) = await first.wait_for("all_sockets")
            # The session and config come first, in Node's order.
            assert [e[1] for e in first.events[:3]] == ["session", "config", "all_sockets"]
            mine = next(s for s in sockets if s["id"] == client.sid())
            assert mine["nsp"] == "/"
            assert mine["transport"] == "websocket"
            assert len(mine["clientId"]) == 12
            assert sorted(mine["rooms"]) == sorted(["r1", client.sid()])
            assert mine["data"] == {"name": "ada"}  # without its _admin field
            assert set(mine["handshake"]) == {"address", "headers", "query", "issued", "secure", "time", "url",
                                              "xdomain"}
            assert mine["handshake"]["address"] == "127.0.0.1"
            assert isinstance(mine["handshake"]["issued"], int)
            # The admin's own socket is listed too, and never with its credentials.
            admin_socket = next(s for s in sockets if s["nsp"] == "/admin")
            assert "s3cret" not in str(admin_socket)

            # The UI reconnects with the session id alone, and gets no new one.
            again = await admin(url, {"sessionId": session_id})
            await again.wait_for("config")
            assert again.named("session") == []
            await again.close()
        finally:
            await first.close()
            await client.close()

    run(body)


def test_server_stats(url: str) -> None:
    async def body() -> None:
        client = await Recorder(url).connect(["/", "/other"])
        watcher = await admin(url)
        try:
            await client.sio.call("echo", "x", timeout=5)
            # One stats message with this traffic in it (each message carries what happened since the last).
            stats = await watcher.wait_for("server_stats", lambda a: a[0]["clientsCount"] >= 2)
            s = stats[0]
            assert s["serverId"] == "node-a"
            assert isinstance(s["hostname"], str) and isinstance(s["pid"], int)
            assert s["uptime"] >= 0
            assert s["pollingClientsCount"] == 0
            by_name = {n["name"]: n["socketsCount"] for n in s["namespaces"]}
            assert by_name["/"] >= 1 and by_name["/other"] >= 1 and by_name["/admin"] >= 1

            def kinds() -> set[str]:
                return {e["type"] for args in watcher.named("server_stats") for e in args[0]["aggregatedEvents"]}

            await until(lambda: {"rawConnection", "packetsIn", "bytesIn"} <= kinds(), what="aggregated events")
            event = next(e for args in watcher.named("server_stats") for e in args[0]["aggregatedEvents"])
            assert set(event) >= {"timestamp", "type", "count"} and event["timestamp"] % 1000 == 0
            await client.close()
            await until(lambda: "rawDisconnection" in kinds(), what="rawDisconnection")
            reasons = {e.get("subType") for args in watcher.named("server_stats")
                       for e in args[0]["aggregatedEvents"] if e["type"] == "rawDisconnection"}
            assert reasons & {"transport close", "client namespace disconnect"}
        finally:
            await watcher.close()
            await client.close()

    run(body)


def test_polling_clients_are_counted(url: str) -> None:
    async def body() -> None:
        client = await Recorder(url, ["polling"]).connect(["/"])
        watcher = await admin(url)
        try:
            await watcher.wait_for("server_stats", lambda a: a[0]["pollingClientsCount"] >= 1)
            (sockets,) = await watcher.wait_for("all_sockets")
            assert next(s for s in sockets if s["id"] == client.sid())["transport"] == "polling"
        finally:
            await watcher.close()
            await client.close()

    run(body)


# socket.io-client (Node) connects its namespace over polling, then upgrades (python-socketio
# upgrades first, so its sockets are never seen on polling).
NODE_CLIENT = """
const { io } = require("socket.io-client");
const socket = io(process.argv[1], { reconnection: false });
socket.on("connect", () => console.log(socket.id));
setTimeout(() => { socket.disconnect(); process.exit(0); }, 3000);
"""


def test_upgrade_is_reported(url: str) -> None:
    async def body() -> None:
        watcher = await admin(url)
        await watcher.wait_for("all_sockets")
        node = await asyncio.create_subprocess_exec("node", "-e", NODE_CLIENT, url, cwd=NODE_DIR,
                                                    stdout=asyncio.subprocess.PIPE)
        try:
            assert node.stdout is not None
            sid = (await asyncio.wait_for(node.stdout.readline(), 10)).decode().strip()
            (socket, _) = await watcher.wait_for("socket_connected", lambda a: a[0]["id"] == sid)
            assert socket["transport"] == "polling"
            # As it happens (Engine.IO's upgrade), not at the next stats tick.
            update = await watcher.wait_for("socket_updated", lambda a: a[0]["id"] == sid and "transport" in a[0],
                                            timeout=2)
            assert update[0] == {"id": sid, "nsp": "/", "transport": "websocket"}
        finally:
            await watcher.close()
            await node.wait()

    run(body)


def test_development_events(url: str) -> None:
    async def body() -> None:
        watcher = await admin(url)
        await watcher.wait_for("all_sockets")
        client = await Recorder(url).connect(["/"], auth={"rooms": ["lobby"]})
        sid = client.sid()
        try:
            socket, date = await watcher.wait_for("socket_connected", lambda a: a[0]["id"] == sid)
            assert ISO.match(date)
            assert socket["nsp"] == "/" and socket["transport"] == "websocket" and len(socket["clientId"]) == 12
            await watcher.wait_for("room_joined", lambda a: a[:3] == ["/", "lobby", sid])
            await watcher.wait_for("room_joined", lambda a: a[:3] == ["/", sid, sid])
            # What the connect handler put in the socket's data, once it ran.
            await watcher.wait_for("socket_updated", lambda a: a[0] == {"id": sid, "nsp": "/", "data": {"name": None}})

            assert await client.sio.call("echo", [1, "two"], timeout=5) == [1, "two"]
            received = await watcher.wait_for("event_received", lambda a: a[1] == sid)
            assert received[0] == "/" and received[2] == ["echo", [1, "two"]] and ISO.match(received[3])

            await client.sio.disconnect()
            gone = await watcher.wait_for("socket_disconnected", lambda a: a[1] == sid)
            # python-socketio may close the transport before its DISCONNECT packet is out.
            assert gone[0] == "/" and gone[2] in ("client namespace disconnect", "transport close")
            assert ISO.match(gone[3])
            await watcher.wait_for("room_left", lambda a: a[:3] == ["/", "lobby", sid])
            # No event of the admin namespace itself is reported.
            assert not [a for a in watcher.named("event_received") if a[0] == "/admin"]
        finally:
            await watcher.close()
            await client.close()

    run(body)


def test_direct_emit_is_reported_as_sent(url: str) -> None:
    async def body() -> None:
        watcher = await admin(url)
        client = await Recorder(url).connect(["/"])
        try:
            await client.sio.emit("shout", "direct")
            sent = await watcher.wait_for("event_sent", lambda a: a[1] == client.sid() and a[2][0] == "heard",
                                          timeout=2)
            assert sent[0] == "/" and sent[2] == ["heard", "direct"] and ISO.match(sent[3])
            # The admin namespace's own traffic (config, server_stats...) is never reported.
            assert not [a for a in watcher.named("event_sent") if a[0] == "/admin"]
        finally:
            await watcher.close()
            await client.close()

    run(body)


def test_broadcast_is_reported_as_sent_to_each_recipient(url: str) -> None:
    # Node reports one event_sent per local socket a broadcast reaches.
    async def body() -> None:
        watcher = await admin(url)
        client = await Recorder(url).connect(["/"])
        try:
            await client.sio.emit("shout", "hi")
            sent = await watcher.wait_for("event_sent", lambda a: a[1] == client.sid() and a[2][0] == "news",
                                          timeout=2)
            assert sent[2] == ["news", "hi"]
        finally:
            await watcher.close()
            await client.close()

    run(body)


def test_packets_out_are_counted(url: str) -> None:
    async def body() -> None:
        watcher = await admin(url)
        try:
            def totals() -> dict[str, int]:
                out: dict[str, int] = {}
                for args in watcher.named("server_stats"):
                    for e in args[0]["aggregatedEvents"]:
                        out[e["type"]] = out.get(e["type"], 0) + e["count"]
                return out

            await until(lambda: {"packetsOut", "bytesOut"} <= set(totals()), timeout=2, what="packetsOut")
            # At least the CONNECT reply, session, config and all_sockets went out, with their bytes.
            assert totals()["packetsOut"] >= 4 and totals()["bytesOut"] > totals()["packetsOut"]
        finally:
            await watcher.close()

    run(body)


def test_operations(url: str) -> None:
    async def body() -> None:
        watcher = await admin(url)
        client = await Recorder(url).connect(["/"])
        sid = client.sid()
        try:
            await watcher.wait_for("all_sockets")
            await watcher.sio.emit("join", ("/", "vip", sid), namespace="/admin")
            await watcher.wait_for("room_joined", lambda a: a[:3] == ["/", "vip", sid])
            await watcher.sio.emit("emit", ("/", sid, "hello", 1, {"a": 2}), namespace="/admin")
            assert await client.wait_for("hello") == [1, {"a": 2}]
            await watcher.sio.emit("leave", ("/", "vip", sid), namespace="/admin")
            await watcher.wait_for("room_left", lambda a: a[:3] == ["/", "vip", sid])

            # Input that names nothing, or is of the wrong kind, is ignored.
            for name, args in (("join", ("/nope", "r", sid)), ("join", (1, 2, 3)), ("emit", ("/", sid, "connect")),
                               ("emit", ("/", sid)), ("_disconnect", (None,)), ("leave", ()), ("emit", ({}, [], 5)),
                               ("join", ["/", "r", sid])):
                await watcher.sio.emit(name, args, namespace="/admin")
            await watcher.sio.emit("_disconnect", ("/", False, sid), namespace="/admin")
            await until(lambda: client.disconnects, what="the client's disconnect")
            await watcher.wait_for("socket_disconnected", lambda a: a[1] == sid and a[2] == "server namespace disconnect")
        finally:
            await watcher.close()
            await client.close()

    run(body)


def test_read_only_refuses_operations() -> None:
    with serve_admin(ADMIN_READ_ONLY="1") as url:
        async def body() -> None:
            watcher = await admin(url)
            client = await Recorder(url).connect(["/"])
            try:
                (config,) = await watcher.wait_for("config")
                assert config == {"supportedFeatures": ["AGGREGATED_EVENTS", "ALL_EVENTS"]}
                await watcher.sio.emit("_disconnect", ("/", True, client.sid()), namespace="/admin")
                await watcher.sio.emit("emit", ("/", client.sid(), "hello"), namespace="/admin")
                await watcher.wait_for("server_stats")
                await watcher.wait_for("server_stats", lambda a: a is not watcher.named("server_stats")[0])
                assert client.sio.connected and client.disconnects == [] and client.named("hello") == []
            finally:
                await watcher.close()
                await client.close()

        run(body)


def test_production_mode_sends_aggregates_only() -> None:
    with serve_admin(ADMIN_MODE="production", ADMIN_AUTH="") as url:
        async def body() -> None:
            watcher = await admin(url, {})  # auth=False: no credentials needed
            client = await Recorder(url).connect(["/"])
            try:
                (config,) = await watcher.wait_for("config")
                assert "ALL_EVENTS" not in config["supportedFeatures"]
                assert "AGGREGATED_EVENTS" in config["supportedFeatures"]
                await client.sio.call("echo", 1, timeout=5)
                await watcher.wait_for("server_stats", lambda a: a[0]["clientsCount"] >= 2)
                names = {event for _, event, _ in watcher.events}
                assert names <= {"config", "server_stats"}, names
            finally:
                await watcher.close()
                await client.close()

        run(body)


def test_session_id_is_per_login(url: str) -> None:
    async def body() -> None:
        a, b = await admin(url), await admin(url, dict(CREDENTIALS))
        try:
            (sa,), (sb,) = await a.wait_for("session"), await b.wait_for("session")
            assert sa != sb
        finally:
            await a.close()
            await b.close()

    run(body)
