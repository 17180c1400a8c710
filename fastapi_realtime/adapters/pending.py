"""Requests to the other nodes that wait for answers: how many are expected, what came, until when."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import ClusterTimeoutError


@dataclass(slots=True)
class _Request:
    expected: int
    future: asyncio.Future[None]
    responses: list[Any] = field(default_factory=list)
    answered: int = 0


class PendingRequests:
    """Open requests of one adapter, by request id."""

    def __init__(self, on_timeout: Callable[[], None] | None = None) -> None:
        self._requests: dict[str, _Request] = {}
        self._on_timeout = on_timeout  # told of every request that timed out (the observers)

    def __contains__(self, rid: object) -> bool:
        return rid in self._requests

    def open(self, rid: str, expected: int, initial: list[Any] | None = None) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._requests[rid] = _Request(expected, future, list(initial or ()))

    def answer(self, rid: str, items: list[Any]) -> None:
        """One node's answer (`items` are added to the responses)."""
        request = self._requests.get(rid)
        if request is None:
            return
        request.answered += 1
        request.responses.extend(items)
        if request.answered >= request.expected and not request.future.done():
            request.future.set_result(None)

    async def wait(self, rid: str, timeout: float, what: str) -> list[Any]:
        """The responses once every expected node answered; ClusterTimeoutError (carrying the
        partial responses) after `timeout` seconds."""
        request = self._requests[rid]
        try:
            await asyncio.wait_for(asyncio.shield(request.future), timeout)
        except asyncio.TimeoutError:
            if self._on_timeout is not None:
                self._on_timeout()
            raise ClusterTimeoutError(
                f"{what}: {request.answered} of {request.expected} nodes answered within {timeout:g}s",
                list(request.responses),
            ) from None
        finally:
            self._requests.pop(rid, None)
        return request.responses
