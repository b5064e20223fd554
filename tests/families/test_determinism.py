"""Each family's determinism rule, with the reason the drift log and reports show.

One method per family (``determinism``) decides; ``deterministic`` only reads it, so
auto mode's cache and verify's drift/variety split can never disagree.
"""

from __future__ import annotations

from typing import Any

import pytest

from seedtape.families import FAMILIES, Family, match_endpoint

CASES: list[tuple[str, str, dict[str, Any], bool, str]] = [
    ("POST", "chat/completions", {"seed": 42, "temperature": 0.7}, True, "seed"),
    ("POST", "chat/completions", {"seed": 0}, True, "seed"),
    ("POST", "chat/completions", {"temperature": 0}, True, "temperature 0"),
    ("POST", "chat/completions", {"temperature": 0.0, "seed": None}, True, "temperature 0"),
    ("POST", "chat/completions", {"temperature": 0.7}, False, "no seed, temperature 0.7"),
    ("POST", "chat/completions", {}, False, "no seed, temperature unset"),
    ("POST", "completions", {"seed": 1}, True, "seed"),
    ("POST", "embeddings", {"input": "x"}, True, "embeddings: always"),
    ("POST", "moderations", {"input": "x"}, True, "moderations: always"),
    ("POST", "audio/speech", {"input": "x"}, True, "speech: always"),
    ("POST", "images/generations", {"prompt": "x", "seed": 3}, False, "images: never (asking again asks for another image)"),
    ("POST", "responses", {"temperature": 0}, True, "temperature 0"),
    ("POST", "responses", {"temperature": 0.7}, False, "temperature 0.7 (the Responses API has no seed)"),
    ("GET", "responses/resp_1", {}, False, "reads a stored response, whose state changes"),
    ("POST", "audio/transcriptions", {}, True, "temperature unset (the API's default is 0)"),
    ("POST", "audio/transcriptions", {"temperature": "0"}, True, "temperature 0"),
    ("POST", "audio/transcriptions", {"temperature": "0.4"}, False, "temperature 0.4"),
]


@pytest.mark.parametrize(("method", "path", "body", "deterministic", "reason"), CASES)
def test_rule_and_reason(method: str, path: str, body: dict[str, Any], deterministic: bool, reason: str) -> None:
    found = match_endpoint(method, path)
    assert found is not None
    family, endpoint, _ = found
    decided = family.determinism(endpoint, body)
    assert (decided.deterministic, decided.reason) == (deterministic, reason)
    assert family.deterministic(endpoint, body) is deterministic


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_no_family_overrides_deterministic(family: Family) -> None:
    """A family says why in ``determinism``; overriding ``deterministic`` would split the rule."""
    assert type(family).deterministic is Family.deterministic
