"""Polling response compression: the Accept-Encoding choice and the encoded bytes."""

from __future__ import annotations

import gzip
import zlib

import pytest

from fastapi_realtime.engineio.compression import DEFLATE, GZIP, compress, negotiate


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, None),
        ("", None),
        ("identity", None),
        ("br", None),
        ("gzip", GZIP),
        ("deflate", DEFLATE),
        ("gzip, deflate", GZIP),
        ("deflate, gzip", GZIP),  # a tie goes to the server's preference, as Node's `accepts`
        ("gzip;q=0.5, deflate", DEFLATE),
        ("gzip;q=0, deflate;q=0", None),
        ("GZIP", GZIP),
        ("*", GZIP),
        ("*;q=0.2, gzip;q=0", DEFLATE),
        ("gzip; q=0.9 , deflate ; q=1.0", DEFLATE),
        ("gzip;q=abc, deflate", DEFLATE),  # an unreadable weight counts as refusal
        ("gzip;q=7", None),
        (",,, ;", None),
    ],
)
def test_negotiate(accept: str | None, chosen: str | None) -> None:
    assert negotiate(accept) == chosen


@pytest.mark.parametrize("size", [0, 1, 1024, 200_000])
def test_compress_round_trips(size: int) -> None:
    body = (b"4hello \xe2\x82\xac world " * (size // 16 + 1))[:size]
    assert gzip.decompress(compress(body, GZIP)) == body
    assert zlib.decompress(compress(body, DEFLATE)) == body  # the zlib format HTTP calls deflate


def test_compress_shrinks_repetitive_payloads() -> None:
    body = b"42[\"msg\",{\"text\":\"hello\"}]\x1e" * 100
    assert len(compress(body, GZIP)) < len(body) // 5
