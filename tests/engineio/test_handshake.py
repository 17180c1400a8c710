"""Engine.IO query checks (protocol.md §1.1, §1.8), without a server."""

from __future__ import annotations

import pytest

from fastapi_realtime.engineio.handshake import EngineRequest, ErrorCode, Transport, parse_query

BOTH = ("polling", "websocket")


@pytest.mark.parametrize(
    ("query", "websocket", "transports", "expected"),
    [
        ({"EIO": "4", "transport": "polling"}, False, BOTH, EngineRequest(Transport.POLLING, None)),
        ({"EIO": "4", "transport": "polling", "sid": "x", "t": "1"}, False, BOTH, EngineRequest(Transport.POLLING, "x")),
        ({"EIO": "4", "transport": "websocket"}, True, BOTH, EngineRequest(Transport.WEBSOCKET, None)),
        ({"EIO": "4", "transport": "websocket", "sid": "x"}, True, BOTH, EngineRequest(Transport.WEBSOCKET, "x")),
        ({"EIO": "4"}, False, BOTH, ErrorCode.UNKNOWN_TRANSPORT),
        ({"EIO": "4", "transport": "abc"}, False, BOTH, ErrorCode.UNKNOWN_TRANSPORT),
        ({"EIO": "4", "transport": "websocket", "sid": "x"}, True, ("polling",), ErrorCode.UNKNOWN_TRANSPORT),
        ({"transport": "polling"}, False, BOTH, ErrorCode.UNSUPPORTED_PROTOCOL_VERSION),
        ({"EIO": "3", "transport": "polling"}, False, BOTH, ErrorCode.UNSUPPORTED_PROTOCOL_VERSION),
        ({"EIO": "abc", "transport": "polling"}, False, BOTH, ErrorCode.UNSUPPORTED_PROTOCOL_VERSION),
        # A plain HTTP GET naming websocket (no upgrade), even when websocket is disabled.
        ({"EIO": "4", "transport": "websocket"}, False, BOTH, ErrorCode.BAD_REQUEST),
        ({"EIO": "4", "transport": "websocket"}, False, ("polling",), ErrorCode.BAD_REQUEST),
        # Transport mismatch for a known sid.
        ({"EIO": "4", "transport": "websocket", "sid": "x"}, False, BOTH, ErrorCode.BAD_REQUEST),
        ({"EIO": "4", "transport": "polling", "sid": "x"}, True, BOTH, ErrorCode.BAD_REQUEST),
    ],
)
def test_parse_query(
    query: dict[str, str], websocket: bool, transports: tuple[str, ...], expected: EngineRequest | ErrorCode
) -> None:
    assert parse_query(query, websocket=websocket, transports=transports) == expected
