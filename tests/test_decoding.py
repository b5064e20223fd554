"""recorder.decoded: upstream bodies inflated a megabyte at a time, as httpx would decode them."""

from __future__ import annotations

import gzip
import zlib

import httpx
import pytest

from seedtape.recorder import DECODE_STEP, decoded

BODY = b'{"text": "' + b"red panda " * 300_000 + b'"}'  # 3 MB: several steps


def raw_response(content: bytes, encoding: str) -> httpx.Response:
    chunks = [content[i : i + 65536] for i in range(0, len(content), 65536)]

    class Stream(httpx.AsyncByteStream):
        async def __aiter__(self):  # type: ignore[no-untyped-def]
            for chunk in chunks:
                yield chunk

    return httpx.Response(200, headers={"content-encoding": encoding} if encoding else {}, stream=Stream())


async def collect(response: httpx.Response) -> list[bytes]:
    return [piece async for piece in decoded(response)]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("", lambda b: b),
        ("identity", lambda b: b),
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),  # zlib-wrapped, as the RFC says
        ("deflate", lambda b: zlib.compress(b)[2:-4]),  # raw deflate, as some servers send
    ],
)
async def test_decoded_equals_the_body_in_bounded_pieces(encoding: str, encode: object) -> None:
    pieces = await collect(raw_response(encode(BODY), encoding))  # type: ignore[operator]
    assert b"".join(pieces) == BODY
    assert max(len(p) for p in pieces) <= DECODE_STEP


@pytest.mark.anyio
async def test_a_broken_gzip_body_is_a_decoding_error() -> None:
    with pytest.raises(httpx.DecodingError):
        await collect(raw_response(b"\x1f\x8b" + b"not gzip at all" * 10, "gzip"))


@pytest.mark.anyio
async def test_a_response_built_whole_is_passed_as_it_is() -> None:
    assert await collect(httpx.Response(200, json={"a": 1})) == [b'{"a":1}']
