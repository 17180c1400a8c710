"""The error bodies clients receive: structured like FastAPI's, leaking no internals."""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException

from .exceptions import ConnectionRejected, EventValidationError

_PLAIN = (str, int, float, bool, bytes, type(None))


def _json_safe(value: Any) -> Any:
    """Pydantic error contexts may hold exception objects: send their text instead."""
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    return str(value)


def validation_error(exc: EventValidationError) -> dict[str, Any]:
    """Like the body of FastAPI's 422 response, with an `error` tag."""
    return {"error": "validation_error", "detail": _json_safe(exc.errors)}


def internal_error() -> dict[str, Any]:
    return {"error": "internal_error", "message": "Internal server error"}


def http_error(exc: HTTPException) -> dict[str, Any]:
    """An HTTPException from a dependency written for HTTP routes (say, a missing token)."""
    return {"error": "http_error", "status_code": exc.status_code, "detail": _json_safe(exc.detail)}


def client_error(exc: Exception) -> dict[str, Any] | None:
    """The body for an exception caused by what the client sent; None for a server fault."""
    if isinstance(exc, EventValidationError):
        return validation_error(exc)
    if isinstance(exc, HTTPException):
        return http_error(exc)
    return None


def connect_rejection(exc: Exception) -> ConnectionRejected | None:
    """The CONNECT_ERROR for a client error raised while admitting a connection."""
    body = client_error(exc)
    if body is None:
        return None
    if isinstance(exc, HTTPException) and isinstance(exc.detail, str):
        return ConnectionRejected(exc.detail, data=body)
    return ConnectionRejected("Validation error" if isinstance(exc, EventValidationError) else "HTTP error", data=body)
