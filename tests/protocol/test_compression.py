"""Polling responses are compressed as Node's engine.io does it (httpCompression, threshold 1 KB)."""

from __future__ import annotations

import gzip
import zlib
from typing import Any

import httpx
import pytest

from fastapi_realtime import Realtime, Socket

from . import SEP, Polling, http_client, run_async

pytestmark = pytest.mark.timeout(15)

EIO = "/engine.io/"
BIG = "x" * 3000  # past the 1024-byte threshold, and very compressible


async def _echoed(client: httpx.AsyncClient, base: str, message: str, accept: str | None) -> httpx.Response:
    """The conformance server echoes messages: send one, and GET it back raw (not decoded)."""
    polling = Polling(client, base, EIO)
    await polling.handshake()
    await polling.send("4" + message)
    headers = {"accept-encoding": accept} if accept is not None else {"accept-encoding": ""}
    request = client.build_request("GET", polling.url, params=polling._params(), headers=headers)
    response = await client.send(request, stream=True)
    await response.aread()
    return response


@pytest.mark.parametrize(("accept", "coding"), [("gzip, deflate", "gzip"), ("deflate", "deflate"), ("gzip;q=0.1, deflate", "deflate")])
@run_async
async def test_large_response_compressed(conformance_url: str, accept: str, coding: str) -> None:
    async with http_client() as client:
        response = await _echoed(client, conformance_url, BIG, accept)
        assert response.status_code == 200
        assert response.headers["content-encoding"] == coding
        assert response.text == "4" + BIG  # httpx decodes it
        # What went over the wire is the compressed body, and its length is the header's.
        assert int(response.headers["content-length"]) == response.num_bytes_downloaded < 200


@pytest.mark.parametrize("accept", [None, "identity", "br", "gzip;q=0, deflate;q=0"])
@run_async
async def test_not_compressed_for_a_client_that_does_not_accept_it(conformance_url: str, accept: str | None) -> None:
    async with http_client() as client:
        response = await _echoed(client, conformance_url, BIG, accept)
        assert "content-encoding" not in response.headers
        assert response.text == "4" + BIG
        assert response.num_bytes_downloaded == len(BIG) + 1


@run_async
async def test_small_response_not_compressed(conformance_url: str) -> None:
    async with http_client() as client:
        response = await _echoed(client, conformance_url, "y" * 900, "gzip, deflate")
        assert "content-encoding" not in response.headers
        assert response.text == "4" + "y" * 900


@run_async
async def test_compressed_payload_of_several_packets(conformance_url: str) -> None:
    """Several queued packets share one compressed body; decoding it by hand gives the payload."""
    async with http_client() as client:
        polling = Polling(client, conformance_url, EIO)
        await polling.handshake()
        await polling.send(SEP.join(["4" + "a" * 700, "4" + "b" * 700]))
        async with client.stream("GET", polling.url, params=polling._params(), headers={"accept-encoding": "gzip"}) as response:
            wire = b"".join([chunk async for chunk in response.aiter_raw()])
        assert response.headers["content-encoding"] == "gzip"
        assert gzip.decompress(wire).decode() == SEP.join(["4" + "a" * 700, "4" + "b" * 700])
        await polling.send("4" + "c" * 2000)
        async with client.stream("GET", polling.url, params=polling._params(), headers={"accept-encoding": "deflate"}) as response:
            wire = b"".join([chunk async for chunk in response.aiter_raw()])
        assert response.headers["content-encoding"] == "deflate"
        assert zlib.decompress(wire).decode() == "4" + "c" * 2000


@pytest.mark.parametrize(("settings", "compressed"), [({"http_compression": False}, False), ({"http_compression_threshold": 5000}, False), ({"http_compression_threshold": 100}, True)])
@run_async
async def test_compression_settings(settings: dict[str, Any], compressed: bool) -> None:
    rt = Realtime(**settings)

    @rt.on("big")
    async def big(socket: Socket) -> str:
        return "z" * 3000

    transport = httpx.ASGITransport(app=rt)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        polling = Polling(client, "http://test", "/socket.io/")
        await polling.handshake()
        await polling.send("40")
        assert (await polling.packets(1))[0].startswith("40")
        await polling.send('421["big"]')
        response = await polling.get()
        assert response.text == '431["' + "z" * 3000 + '"]'
        assert ("content-encoding" in response.headers) is compressed


@run_async
async def test_large_body_compressed_off_the_loop(conformance_url: str) -> None:
    """A body past COMPRESS_IN_THREAD (64 KB) is compressed in a worker thread: same bytes out."""
    message = "".join(f"{i:06d}," for i in range(15_000))  # 105 KB, not trivially repetitive
    async with http_client() as client:
        response = await _echoed(client, conformance_url, message, "gzip")
        assert response.headers["content-encoding"] == "gzip"
        assert response.text == "4" + message
        assert response.num_bytes_downloaded < len(message) // 2
