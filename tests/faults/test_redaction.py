"""Redaction: what is written is redacted, what is matched is not."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from click.testing import Result

from seedtape.sim.simulator import Simulator
from tests.conftest import OPENAI_KEY, RunningProxy
from tests.faults._helpers import assert_openai_error, cassette_files

CHAT = "/v1/chat/completions"


CARD, MAIL, SSN = "4111-1111-1111-1111", "alice.liddell@example.com", "078-05-1120"
REDACT = {"redact_patterns": (r"\b\d{4}-\d{4}-\d{4}-\d{4}\b", r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "redact_paths": ("user", "metadata.ssn")}


def private_body(card: str = CARD, stream: bool = False) -> dict[str, Any]:
    return {
        "model": "echo",
        "seed": 7,
        "stream": stream,
        "user": MAIL,
        "metadata": {"ssn": SSN, "team": "billing"},
        "messages": [{"role": "user", "content": f"My card is {card}; write to {MAIL}."}],
    }


@pytest.mark.parametrize("stream", [False, True])
def test_redaction_rewrites_what_is_stored_and_matching_still_works(
    stream: bool, proxy_factory: Callable[..., RunningProxy], echo_sim: Simulator
) -> None:
    proxy = proxy_factory(mode="auto", **REDACT)
    auth = {"authorization": f"Bearer {OPENAI_KEY}"}
    live = httpx.post(proxy.url + CHAT, json=private_body(stream=stream), headers=auth)
    assert live.headers["x-seedtape-cache"] == "recorded" and CARD in live.text, "the live answer is the client's own"

    [path] = cassette_files(proxy.settings.cassettes_dir)
    stored = json.loads(path.read_text())
    body = stored["request"]["body"]
    assert body["user"] == "[REDACTED]" and body["metadata"] == {"ssn": "[REDACTED]", "team": "billing"}
    assert body["messages"][0]["content"] == "My card is [REDACTED]; write to [REDACTED]."
    everything = b"".join(p.read_bytes() for p in proxy.settings.cassettes_dir.parent.rglob("*") if p.is_file())
    for secret in (CARD, MAIL, SSN):
        assert secret.encode() not in everything, secret
    assert stored["key"] == live.headers["x-seedtape-key"], "the key is the request as sent"

    again = httpx.post(proxy.url + CHAT, json=private_body(stream=stream), headers=auth)
    assert (again.headers["x-seedtape-cache"], again.headers["x-seedtape-key"]) == ("hit", stored["key"])
    assert CARD not in again.text and "[REDACTED]" in again.text, "a replay serves what was stored"
    other = httpx.post(
        proxy.url + CHAT, json=private_body(card="5500-0000-0000-0004", stream=stream), headers={**auth, "x-seedtape-mode": "replay"}
    )
    assert_openai_error(other, 404, "seedtape_cassette_miss")  # redaction never merges distinct requests
    assert len(echo_sim.received) == echo_sim.calls == 1


def test_verify_compares_redacted_with_redacted(proxy_factory: Callable[..., RunningProxy], echo_sim: Simulator) -> None:
    recorder = proxy_factory(mode="record", **REDACT)
    auth = {"authorization": f"Bearer {OPENAI_KEY}"}
    httpx.post(recorder.url + CHAT, json=private_body(), headers=auth)
    verify = proxy_factory(mode="verify", cache_dir=recorder.settings.cache_dir, **REDACT)
    checked = httpx.post(verify.url + CHAT, json=private_body(), headers=auth)
    assert checked.headers["x-seedtape-drift"] == "none", "a redacted field is not drift"
    log = (recorder.settings.cache_dir / "drift.jsonl").read_text()
    assert json.loads(log)["class"] == "identical" and CARD not in log and MAIL not in log


@pytest.mark.parametrize("args", [["--redact", "(unclosed"], ["--redact-path", "choices[x"]])
def test_a_bad_redaction_rule_fails_at_start_up(args: list[str], serve_cli: Callable[..., tuple[Result, dict[str, Any] | None]]) -> None:
    result, listened = serve_cli(*args)
    assert result.exit_code == 2 and listened is None
    assert "--redact" in result.output
