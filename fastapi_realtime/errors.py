"""The error bodies clients receive: structured like FastAPI's, leaking no internals."""

from __future__ import annotations

from typing import Any

from .exceptions import EventValidationError

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
