"""bigjson: big documents in pieces give exactly what the one-call parser and writer give."""

from __future__ import annotations

import gc
import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seedtape import bigjson
from seedtape.cassette import pretty_json

scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False) | st.text()
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=8), inner, max_size=6),
    max_leaves=40,
)


def orjson_pretty(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n"


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(documents)
def test_loads_equals_json_loads(value: Any) -> None:
    for text in (json.dumps(value), json.dumps(value, indent=2), orjson_pretty(value), " \n" + json.dumps(value) + "\n "):
        assert bigjson.loads(text) == json.loads(text)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(documents)
def test_pretty_equals_the_one_call_layout(value: Any) -> None:
    assert bigjson.pretty(value) == orjson_pretty(value)


def test_a_long_stream_recording_is_written_and_read_in_pieces_identically() -> None:
    event = {"id": "c", "choices": [{"index": 0, "delta": {"content": " word"}, "finish_reason": None}], "empty": {}, "none": []}
    recording = {
        "format": "seedtape/1",
        "key": "k" * 64,
        "request": {"body": {"messages": [{"role": "user", "content": "x"}]}},
        "episodes": [
            {"status": 200, "headers": {}, "events": [{"ms": i, "data": event} for i in range(3 * bigjson.SLICE + 7)]},
            {"status": 200, "body": {"data": [{"embedding": [0.5] * 700, "index": i} for i in range(bigjson.SLICE + 1)]}},
        ],
    }
    text = pretty_json(recording, pieces=True)
    assert text == pretty_json(recording)
    assert bigjson.loads(text) == recording


@pytest.mark.parametrize("text", ["", "{", '{"a":1,}', "[1 2]", '{"a" 1}', '{"a":1} x', "[", '{"a":[1,2', "nul"])
def test_broken_text_raises_like_json_loads(text: str) -> None:
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    with pytest.raises(json.JSONDecodeError):
        bigjson.loads(text)


def test_decode_utf8_in_steps_equals_decode() -> None:
    raw = ("é" * (bigjson.DECODE_STEP + 3)).encode()  # a character cut across two steps
    assert bigjson.decode_utf8(raw) == raw.decode()
    with pytest.raises(UnicodeDecodeError):
        bigjson.decode_utf8(b"a" * bigjson.DECODE_STEP + b"\xff")


def test_quiet_gc_nests_and_restores_the_collector() -> None:
    assert gc.isenabled()
    with bigjson.quiet_gc():
        assert not gc.isenabled()
        with bigjson.quiet_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with bigjson.quiet_gc():
            pass
        assert not gc.isenabled(), "a collector the program turned off stays off"
    finally:
        gc.enable()
