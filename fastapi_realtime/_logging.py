"""Log lines that clients can cause, rate-limited so a hostile client cannot flood the log."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class RateLimitedLog:
    """At most one record per `interval` seconds; the next one says how many were held back."""

    __slots__ = ("logger", "level", "interval", "clock", "_next", "_suppressed")

    def __init__(
        self,
        logger: logging.Logger,
        level: int,
        *,
        interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.level = level
        self.interval = interval
        self.clock = clock
        self._next = float("-inf")
        self._suppressed = 0

    def __call__(self, message: str, *args: object) -> None:
        if not self.logger.isEnabledFor(self.level):
            return
        now = self.clock()
        if now < self._next:
            self._suppressed += 1
            return
        self._next = now + self.interval
        suppressed, self._suppressed = self._suppressed, 0
        if suppressed:
            message += " (%d similar messages suppressed in the last %.0fs)"
            args = (*args, suppressed, self.interval)
        self.logger.log(self.level, message, *args)


def follow_server_logging() -> None:
    """Send this package's records where uvicorn sends its own, at uvicorn's `--log-level`.

    Only when nobody configured logging: no handler on the root logger and none (and no level)
    on `fastapi_realtime`. Otherwise the user's configuration decides, as usual.
    """
    ours = logging.getLogger("fastapi_realtime")
    if ours.handlers or ours.level != logging.NOTSET or logging.getLogger().handlers:
        return
    handlers = logging.getLogger("uvicorn").handlers
    if not handlers:
        return  # not under uvicorn's default logging
    ours.setLevel(logging.getLogger("uvicorn.error").getEffectiveLevel())
    for handler in handlers:
        ours.addHandler(handler)
