"""Family.stream_fingerprint: what ``fingerprint(assemble(events))`` gives, without the
assembly where a family can say it cheaply (a long stream is saved while its client
waits). Checked for every family on generated streams."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from seedtape.families import FAMILIES
from seedtape.sse import DONE

fingerprints = st.one_of(st.none(), st.just(""), st.sampled_from(["fp_a", "fp_b"]), st.integers(0, 3))
chunk = st.fixed_dictionaries(
    {
        "object": st.just("chat.completion.chunk"),
        "choices": st.just([{"index": 0, "delta": {"content": "red "}, "text": "panda "}]),
    },
    optional={"system_fingerprint": fingerprints, "id": st.just("chatcmpl-1"), "type": st.just("response.output_text.delta")},
)
streams = st.lists(st.one_of(chunk, st.just(DONE), st.just("not json")), max_size=12)


@given(events=streams)
@settings(max_examples=300, deadline=None)
def test_every_family_says_what_the_assembled_stream_says(events: list[Any]) -> None:
    for family in FAMILIES:
        assert family.stream_fingerprint(events) == family.fingerprint(family.assemble(events)), family.name


def test_the_last_chunk_naming_a_fingerprint_wins_for_chat() -> None:
    [chat] = [f for f in FAMILIES if f.name == "chat"]
    events = [{"system_fingerprint": "fp_old"}, {"system_fingerprint": ""}, {"system_fingerprint": "fp_new"}, {"choices": []}, DONE]
    assert chat.stream_fingerprint(events) == "fp_new"
