"""Sockets as the admin UI reads them (`SerializedSocket` of @socket.io/admin-ui 0.5)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..broadcast import RemoteSocket
from ..socket import Socket

ADMIN_KEY = "_admin"  # where a socket's data carries its client id and transport to other nodes


def iso_now() -> str:
    """A date as Node's JSON encodes a Date: ISO 8601, milliseconds, `Z`."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def public_data(data: Any) -> Any:
    if isinstance(data, dict):
        return {key: value for key, value in data.items() if key != ADMIN_KEY}
    return data


def _handshake(handshake: dict[str, Any]) -> dict[str, Any]:
    headers = handshake.get("headers") or {}
    # As Node: the address behind a proxy when it says so. Never `auth` (the admin's password).
    address = headers.get("cf-connecting-ip") or headers.get("x-forwarded-for") or handshake.get("address")
    return {
        "address": address,
        "headers": headers,
        "query": handshake.get("query") or {},
        "issued": handshake.get("issued"),
        "secure": handshake.get("secure"),
        "time": handshake.get("time"),
        "url": handshake.get("url"),
        "xdomain": handshake.get("xdomain"),
    }


def admin_marks(socket: Socket) -> dict[str, str]:
    return {"clientId": socket.client.session.sid[:12], "transport": str(socket.transport)}


def serialize_local(socket: Socket) -> dict[str, Any]:
    marks = admin_marks(socket)
    return {
        "id": socket.id,
        "clientId": marks["clientId"],
        "transport": marks["transport"],
        "nsp": socket.namespace,
        "data": public_data(socket.data),
        "handshake": _handshake(socket.handshake.to_dict()),
        "rooms": sorted(socket.rooms),
    }


def serialize_remote(socket: RemoteSocket) -> dict[str, Any]:
    """A socket found by fetch_sockets (maybe on another node): its client id and transport
    travel in its data, as in Node; without them the socket id stands in for the client."""
    marks = socket.data.get(ADMIN_KEY) if isinstance(socket.data, dict) else None
    marks = marks if isinstance(marks, dict) else {}
    return {
        "id": socket.id,
        "clientId": marks.get("clientId") or socket.id[:12],
        "transport": marks.get("transport") or "polling",
        "nsp": socket.namespace,
        "data": public_data(socket.data),
        "handshake": _handshake(socket.handshake),
        "rooms": sorted(socket.rooms),
    }
