"""The Engine.IO handshake packet and the HTTP error table (protocol.md §1.3, §1.8)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Collection, Mapping
from enum import IntEnum, StrEnum
from typing import NamedTuple

from .packet import PacketType, text_frame


class Transport(StrEnum):
    """The transports of Engine.IO v4 this package serves (WebTransport is not one)."""

    POLLING = "polling"
    WEBSOCKET = "websocket"


class ErrorCode(IntEnum):
    UNKNOWN_TRANSPORT = 0
    UNKNOWN_SID = 1
    BAD_HANDSHAKE_METHOD = 2
    BAD_REQUEST = 3
    FORBIDDEN = 4
    UNSUPPORTED_PROTOCOL_VERSION = 5


_TRANSPORT_NAMED = {transport.value: transport for transport in Transport}

ERROR_MESSAGES: dict[ErrorCode, str] = {
    ErrorCode.UNKNOWN_TRANSPORT: "Transport unknown",
    ErrorCode.UNKNOWN_SID: "Session ID unknown",
    ErrorCode.BAD_HANDSHAKE_METHOD: "Bad handshake method",
    ErrorCode.BAD_REQUEST: "Bad request",
    ErrorCode.FORBIDDEN: "Forbidden",
    ErrorCode.UNSUPPORTED_PROTOCOL_VERSION: "Unsupported protocol version",
}


class EngineRequest(NamedTuple):
    """What an Engine.IO request's query asks for: a transport, and the session unless it is a handshake."""

    transport: Transport
    sid: str | None


def parse_query(query: Mapping[str, str], *, websocket: bool, transports: Collection[str]) -> EngineRequest | ErrorCode:
    """Check an Engine.IO request's query (§1.1, §1.8): the request, or the error code to answer with.

    `websocket` tells whether the request is a WebSocket handshake; `transports` are the enabled ones.
    """
    transport = query.get("transport")
    sid = query.get("sid")
    version_ok = query.get("EIO") == "4"
    if not websocket and sid is None and transport == Transport.WEBSOCKET and version_ok:
        return ErrorCode.BAD_REQUEST  # a plain HTTP GET naming websocket, with no upgrade
    if transport is None or transport not in transports:
        return ErrorCode.UNKNOWN_TRANSPORT
    if not version_ok:
        return ErrorCode.UNSUPPORTED_PROTOCOL_VERSION
    if (transport == Transport.WEBSOCKET) != websocket:
        return ErrorCode.BAD_REQUEST
    # A dict lookup: calling the enum costs more than the rest of this check (every request).
    return EngineRequest(_TRANSPORT_NAMED[transport], sid)


def error_body(code: ErrorCode, message: str | None = None) -> bytes:
    return json.dumps({"code": int(code), "message": message or ERROR_MESSAGES[code]}, separators=(",", ":")).encode()


def error_status(code: ErrorCode) -> int:
    return 403 if code is ErrorCode.FORBIDDEN else 400


def generate_sid() -> str:
    """20 url-safe characters, like Node's base64id (adapters guess private rooms by length)."""
    return secrets.token_urlsafe(15)


def open_frame(sid: str, upgrades: list[str], ping_interval: float, ping_timeout: float, max_payload: int) -> str:
    """The open packet with exactly the five keys the reference suites check."""
    return text_frame(PacketType.OPEN, json.dumps(
        {
            "sid": sid,
            "upgrades": upgrades,
            "pingInterval": round(ping_interval * 1000),
            "pingTimeout": round(ping_timeout * 1000),
            "maxPayload": max_payload,
        },
        separators=(",", ":"),
    ))
