"""The protocol messages every namespace shares, defined once in `components.messages`.

CONNECT replies, DISCONNECT, and the error acks and `error` event of `fastapi_realtime.errors`
(FastAPI's 422 `detail`, tagged). Each channel refers to them by `$ref`.
"""

from __future__ import annotations

from typing import Any

from ..reasons import DisconnectReason

__all__ = [
    "CONNECTED", "CONNECT_ERROR", "DISCONNECT", "DISCONNECT_REASONS", "ERROR_ACK", "ERROR_EVENT", "PROTOCOL_MESSAGES",
]

CONNECTED = "socketio.connected"
CONNECT_ERROR = "socketio.connect_error"
DISCONNECT = "socketio.disconnect"
ERROR_ACK = "fastapi_realtime.error_ack"
ERROR_EVENT = "fastapi_realtime.error"
# The error bodies of fastapi_realtime.errors: FastAPI's 422 `detail`, tagged.
_VALIDATION_ERROR: dict[str, Any] = {
    "type": "object",
    "title": "Validation error",
    "properties": {
        "error": {"const": "validation_error"},
        "detail": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {"type": "array", "items": {"type": ["string", "integer"]}},
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
    "required": ["error", "detail"],
}
_INTERNAL_ERROR: dict[str, Any] = {
    "type": "object",
    "title": "Internal error",
    "properties": {"error": {"const": "internal_error"}, "message": {"type": "string"}},
    "required": ["error", "message"],
}
PROTOCOL_MESSAGES: dict[str, dict[str, Any]] = {
    CONNECTED: {
        "name": "connect",
        "title": "Connected",
        "summary": "CONNECT reply: the client joined the namespace.",
        "payload": {
            "type": "object",
            "properties": {
                "sid": {"type": "string", "description": "The socket id in this namespace."},
                "pid": {
                    "type": "string",
                    "description": "Private id for connection state recovery (only when recovery is on).",
                },
            },
            "required": ["sid"],
        },
        "x-socketio-packet": "CONNECT",
    },
    CONNECT_ERROR: {
        "name": "connect_error",
        "title": "Connection refused",
        "summary": "CONNECT_ERROR: a middleware or the connect handler raised ConnectionRejected.",
        "payload": {
            "type": "object",
            "properties": {"message": {"type": "string"}, "data": {}},
            "required": ["message"],
        },
        "x-socketio-packet": "CONNECT_ERROR",
    },
    DISCONNECT: {
        "name": "disconnect",
        "title": "Disconnect",
        "summary": "DISCONNECT packet: the client leaves the namespace.",
        "x-socketio-packet": "DISCONNECT",
    },
    ERROR_ACK: {
        "name": "(error ack)",
        "title": "Error ack",
        "summary": "The ack instead of the handler's result when the arguments fail validation or the "
        "handler raises (an exception handler may answer otherwise).",
        "payload": {
            "type": "array",
            "items": [{"oneOf": [_VALIDATION_ERROR, _INTERNAL_ERROR]}],
            "additionalItems": False,
            "minItems": 1,
        },
        "x-socketio-packet": "ACK",
    },
    ERROR_EVENT: {
        "name": "error",
        "title": "error",
        "summary": "Emitted by the server when an event sent without an ack callback fails validation.",
        "payload": {
            "type": "array",
            "items": [
                {
                    "allOf": [_VALIDATION_ERROR],
                    "properties": {"event": {"description": "The event that failed."}},
                    "required": ["event"],
                }
            ],
            "additionalItems": False,
            "minItems": 1,
        },
        "x-socketio-packet": "EVENT",
    },
}

# What a disconnect handler can receive, from the one list of them.
DISCONNECT_REASONS: tuple[str, ...] = tuple(DisconnectReason)
