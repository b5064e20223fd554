"""Key v1: what makes two requests the same recording, and what does not."""

from __future__ import annotations

import hashlib
import json

import pytest

from seedtape.key import canonical_body, canonical_json, make_key
from seedtape.routes import Target

AZURE = Target("azure", "chat/completions", "gpt-4", "2024-02-01")
BODY = {"model": "gpt-4", "messages": [{"role": "user", "content": "Create a story about red panda."}], "temperature": 0.1, "seed": 42}


def test_key_is_sha256_of_the_documented_material() -> None:
    material = {
        "v": 1,
        "api": "azure",
        "route": "chat/completions",
        "deployment": "gpt-4",
        "api_version": "2024-02-01",
        "body": canonical_body(BODY),
    }
    expected = hashlib.sha256(json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()
    assert make_key(AZURE, BODY) == expected


def test_key_order_does_not_matter_at_any_depth() -> None:
    shuffled = {
        "seed": 42,
        "temperature": 0.1,
        "messages": [{"content": "Create a story about red panda.", "role": "user"}],
        "model": "gpt-4",
    }
    assert make_key(AZURE, shuffled) == make_key(AZURE, BODY)


def test_top_level_null_equals_absent() -> None:
    assert make_key(AZURE, {**BODY, "user": None, "max_tokens": None}) == make_key(AZURE, BODY)
    no_seed = {k: v for k, v in BODY.items() if k != "seed"}
    assert make_key(AZURE, {**no_seed, "seed": None}) == make_key(AZURE, no_seed)


def test_nested_null_is_kept() -> None:
    nested = {**BODY, "response_format": {"type": "json_object", "schema": None}}
    assert make_key(AZURE, nested) != make_key(AZURE, {**BODY, "response_format": {"type": "json_object"}})


def test_integral_floats_equal_ints() -> None:
    assert make_key(AZURE, {**BODY, "temperature": 0.0}) == make_key(AZURE, {**BODY, "temperature": 0})
    assert make_key(AZURE, {**BODY, "max_tokens": 50.0}) == make_key(AZURE, {**BODY, "max_tokens": 50})
    assert make_key(AZURE, {**BODY, "temperature": 0.1}) != make_key(AZURE, {**BODY, "temperature": 0.2})


def test_unicode_is_utf8_not_escaped() -> None:
    text = {"model": "gpt-4", "messages": [{"role": "user", "content": "Crea una storia sul panda rosso 🐼"}]}
    assert "🐼" in canonical_json(canonical_body(text))
    escaped = json.loads(json.dumps(text, ensure_ascii=True))
    assert make_key(AZURE, escaped) == make_key(AZURE, text)


@pytest.mark.parametrize("field,value", [("seed", 7), ("temperature", 0.7), ("stream", True), ("max_tokens", 51), ("model", "gpt-35")])
def test_any_body_field_changes_the_key(field: str, value: object) -> None:
    assert make_key(AZURE, {**BODY, field: value}) != make_key(AZURE, BODY)


def test_seed_is_in_the_key() -> None:
    no_seed = {k: v for k, v in BODY.items() if k != "seed"}
    assert make_key(AZURE, no_seed) != make_key(AZURE, BODY)


def test_route_shape_deployment_and_api_version_are_in_the_key() -> None:
    keys = {
        make_key(AZURE, BODY),
        make_key(Target("azure", "chat/completions", "gpt-4", "2024-06-01"), BODY),
        make_key(Target("azure", "chat/completions", "gpt-35", "2024-02-01"), BODY),
        make_key(Target("azure-v1", "chat/completions"), BODY),
        make_key(Target("openai", "chat/completions"), BODY),
        make_key(Target("openai", "completions"), BODY),
    }
    assert len(keys) == 6


def test_ignored_fields_leave_the_key() -> None:
    assert make_key(AZURE, {**BODY, "user": "alice"}, ignore_fields=["user"]) == make_key(
        AZURE, {**BODY, "user": "bob"}, ignore_fields=["user"]
    )


def test_partition_changes_the_key_only_when_set() -> None:
    assert make_key(AZURE, BODY, partition="") == make_key(AZURE, BODY)
    assert make_key(AZURE, BODY, partition="a") != make_key(AZURE, BODY, partition="b")


def test_committed_demo_cassettes_keep_their_keys() -> None:
    """Key v1 is frozen for chat, embeddings and completions: the committed demo
    recordings (made before API families existed) must be found under the same keys."""
    from pathlib import Path

    from seedtape.cassette import file_name, read_recording
    from seedtape.routes import Target

    folder = Path(__file__).resolve().parents[1] / "cassettes" / "demo"
    files = sorted(folder.glob("*.json"))
    assert len(files) == 5
    for path in files:
        recording = read_recording(path)
        request = recording.request
        target = Target(request["api"], request["route"], request["deployment"], request["api_version"])
        assert make_key(target, request["body"]) == recording.key
        assert path.name == file_name(recording.key)
