"""Drift semantics on crafted recorded/live pairs (docs/design.md, "Drift (verify)"; issue 4)."""

from __future__ import annotations

import base64
import json
import multiprocessing
import struct
from pathlib import Path

import pytest

from seedtape.drift import log as drift_log
from seedtape.drift.compare import (
    EMBEDDING_MIN_COSINE,
    FLAG_ORDER,
    DriftResult,
    classify,
    compare,
    parse_ignore_path,
    remove_path,
)
from seedtape.drift.worddiff import sides, trim_ops, word_diff
from tests.drift._episodes import (
    STORY_A,
    STORY_B,
    STORY_FIRST_DIVERGENCE,
    chat_body,
    chat_episode,
    context,
    episode,
    pieces_of,
    stream_episode,
    tool_call,
)

# --------------------------------------------------------------------------- classes


def test_identical() -> None:
    result = compare(chat_episode(), chat_episode())
    assert result.flags == []
    assert result.drift_class == "identical"
    assert result.header == "none"
    assert result.similarity == 1.0
    assert result.first_divergence is None and result.diff is None and result.choices == []


def test_volatile_fields_and_usage_are_reported_not_flagged() -> None:
    recorded = chat_episode(
        response_id="chatcmpl-old", created=1, usage={"prompt_tokens": 27, "completion_tokens": 80, "total_tokens": 107}
    )
    live = chat_episode(response_id="chatcmpl-new", created=2, usage={"prompt_tokens": 27, "completion_tokens": 95, "total_tokens": 122})
    result = compare(recorded, live)
    assert result.flags == [] and result.drift_class == "identical"
    assert result.usage["recorded"]["completion_tokens"] == 80
    assert result.usage["live"]["completion_tokens"] == 95
    assert result.usage["delta"] == {"completion_tokens": 15, "prompt_tokens": 0, "total_tokens": 15}


def test_fingerprint_only() -> None:
    result = compare(chat_episode(fingerprint="fp_old"), chat_episode(fingerprint="fp_new"))
    assert result.flags == ["fingerprint"]
    assert result.drift_class == "fingerprint-only"
    assert result.fingerprint == {"recorded": "fp_old", "live": "fp_new", "status": "changed"}
    assert result.header == "fingerprint"


def test_fingerprint_gone_live_is_drift() -> None:
    result = compare(chat_episode(fingerprint="fp_old"), chat_episode(fingerprint=None))
    assert result.flags == ["fingerprint"]
    assert result.fingerprint["status"] == "changed"


def test_content_drift_same_fingerprint_reports_word_diff() -> None:
    result = compare(chat_episode(STORY_A), chat_episode(STORY_B))
    assert result.flags == ["content"]
    assert result.drift_class == "content-same-fingerprint"
    assert result.fingerprint["status"] == "same"
    assert result.first_divergence == STORY_FIRST_DIVERGENCE
    assert 0 < result.similarity < 1
    assert result.diff is not None
    # In order, as difflib's word diff in the seed notebook shows them.
    assert result.diff["removed"][:5] == ["but", "it", "was", "guarded", "by"]
    assert result.diff["added"][:5] == ["which", "he", "decided", "to", "keep"]
    recorded_text, live_text = sides(result.diff["ops"])
    assert recorded_text == " ".join(STORY_A.split()) and live_text == " ".join(STORY_B.split())
    assert result.choices[0]["index"] == 0
    assert result.choices[0]["content"]["first_divergence"] == STORY_FIRST_DIVERGENCE


def test_content_drift_new_fingerprint() -> None:
    result = compare(chat_episode(STORY_A, fingerprint="fp_old"), chat_episode(STORY_B, fingerprint="fp_new"))
    assert result.flags == ["content", "fingerprint"]
    assert result.drift_class == "content-new-fingerprint"
    assert result.header == "content,fingerprint"


def test_recorded_without_fingerprint_is_unknown_never_drift() -> None:
    same = compare(chat_episode(fingerprint=None), chat_episode(fingerprint="fp_live"))
    assert same.flags == [] and same.drift_class == "identical"
    assert same.fingerprint == {"recorded": None, "live": "fp_live", "status": "unknown"}
    changed = compare(chat_episode(STORY_A, fingerprint=None), chat_episode(STORY_B, fingerprint=None))
    assert changed.flags == ["content"]
    assert changed.drift_class == "content-same-fingerprint"
    assert changed.fingerprint["status"] == "unknown"


def test_tool_call_argument_change() -> None:
    recorded = chat_episode(None, finish_reason="tool_calls", tool_calls=[tool_call("get_weather", '{"city": "Paris", "unit": "c"}')])
    live = chat_episode(
        None,
        finish_reason="tool_calls",
        tool_calls=[tool_call("get_weather", '{"city": "Lyon", "unit": "c"}', "call_2")],
    )
    result = compare(recorded, live)
    assert result.flags == ["content"]
    change = result.choices[0]["tool_calls"][0]
    assert change["arguments"]["recorded"] == '{"city": "Paris", "unit": "c"}'
    assert change["arguments"]["live"] == '{"city": "Lyon", "unit": "c"}'
    assert "name" not in change
    assert result.diff["removed"] == ['"Paris",'] and result.diff["added"] == ['"Lyon",']


def test_tool_call_arguments_compare_as_json() -> None:
    recorded = chat_episode(None, tool_calls=[tool_call("get_weather", '{"city": "Paris", "unit": "c"}', "call_a")])
    live = chat_episode(None, tool_calls=[tool_call("get_weather", '{"unit":"c","city":"Paris"}', "call_b")])
    assert compare(recorded, live).flags == []


def test_tool_call_name_and_count_change() -> None:
    recorded = chat_episode(None, tool_calls=[tool_call("get_weather", "{}")])
    renamed = compare(recorded, chat_episode(None, tool_calls=[tool_call("get_forecast", "{}")]))
    assert renamed.flags == ["content"]
    assert renamed.choices[0]["tool_calls"][0]["name"] == {"recorded": "get_weather", "live": "get_forecast"}
    more = compare(recorded, chat_episode(None, tool_calls=[tool_call("get_weather", "{}"), tool_call("get_time", "{}", "c2")]))
    assert more.choices[0]["tool_calls"] == [{"index": 1, "missing": "recorded"}]


def test_unparseable_arguments_compare_as_strings() -> None:
    recorded = chat_episode(None, tool_calls=[tool_call("f", '{"a": 1')])
    assert compare(recorded, chat_episode(None, tool_calls=[tool_call("f", '{"a": 1')])).flags == []
    assert compare(recorded, chat_episode(None, tool_calls=[tool_call("f", '{"a":1')])).flags == ["content"]


def test_model_change_only() -> None:
    result = compare(chat_episode(model="gpt-4o-2024-05-13"), chat_episode(model="gpt-4o-2024-08-06"))
    assert result.flags == ["model"]
    assert result.drift_class == "model-only"
    assert result.model == {"recorded": "gpt-4o-2024-05-13", "live": "gpt-4o-2024-08-06"}


def test_flags_keep_documented_order() -> None:
    result = compare(chat_episode(STORY_A, fingerprint="a", model="m1"), chat_episode(STORY_B, fingerprint="b", model="m2"))
    assert result.flags == ["content", "fingerprint", "model"]
    assert result.drift_class == "content-new-fingerprint"
    assert tuple(FLAG_ORDER) == ("content", "variety", "fingerprint", "model", "unrecorded")


def test_finish_reason_change_is_content_drift() -> None:
    result = compare(chat_episode(finish_reason="stop"), chat_episode(finish_reason="length"))
    assert result.flags == ["content"]
    assert result.choices == [{"index": 0, "finish_reason": {"recorded": "stop", "live": "length"}}]
    assert result.similarity == 1.0 and result.first_divergence is None


def test_refusal_change_is_content_drift() -> None:
    result = compare(chat_episode(None, refusal=None), chat_episode(None, refusal="I can't help with that."))
    assert result.flags == ["content"]
    assert result.choices[0]["refusal"]["added"] == ["I", "can't", "help", "with", "that."]


def test_number_of_choices_differs() -> None:
    second = {"index": 1, "finish_reason": "stop", "message": {"role": "assistant", "content": "Another story."}}
    result = compare(chat_episode(), episode(chat_body(extra_choices=[second])))
    assert result.flags == ["content"]
    assert result.choices == [{"index": 1, "missing": "recorded"}]
    assert result.diff["added"] == ["Another", "story."]


def test_null_and_empty_content_are_the_same() -> None:
    assert compare(chat_episode(None), chat_episode("")).flags == []


def test_unrecorded() -> None:
    result = compare(None, chat_episode(fingerprint="fp_live"))
    assert result.flags == ["unrecorded"]
    assert result.drift_class == "unrecorded"
    assert result.fingerprint == {"recorded": None, "live": "fp_live", "status": "unrecorded"}
    assert result.similarity is None


def test_error_body_compared_as_json_without_volatile_fields() -> None:
    error = {"error": {"code": "429", "message": "Rate limit"}, "id": "x"}
    assert compare(episode(error, 429), episode({**error, "id": "y"}, 429)).flags == []
    other = compare(episode(error, 429), episode({"error": {"code": "500", "message": "Oops"}}, 500))
    assert other.flags == ["content"] and other.status == {"recorded": 429, "live": 500}


def test_recorded_answer_live_error_is_content_drift() -> None:
    result = compare(chat_episode(), episode({"error": {"code": "500"}}, 500))
    # An error carries no fingerprint: "recorded had one, live has none" is drift too.
    assert result.flags == ["content", "fingerprint"]
    assert result.choices == [{"index": 0, "missing": "live"}]


# --------------------------------------------------------------------------- streams


def test_streamed_identical_despite_ids_and_obfuscation() -> None:
    recorded = stream_episode(pieces_of(STORY_A), response_id="r1", obfuscation="xyz")
    live = stream_episode(
        pieces_of(STORY_A),
        response_id="r2",
        obfuscation="qqq",
        usage={"prompt_tokens": 27, "completion_tokens": 99, "total_tokens": 126},
    )
    result = compare(recorded, live)
    assert result.flags == []
    assert result.usage["delta"]["completion_tokens"] == 99 - len(pieces_of(STORY_A))


def test_streamed_drift_assembled_from_chunks() -> None:
    result = compare(stream_episode(pieces_of(STORY_A)), stream_episode(pieces_of(STORY_B), fingerprint="fp_other"))
    assert result.flags == ["content", "fingerprint"]
    assert result.first_divergence == STORY_FIRST_DIVERGENCE
    assert result.diff["removed"][:3] == ["but", "it", "was"]


def test_stream_compares_like_body() -> None:
    streamed = compare(stream_episode(pieces_of(STORY_A)), stream_episode(pieces_of(STORY_B)))
    plain = compare(chat_episode(STORY_A), chat_episode(STORY_B))
    assert streamed.flags == plain.flags
    assert streamed.diff == plain.diff
    assert streamed.similarity == plain.similarity


# --------------------------------------------------------------------------- other routes


def _completion(text: str) -> dict:
    return episode(
        {
            "id": "cmpl",
            "object": "text_completion",
            "created": 1,
            "model": "gpt-35-turbo-instruct",
            "choices": [{"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}],
        }
    )


def test_legacy_completion_text() -> None:
    assert compare(_completion("Once upon a time"), _completion("Once upon a time")).flags == []
    result = compare(_completion("Once upon a time"), _completion("Once upon a rhyme"))
    assert result.flags == ["content"] and result.kind == "completion"
    assert result.diff["removed"] == ["time"] and result.diff["added"] == ["rhyme"]


def test_legacy_completion_stream() -> None:
    def stream(parts: list[str]) -> dict:
        events = [
            {
                "ms": i,
                "data": {
                    "id": "c",
                    "object": "text_completion",
                    "created": 1,
                    "model": "m",
                    "choices": [{"index": 0, "text": p, "finish_reason": None}],
                },
            }
            for i, p in enumerate(parts)
        ]
        events.append({"ms": 9, "data": "[DONE]"})
        return {"status": 200, "events": events}

    assert compare(stream(["Once ", "upon"]), stream(["Once", " upon"])).flags == []
    result = compare(stream(["Once ", "upon"]), stream(["Once ", "again"]))
    assert result.flags == ["content"] and result.diff["added"] == ["again"]


def _embedding(vector: list[float] | str) -> dict:
    return episode(
        {
            "object": "list",
            "model": "text-embedding-3-small",
            "data": [{"object": "embedding", "index": 0, "embedding": vector}],
            "usage": {"prompt_tokens": 3, "total_tokens": 3},
        }
    )


def test_embeddings_tolerate_noise_but_flag_other_vectors() -> None:
    base = [0.1, -0.2, 0.3, 0.4]
    assert compare(_embedding(base), _embedding([x + 1e-7 for x in base])).flags == []
    result = compare(_embedding(base), _embedding([0.4, 0.3, -0.2, 0.1]))
    assert result.flags == ["content"] and result.kind == "embedding"
    assert result.choices[0]["cosine"] < EMBEDDING_MIN_COSINE
    assert result.similarity < EMBEDDING_MIN_COSINE
    assert result.diff is None
    assert compare(_embedding(base), _embedding(base[:3])).choices == [{"index": 0, "dimensions": {"recorded": 4, "live": 3}}]


def test_embeddings_in_base64() -> None:
    def b64(values: list[float]) -> str:
        return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()

    assert compare(_embedding(b64([0.1, 0.2, 0.3])), _embedding([0.1, 0.2, 0.3])).flags == []
    assert compare(_embedding(b64([0.1, 0.2, 0.3])), _embedding(b64([0.3, 0.2, -0.1]))).flags == ["content"]


# --------------------------------------------------------------------------- ignore paths


@pytest.mark.parametrize(
    ("path", "segments"),
    [
        ("choices.*.message.content", ("choices", "*", "message", "content")),
        ("$.choices[0].logprobs", ("choices", "0", "logprobs")),
        ("choices[*].finish_reason", ("choices", "*", "finish_reason")),
        ("system_fingerprint", ("system_fingerprint",)),
        ("$.model", ("model",)),
    ],
)
def test_parse_ignore_path(path: str, segments: tuple[str, ...]) -> None:
    assert parse_ignore_path(path) == segments


@pytest.mark.parametrize("path", ["", "$", "choices..content", "choices[x].a", "a.", "choices[0"])
def test_parse_ignore_path_rejects(path: str) -> None:
    with pytest.raises(ValueError):
        parse_ignore_path(path)


def test_remove_path_wildcards() -> None:
    doc = {"choices": [{"a": 1, "b": 2}, {"a": 3}], "x": {"y": 1, "z": 2}}
    remove_path(doc, ("choices", "*", "a"))
    remove_path(doc, ("x", "*"))
    assert doc == {"choices": [{"b": 2}, {}], "x": {}}


def test_ignore_paths_remove_fields_before_comparison() -> None:
    recorded = chat_episode(STORY_A, finish_reason="stop", fingerprint="fp_a")
    live = chat_episode(STORY_B, finish_reason="length", fingerprint="fp_b")
    assert compare(recorded, live).flags == ["content", "fingerprint"]
    result = compare(recorded, live, ["choices.*.message.content", "$.choices[0].finish_reason"])
    assert result.flags == ["fingerprint"]
    assert result.ignored_paths == ["choices.*.message.content", "$.choices[0].finish_reason"]
    # Ignoring the fingerprint makes it unknown, never drift.
    assert compare(recorded, live, ["choices.*", "system_fingerprint"]).flags == []


def test_ignore_paths_do_not_touch_the_episodes() -> None:
    recorded, live = chat_episode(STORY_A), chat_episode(STORY_B)
    snapshot = json.dumps([recorded, live], sort_keys=True)
    compare(recorded, live, ["choices.*.message.content"])
    assert json.dumps([recorded, live], sort_keys=True) == snapshot


def test_ignore_paths_apply_to_streams() -> None:
    result = compare(stream_episode(pieces_of(STORY_A)), stream_episode(pieces_of(STORY_B)), ["choices.*.message.content"])
    assert result.flags == []


# --------------------------------------------------------------------------- log entries


def test_log_entry_schema_and_no_credentials() -> None:
    result = compare(chat_episode(STORY_A), chat_episode(STORY_B))
    ctx = context(headers={"api-key": "SECRET-KEY-123"}, authorization="Bearer SECRET-KEY-123")
    ctx["request"]["authorization"] = "Bearer SECRET-KEY-123"
    entry = result.to_log_entry(ctx)
    text = json.dumps(entry)
    assert "SECRET" not in text
    assert set(entry) == {
        "schema", "ts", "cassette", "key", "episode", "mode", "request",
        "flags", "class", "kind", "fingerprint", "model", "usage", "status",
        "similarity", "first_divergence", "diff", "choices", "recorded_at", "ignored_paths", "deterministic",
    }  # fmt: skip
    assert set(entry["request"]) == {
        "api",
        "route",
        "deployment",
        "api_version",
        "model",
        "seed",
        "temperature",
        "deterministic",
        "determinism",
    }
    assert entry["schema"] == "seedtape.drift/1"
    assert entry["class"] == "content-same-fingerprint" and entry["flags"] == ["content"]
    assert entry["cassette"] == "stories" and entry["episode"] == 1 and entry["ts"] == ctx["ts"]
    assert entry["request"]["seed"] == 42
    assert entry["recorded_at"] == "2024-05-20T10:00:00.000000Z"
    assert json.loads(text) == entry


def test_log_entry_without_ts_gets_one() -> None:
    entry = compare(None, chat_episode()).to_log_entry({"cassette": "c", "key": "k"})
    assert entry["ts"].endswith("Z") and entry["request"]["seed"] is None


@pytest.mark.parametrize(
    ("flags", "name"),
    [
        ([], "identical"),
        (["fingerprint"], "fingerprint-only"),
        (["fingerprint", "model"], "fingerprint-only"),
        (["model"], "model-only"),
        (["content"], "content-same-fingerprint"),
        (["content", "model"], "content-same-fingerprint"),
        (["content", "fingerprint"], "content-new-fingerprint"),
        (["unrecorded"], "unrecorded"),
    ],
)
def test_classify(flags: list[str], name: str) -> None:
    assert classify(flags) == name


def test_result_is_a_drift_result() -> None:
    assert isinstance(compare(chat_episode(), chat_episode()), DriftResult)


# --------------------------------------------------------------------------- word diff


def test_word_diff_matches_seed_notebook_words() -> None:
    """The notebook's Differ output lists these words among the differences."""
    diff = word_diff(STORY_A, STORY_B)
    changed = set(diff.removed) | set(diff.added)
    for word in ["but", "which", "decided", "mischievous", "monkey.", "Little", "enchanting", "seen."]:
        assert word in changed
    assert word_diff(STORY_A, STORY_A).first_divergence is None
    assert word_diff("", "").similarity == 1.0


def test_trim_ops_keeps_context_around_changes() -> None:
    long = " ".join(f"w{i}" for i in range(30))
    ops = [["=", long], ["-", "old"], ["+", "new"], ["=", long], ["-", "x"], ["=", long]]
    trimmed = trim_ops(ops, context=3)
    assert trimmed[0] == ["=", "… w27 w28 w29"]
    assert trimmed[3] == ["=", "w0 w1 w2 … w27 w28 w29"]
    assert trimmed[-1] == ["=", "w0 w1 w2 …"]
    assert trimmed[1:3] == [["-", "old"], ["+", "new"]]
    assert trim_ops([["=", long]]) == [["=", long]]


# --------------------------------------------------------------------------- drift log


def test_drift_log_append_and_read(tmp_path: Path) -> None:
    log = tmp_path / "sub" / "drift.jsonl"
    assert drift_log.read(log) == []
    first = compare(chat_episode(STORY_A), chat_episode(STORY_B)).to_log_entry(context(key_seed=1))
    second = compare(None, chat_episode()).to_log_entry(context(key_seed=2))
    drift_log.append(log, first)
    drift_log.append(log, second)
    lines = log.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    assert drift_log.read(log) == [first, second]


def test_drift_log_tolerates_truncated_last_line(tmp_path: Path) -> None:
    log = tmp_path / "drift.jsonl"
    entry = compare(chat_episode(STORY_A), chat_episode(STORY_B)).to_log_entry(context())
    drift_log.append(log, entry)
    with open(log, "ab") as handle:
        handle.write(drift_log.encode(entry)[:57])
    assert drift_log.read(log) == [entry]


def _append_many(path: str, worker: int, count: int) -> None:
    big = "word " * 20000  # ~100 KB per line: far above PIPE_BUF, so atomicity is really tested
    for i in range(count):
        drift_log.append(path, {"worker": worker, "i": i, "payload": big})


def test_drift_log_concurrent_appends_never_interleave(tmp_path: Path) -> None:
    log = str(tmp_path / "drift.jsonl")
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_append_many, args=(log, w, 25)) for w in range(4)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(60)
        assert process.exitcode == 0
    raw_lines = Path(log).read_bytes().splitlines()
    assert len(raw_lines) == 100
    entries = [json.loads(line) for line in raw_lines]  # every line parses: none interleaved
    assert sorted((e["worker"], e["i"]) for e in entries) == [(w, i) for w in range(4) for i in range(25)]
