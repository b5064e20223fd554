"""recorder._Events and the relay's framing: an upstream stream parsed a network read
at a time, and passed on as upstream sent it.

httpx-sse's own ``EventSource`` is the reference: however the bytes are cut into
reads, the events (data, name, order) are the ones it parses from the whole body.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence

import httpx
import pytest
from httpx_sse import EventSource
from hypothesis import given, settings
from hypothesis import strategies as st

from seedtape.recorder import Limits, StreamStopped, _Events, _frame
from seedtape.sse import event_data, glance

BODY = (
    b'data: {"id":"c1","choices":[{"delta":{"content":"caf\\u00e9"}}]}\n\n'
    b": a comment line\n\n"
    b"event: response.output_text.delta\r\n"
    b'data: {"type":"response.output_text.delta","delta":"red"}\r\n\r\n'
    b'data: {"part":\ndata: "two lines"}\n\n'
    b"retry: 10\nid: 7\ndata: plain text\n\n"
    b"data: [DONE]\n\n"
)


def stream_response(chunks: Sequence[bytes]) -> httpx.Response:
    class Stream(httpx.AsyncByteStream):
        async def __aiter__(self):  # type: ignore[no-untyped-def]
            for chunk in chunks:
                yield chunk

    return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Stream())


def reference(body: bytes) -> list[tuple[str, str | None]]:
    response = httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)
    return [(sse.data, sse.event if sse.event != "message" else None) for sse in EventSource(response).iter_sse()]


async def read_all(chunks: Sequence[bytes]) -> list[tuple[str, str | None]]:
    source = _Events("http://upstream", stream_response(chunks), 1e12, Limits())
    got = []
    try:
        while (event := await source.next()) is not None:
            (_, text, name), data = event
            assert data == glance(text)
            got.append((text, name))
    finally:
        await source.aclose()
    return got


@pytest.mark.anyio
async def test_events_are_httpx_sses_events_when_read_whole() -> None:
    assert await read_all([BODY]) == reference(BODY)
    assert ('{"part":\n"two lines"}', None) in reference(BODY), "the body has a multi-line event"


@given(cuts=st.lists(st.integers(min_value=1, max_value=len(BODY) - 1), max_size=12, unique=True))
@settings(max_examples=200, deadline=None)
def test_events_are_the_same_however_the_reads_cut_the_bytes(cuts: list[int]) -> None:
    import anyio

    bounds = [0, *sorted(cuts), len(BODY)]
    chunks = [BODY[a:b] for a, b in itertools.pairwise(bounds)]
    assert anyio.run(read_all, chunks) == reference(BODY)


@pytest.mark.anyio
async def test_what_one_read_brought_is_ready_without_waiting() -> None:
    frames = [f'data: {{"n":{n}}}\n\n'.encode() for n in range(10)]
    source = _Events("http://upstream", stream_response([b"".join(frames[:7]), b"".join(frames[7:])]), 1e12, Limits())
    first = await source.next()
    assert first is not None and first[1] == {"n": 0}
    ready = []
    while (event := source.ready()) is not None:
        ready.append(event[1]["n"])
    assert ready == [1, 2, 3, 4, 5, 6], "the rest of the first read, none of the second"
    second = await source.next()
    assert second is not None and second[1] == {"n": 7}
    await source.aclose()


@pytest.mark.anyio
async def test_events_before_the_event_limit_are_passed_on_then_it_stops() -> None:
    frames = b"".join(f'data: {{"n":{n}}}\n\n'.encode() for n in range(10))
    source = _Events("http://upstream", stream_response([frames]), 1e12, Limits(max_events=4))
    got = []
    with pytest.raises(StreamStopped, match="--max-stream-events"):
        while (event := await source.next()) is not None:
            got.append(event[1]["n"])
    assert got == [0, 1, 2, 3]
    await source.aclose()


def test_an_event_is_passed_on_as_upstream_sent_it() -> None:
    text = '{"choices":[{"delta":{"content":"caf\\u00e9"}}],  "n": 1.50}'
    assert _frame((0, text, None)) == b"data: " + text.encode() + b"\n\n"
    named = _frame((0, '{"type":"x"}', "response.created"))
    assert named == b'event: response.created\ndata: {"type":"x"}\n\n'


def test_a_multi_line_event_is_passed_on_as_one_valid_event() -> None:
    text = '{"part":\n"two lines"}'
    framed = _frame((0, text, None))
    assert reference(framed) == [('{"part":"two lines"}', None)]


@pytest.mark.parametrize(
    "text",
    ['{"a": NaN, "b": Infinity}', '{"big": 123456789012345678901234567890}', '{"s": "\\ud800"}', '{"a": 1, "a": 2}', '"x"', "[1.5e300]"],
)
def test_event_data_is_what_the_standard_library_parses(text: str) -> None:
    assert repr(event_data(text)) == repr(json.loads(text))
    if "big" not in text:  # glance reads integers beyond 64 bits as floats
        assert repr(glance(text)) == repr(json.loads(text))


def test_event_data_that_is_not_json_is_kept_as_text() -> None:
    assert event_data("plain text") == "plain text"
    assert event_data("[DONE]") == "[DONE]"
