"""One exception tree. Local errors (API misuse) are distinct from remote ones (the peer misbehaved)."""

from __future__ import annotations

from typing import Any


class RealtimeError(Exception):
    """Base of every exception this package raises."""


class ProtocolError(RealtimeError):
    """A protocol rule was broken."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol does not allow."""


class LocalProtocolError(ProtocolError):
    """This side tried to do something the protocol does not allow."""


class ConnectionRejected(RealtimeError):
    """Raised in a connect handler or middleware to refuse a namespace connection.

    The client receives a CONNECT_ERROR packet carrying `message` and, when given, `data`.
    """

    def __init__(self, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data


class AckTimeoutError(RealtimeError, TimeoutError):
    """An acknowledgement did not arrive in time.

    For a broadcast, `responses` holds the acks that did arrive before the deadline.
    """

    def __init__(self, message: str = "operation has timed out", responses: list[Any] | None = None) -> None:
        super().__init__(message)
        self.responses: list[Any] = responses if responses is not None else []


class DisconnectedError(RealtimeError):
    """The socket was disconnected before the operation could complete."""


class EventValidationError(RealtimeError):
    """An event's arguments (or the handshake data a dependency needs) failed validation.

    `errors` is a list like the `detail` of FastAPI's 422 response.
    """

    def __init__(self, errors: list[Any]) -> None:
        super().__init__("event validation failed")
        self.errors = errors


class ClusterError(RealtimeError):
    """A request to the other nodes of a cluster failed; `responses` holds what did come."""

    def __init__(self, message: str, responses: list[Any] | None = None) -> None:
        super().__init__(message)
        self.responses: list[Any] = responses if responses is not None else []


class ClusterTimeoutError(ClusterError, AckTimeoutError):
    """Some nodes did not answer a cluster request in time (fetch_sockets, server_side_emit_with_ack)."""

    def __init__(self, message: str, responses: list[Any] | None = None) -> None:
        ClusterError.__init__(self, message, responses)


class AdapterUnavailableError(ClusterError, ConnectionError):
    """The adapter's backend (Redis) cannot be reached for an answer the caller needs."""
