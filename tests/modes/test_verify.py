"""Verify mode through the real proxy and SDK: drift headers, the drift log, --update (issue 4)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from click.testing import CliRunner

from client_shim import azure_client
from seedtape.cli import main
from seedtape.drift import log as drift_log
from tests.conftest import AZURE_KEY, RunningProxy, scan_for_secrets

PANDA = [
    {"role": "system", "content": "You always produce 3-sentence answers."},
    {"role": "user", "content": "Create a story about red panda."},
]


def ask(client: openai.AzureOpenAI, **params: Any) -> tuple[str, httpx.Headers]:
    params.setdefault("model", "gpt-4")
    params.setdefault("messages", PANDA)
    if params.get("stream"):
        raw = client.chat.completions.with_raw_response.create(**params)
        text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
        return text, raw.headers
    raw = client.chat.completions.with_raw_response.create(**params)
    return raw.parse().choices[0].message.content or "", raw.headers


def entries(proxy: RunningProxy) -> list[dict[str, Any]]:
    return drift_log.read(proxy.settings.cache_dir / "drift.jsonl")


@pytest.fixture
def recorded(proxy_factory: Callable[..., RunningProxy]) -> RunningProxy:
    """A cassette with a seeded answer, a streamed one and an unseeded one."""
    recorder = proxy_factory(mode="record")
    client = azure_client(recorder.url, api_key=AZURE_KEY)
    ask(client, seed=42, temperature=0.7)
    ask(client, seed=42, temperature=0.7, stream=True)
    return recorder


def verifier(proxy_factory: Callable[..., RunningProxy], recorded: RunningProxy, **options: Any) -> RunningProxy:
    return proxy_factory(mode="verify", cassettes_dir=recorded.settings.cassettes_dir, **options)


def test_identical_when_nothing_moved(proxy_factory: Callable[..., RunningProxy], recorded: RunningProxy, sim: Any) -> None:
    proxy = verifier(proxy_factory, recorded)
    client = azure_client(proxy.url, api_key=AZURE_KEY)
    _, headers = ask(client, seed=42, temperature=0.7)
    _, stream_headers = ask(client, seed=42, temperature=0.7, stream=True)
    assert (headers["x-seedtape-cache"], headers["x-seedtape-drift"], headers["x-seedtape-episode"]) == ("verified", "none", "1")
    assert stream_headers["x-seedtape-drift"] == "none"
    assert [e["class"] for e in entries(proxy)] == ["identical", "identical"]
    assert sim.calls == 4  # verify always asks upstream


def test_new_fingerprint_with_new_content(proxy_factory: Callable[..., RunningProxy], recorded: RunningProxy, sim: Any) -> None:
    old = sim.config.fingerprint
    new = sim.rotate_fingerprint()
    proxy = verifier(proxy_factory, recorded)
    client = azure_client(proxy.url, api_key=AZURE_KEY)
    _, headers = ask(client, seed=42, temperature=0.7)
    _, stream_headers = ask(client, seed=42, temperature=0.7, stream=True)
    assert headers["x-seedtape-drift"] == "content,fingerprint"
    assert stream_headers["x-seedtape-drift"] == "content,fingerprint", "streams are assembled and compared the same way"
    first, second = entries(proxy)
    assert first["class"] == second["class"] == "content-new-fingerprint"
    assert first["fingerprint"] == {"recorded": old, "live": new, "status": "changed"}
    assert 0 < first["similarity"] < 1 and first["first_divergence"] > 0
    assert first["diff"]["removed"] or first["diff"]["added"]


def test_almost_always_content_drift_with_same_fingerprint(
    proxy_factory: Callable[..., RunningProxy], recorded: RunningProxy, sim: Any
) -> None:
    sim.config.seed_drift = 1.0
    proxy = verifier(proxy_factory, recorded)
    _, headers = ask(azure_client(proxy.url, api_key=AZURE_KEY), seed=42, temperature=0.7)
    assert headers["x-seedtape-drift"] == "content"
    [entry] = entries(proxy)
    assert entry["class"] == "content-same-fingerprint" and entry["fingerprint"]["status"] == "same"


def test_fingerprint_only(proxy_factory: Callable[..., RunningProxy], recorded: RunningProxy) -> None:
    for path in (recorded.settings.cassettes_dir / "default").glob("*.json"):
        data = json.loads(path.read_text())
        if "body" in data["episodes"][0]:
            data["episodes"][0]["body"]["system_fingerprint"] = "fp_recorded_long_ago"
            data["episodes"][0]["system_fingerprint"] = "fp_recorded_long_ago"
            path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    proxy = verifier(proxy_factory, recorded)
    _, headers = ask(azure_client(proxy.url, api_key=AZURE_KEY), seed=42, temperature=0.7)
    assert headers["x-seedtape-drift"] == "fingerprint"
    assert entries(proxy)[0]["class"] == "fingerprint-only"


def test_missing_fingerprint_is_unknown_not_drift(proxy_factory: Callable[..., RunningProxy], sim: Any) -> None:
    sim.config.omit_fingerprint = True
    recorder = proxy_factory(mode="record")
    ask(azure_client(recorder.url, api_key=AZURE_KEY), seed=1)
    sim.config.omit_fingerprint = False
    proxy = proxy_factory(mode="verify", cassettes_dir=recorder.settings.cassettes_dir)
    _, headers = ask(azure_client(proxy.url, api_key=AZURE_KEY), seed=1)
    assert "fingerprint" not in headers["x-seedtape-drift"]
    assert entries(proxy)[0]["fingerprint"]["status"] == "unknown"


def test_unrecorded_is_flagged(proxy_factory: Callable[..., RunningProxy], recorded: RunningProxy) -> None:
    proxy = verifier(proxy_factory, recorded)
    text, headers = ask(azure_client(proxy.url, api_key=AZURE_KEY), seed=777)
    assert text and headers["x-seedtape-drift"] == "unrecorded"
    assert entries(proxy)[0]["class"] == "unrecorded"
    assert len(list((recorded.settings.cassettes_dir / "default").glob("*.json"))) == 2, "verify writes no cassette"


def test_verify_serve_recorded_keeps_the_suite_stable(proxy_factory: Callable[..., RunningProxy], recorded: RunningProxy, sim: Any) -> None:
    replay = proxy_factory(mode="replay", cassettes_dir=recorded.settings.cassettes_dir, upstream="http://127.0.0.1:9")
    original, _ = ask(azure_client(replay.url), seed=42, temperature=0.7)
    sim.rotate_fingerprint()
    live = verifier(proxy_factory, recorded)
    live_text, _ = ask(azure_client(live.url, api_key=AZURE_KEY), seed=42, temperature=0.7)
    stable = verifier(proxy_factory, recorded, verify_serve="recorded")
    served, headers = ask(azure_client(stable.url, api_key=AZURE_KEY), seed=42, temperature=0.7)
    assert live_text != original and served == original
    assert headers["x-seedtape-drift"] == "content,fingerprint"


def test_update_rerecords_only_drifted_episodes(proxy_factory: Callable[..., RunningProxy], recorded: RunningProxy, sim: Any) -> None:
    files = {p: p.read_bytes() for p in (recorded.settings.cassettes_dir / "default").glob("*.json")}
    sim.config.seed_drift = 1.0  # seeded answers now drift; streams were recorded too
    proxy = verifier(proxy_factory, recorded, update=True)
    client = azure_client(proxy.url, api_key=AZURE_KEY)
    _, headers = ask(client, seed=42, temperature=0.7)
    assert headers["x-seedtape-cache"] == "recorded" and headers["x-seedtape-drift"] == "content"
    sim.config.seed_drift = 0.0
    _, stream_headers = ask(client, seed=42, temperature=0.7, stream=True)
    assert stream_headers["x-seedtape-drift"] == "none" and stream_headers["x-seedtape-cache"] == "verified"
    changed = [p for p, before in files.items() if p.read_bytes() != before]
    assert len(changed) == 1 and "body" in json.loads(changed[0].read_text())["episodes"][0]


def test_ignore_path_hides_a_field(proxy_factory: Callable[..., RunningProxy], recorded: RunningProxy, sim: Any) -> None:
    sim.config.seed_drift = 1.0
    proxy = verifier(proxy_factory, recorded, ignore_paths=("choices.*.message.content",))
    _, headers = ask(azure_client(proxy.url, api_key=AZURE_KEY), seed=42, temperature=0.7)
    assert headers["x-seedtape-drift"] == "none"


def test_report_cli_reads_the_log_and_fails_on_rules(
    proxy_factory: Callable[..., RunningProxy], recorded: RunningProxy, sim: Any, tmp_path: Path
) -> None:
    sim.rotate_fingerprint()
    proxy = verifier(proxy_factory, recorded)
    client = azure_client(proxy.url, api_key=AZURE_KEY)
    ask(client, seed=42, temperature=0.7)
    ask(client, seed=42, temperature=0.7, stream=True)
    cache = str(proxy.settings.cache_dir)
    runner = CliRunner()
    table = runner.invoke(main, ["report", "--cache-dir", cache])
    assert (
        table.exit_code == 0
        and "2 of 2 requests meant to repeat drifted" in table.output
        and "content drift, new fingerprint" in table.output
    )
    failing = runner.invoke(main, ["report", "--cache-dir", cache, "--fail-on", "fingerprint"])
    assert failing.exit_code == 1
    out = tmp_path / "drift.json"
    assert runner.invoke(main, ["report", "--cache-dir", cache, "--format", "json", "-o", str(out)]).exit_code == 0
    assert len(json.loads(out.read_text())["entries"]) == 2
    assert scan_for_secrets(proxy.settings.cache_dir) == [] and scan_for_secrets(tmp_path) == []


def _age_cassette(folder: Path, days: float) -> None:
    old = (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    for path in folder.glob("*.json"):
        data = json.loads(path.read_text())
        for episode in data["episodes"]:
            episode["recorded_at"] = old
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def test_max_age_warn_fail_rerecord(proxy_factory: Callable[..., RunningProxy], recorded: RunningProxy, sim: Any) -> None:
    folder = recorded.settings.cassettes_dir / "default"
    _age_cassette(folder, 40)
    common = {"cassettes_dir": recorded.settings.cassettes_dir, "max_age_days": 30}

    warn = proxy_factory(mode="replay", upstream="http://127.0.0.1:9", **common)
    _, headers = ask(azure_client(warn.url), seed=42, temperature=0.7)
    assert headers["x-seedtape-cache"] == "hit" and float(headers["x-seedtape-expired"]) >= 40

    fail = proxy_factory(mode="replay", upstream="http://127.0.0.1:9", on_expired="fail", **common)
    with pytest.raises(openai.APIStatusError) as caught:
        ask(azure_client(fail.url, max_retries=0), seed=42, temperature=0.7)
    assert caught.value.status_code == 410 and "days old" in caught.value.message

    calls = sim.calls
    refresh = proxy_factory(mode="auto", on_expired="rerecord", **common)
    _, headers = ask(azure_client(refresh.url, api_key=AZURE_KEY), seed=42, temperature=0.7)
    assert headers["x-seedtape-cache"] == "recorded" and sim.calls == calls + 1
    _, headers = ask(azure_client(refresh.url, api_key=AZURE_KEY, session="next"), seed=42, temperature=0.7)
    assert headers["x-seedtape-cache"] == "hit", "the re-recorded episode is fresh"
