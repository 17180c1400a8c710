"""The optional C accelerator of the Socket.IO text codec (_speedups.c), and its switch.

setup.py builds it where a C compiler is found. It handles only the common shapes (an EVENT or
ACK without attachments, JSON that orjson writes as the standard library would) and gives every
other case, errors included, back to packet.py and _json.py, so the results are the same with
and without it. The hot paths read `FAST.decode` and `FAST.frame` (None: pure Python).

FASTAPI_REALTIME_SPEEDUPS=0 in the environment turns it off in a process (=1: on, and an
ImportError if it was not built); use_speedups() switches it at run time.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import Any, Protocol, cast

from . import _json
from .packet import _MAX_DIGITS, MAX_ACK_ID, RESERVED_EVENTS, Packet, PacketType


class _Speedups(Protocol):
    def configure(
        self, scan: Callable[[str, int], tuple[Any, int]], packet: type[Packet], event: PacketType,
        ack: PacketType, reserved: frozenset[str], dumps: Callable[..., bytes] | None, option: int,
        max_ack_id: int, max_digits: int, /,
    ) -> None: ...

    def decode(self, text: str, /) -> Packet | None: ...

    def frame(self, head: str, data: Any, ack_id: int | None, /) -> str | None: ...


def _load() -> _Speedups | None:
    try:
        return cast(_Speedups, importlib.import_module(f"{__package__}._speedups"))
    except ImportError:
        return None


_MODULE = _load()


class Accelerator:
    """The accelerated entry points in use; None where the pure Python path runs."""

    __slots__ = ("decode", "frame")

    def __init__(self) -> None:
        # decode(text): the Packet of a common EVENT/ACK text, or None (decode_text decides).
        self.decode: Callable[[str], Packet | None] | None = None
        # frame(head, data, ack_id): head + id + JSON of plain data, or None (encode decides).
        self.frame: Callable[[str, Any, int | None], str | None] | None = None


FAST = Accelerator()
_enabled = _MODULE is not None
ENV_SWITCH = "FASTAPI_REALTIME_SPEEDUPS"


def available() -> bool:
    """Whether the C accelerator was built for this interpreter."""
    return _MODULE is not None


def enabled() -> bool:
    """Whether the C accelerator is in use."""
    return _enabled


def use_speedups(enabled: bool | None = None) -> bool:
    """Turn the C accelerator on (True; ImportError if it was not built), off (False), or on
    where it was built (None, the default). Returns whether it is now in use."""
    global _enabled
    if enabled is True and _MODULE is None:
        raise ImportError(
            "fastapi_realtime.socketio._speedups was not built (no C compiler when the package was installed)"
        )
    _enabled = _MODULE is not None if enabled is None else bool(enabled)
    _refresh()
    return _enabled


def _refresh() -> None:
    module = _MODULE if _enabled else None
    if module is None:
        FAST.decode = FAST.frame = None
        return
    orjson = _json.active_orjson()
    module.configure(
        _json.scan, Packet, PacketType.EVENT, PacketType.ACK, RESERVED_EVENTS,
        None if orjson is None else orjson.dumps, _json.options(), MAX_ACK_ID, _MAX_DIGITS,
    )
    FAST.decode = module.decode
    # Only orjson's output is trusted as is (after the checks _json.dumps makes).
    FAST.frame = None if orjson is None else module.frame


def _from_environment() -> bool | None:
    value = os.environ.get(ENV_SWITCH, "")
    if value not in ("", "0", "1"):
        raise ValueError(f"{ENV_SWITCH}={value!r}: 0 (off), 1 (on) or unset (on where built)")
    return None if value == "" else value == "1"


_json.on_backend_change(_refresh)
use_speedups(_from_environment())
