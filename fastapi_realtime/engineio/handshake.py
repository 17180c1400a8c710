"""The Engine.IO handshake packet and the HTTP error table (protocol.md §1.3, §1.8)."""

from __future__ import annotations

import json
import secrets
from enum import IntEnum


class ErrorCode(IntEnum):
    UNKNOWN_TRANSPORT = 0
    UNKNOWN_SID = 1
    BAD_HANDSHAKE_METHOD = 2
    BAD_REQUEST = 3
    FORBIDDEN = 4
    UNSUPPORTED_PROTOCOL_VERSION = 5


ERROR_MESSAGES: dict[ErrorCode, str] = {
    ErrorCode.UNKNOWN_TRANSPORT: "Transport unknown",
    ErrorCode.UNKNOWN_SID: "Session ID unknown",
    ErrorCode.BAD_HANDSHAKE_METHOD: "Bad handshake method",
    ErrorCode.BAD_REQUEST: "Bad request",
    ErrorCode.FORBIDDEN: "Forbidden",
    ErrorCode.UNSUPPORTED_PROTOCOL_VERSION: "Unsupported protocol version",
}


def error_body(code: ErrorCode, message: str | None = None) -> bytes:
    return json.dumps({"code": int(code), "message": message or ERROR_MESSAGES[code]}, separators=(",", ":")).encode()


def error_status(code: ErrorCode) -> int:
    return 403 if code is ErrorCode.FORBIDDEN else 400


def generate_sid() -> str:
    """20 url-safe characters, like Node's base64id (adapters guess private rooms by length)."""
    return secrets.token_urlsafe(15)


def open_frame(sid: str, upgrades: list[str], ping_interval: float, ping_timeout: float, max_payload: int) -> str:
    """The open packet with exactly the five keys the reference suites check."""
    return "0" + json.dumps(
        {
            "sid": sid,
            "upgrades": upgrades,
            "pingInterval": round(ping_interval * 1000),
            "pingTimeout": round(ping_timeout * 1000),
            "maxPayload": max_payload,
        },
        separators=(",", ":"),
    )
