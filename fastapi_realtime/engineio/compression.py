"""HTTP compression of polling responses, as Node's engine.io does it (`httpCompression`).

A response body of at least the threshold is compressed with gzip or deflate (zlib format),
whichever the request's Accept-Encoding prefers, gzip winning a tie; a client that accepts
neither gets it as it is.
"""

from __future__ import annotations

import zlib
from typing import Final

GZIP: Final = "gzip"
DEFLATE: Final = "deflate"
DEFAULT_THRESHOLD: Final = 1024  # bytes, Node's default
# zlib's wbits: 16 + 15 writes a gzip member, 15 the zlib format HTTP calls "deflate".
_WBITS: Final = {GZIP: 31, DEFLATE: 15}


def _quality(params: str) -> float:
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                q = float(value.strip())
            except ValueError:
                return 0.0
            return q if 0.0 <= q <= 1.0 else 0.0
    return 1.0


def negotiate(accept_encoding: str | None) -> str | None:
    """The coding to answer with (gzip or deflate), or None for none (RFC 9110 §12.5.3)."""
    if not accept_encoding:
        return None
    weights: dict[str, float] = {}
    for item in accept_encoding.split(","):
        coding, _, params = item.partition(";")
        coding = coding.strip().lower()
        if coding:
            weights[coding] = _quality(params)
    wildcard = weights.get("*", 0.0)
    best: str | None = None
    best_q = 0.0
    for coding in (GZIP, DEFLATE):  # the server's preference decides a tie
        q = weights.get(coding, wildcard)
        if q > best_q:
            best, best_q = coding, q
    return best


def compress(body: bytes, coding: str) -> bytes:
    """`body` in `coding` (one of GZIP, DEFLATE), at zlib's default level as Node uses."""
    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, _WBITS[coding])
    return compressor.compress(body) + compressor.flush()
