"""Verify separates variety from drift (issue 14), through the real proxy and SDK.

A cassette holds requests meant to repeat (``seed`` set, or ``temperature`` 0) and
requests that are not (no seed, temperature above 0). Verify runs against the simulator
with its drift knobs; each run's drift log gives exact class counts, the report's exit
code under ``--fail-on``, and every format names each request's seed and temperature.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from click.testing import CliRunner

from client_shim import azure_client
from seedtape.cli import main
from seedtape.drift import log as drift_log
from seedtape.sim.simulator import Simulator
from tests.conftest import AZURE_KEY, RunningProxy
from tests.modes.test_verify import ask

UNIVERSE = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Tell me a story about how the universe began?"},
]
SEEDED: list[dict[str, Any]] = [
    {"seed": 42, "temperature": 0.7},
    {"seed": 7, "temperature": 0.7, "messages": UNIVERSE, "max_tokens": 50},
    {"seed": 42, "temperature": 0.7, "stream": True},
]
GREEDY: list[dict[str, Any]] = [{"temperature": 0}, {"temperature": 0, "messages": UNIVERSE, "max_tokens": 50}]
UNSEEDED: list[dict[str, Any]] = [{"temperature": 0.7}, {"temperature": 0.7}, {"temperature": 1.0, "messages": UNIVERSE}]
NEVER_RECORDED: dict[str, Any] = {"seed": 99, "temperature": 0.7}


@pytest.fixture
def sim(sim: Simulator) -> Simulator:
    """The run's simulator (the proxies' upstream) with a fixed entropy seed: the unseeded
    answers differ from their recordings the same way every run."""
    sim.reseed(14)
    return sim


@pytest.fixture
def cassettes(proxy_factory: Callable[..., RunningProxy], tmp_path: Path) -> Path:
    recorder = proxy_factory(mode="record", cache_dir=tmp_path / "record-cache")
    client = azure_client(recorder.url, api_key=AZURE_KEY)
    for params in SEEDED + GREEDY + UNSEEDED:
        ask(client, **params)
    return recorder.settings.cassettes_dir


def verify_run(proxy_factory: Callable[..., RunningProxy], cassettes: Path, cache: Path) -> tuple[Counter[str], dict[str, Any]]:
    proxy = proxy_factory(mode="verify", cassettes_dir=cassettes, cache_dir=cache)
    client = azure_client(proxy.url, api_key=AZURE_KEY)
    for params in SEEDED + GREEDY + UNSEEDED + [NEVER_RECORDED]:
        ask(client, **params)
    entries = drift_log.read(cache / "drift.jsonl")
    return Counter(e["class"] for e in entries), proxy.engine.coordinator.stats()


def report(cache: Path, *args: str) -> Any:
    return CliRunner().invoke(main, ["report", "--cache-dir", str(cache), *args])


def test_only_unseeded_changed_is_variety_not_drift(
    proxy_factory: Callable[..., RunningProxy], cassettes: Path, sim: Simulator, tmp_path: Path
) -> None:
    cache = tmp_path / "verify-quiet"
    classes, stats = verify_run(proxy_factory, cassettes, cache)
    assert classes == {"identical": 5, "variety": 3, "unrecorded": 1}
    assert (stats["verified"], stats["drifted"], stats["variety"], stats["unrecorded"]) == (9, 0, 3, 1)
    assert report(cache, "--fail-on", "content").exit_code == 0, "unseeded requests changing is not drift"
    assert report(cache, "--fail-on", "variety").exit_code == 1, "but it can be asked for"
    table = report(cache)
    assert table.exit_code == 0 and "0 of 5 requests meant to repeat drifted" in table.output
    assert "3 not (3 of them varied, as asked), 1 unrecorded" in " ".join(table.output.split())


def test_a_seeded_drift_fails_content_and_variety_still_does_not(
    proxy_factory: Callable[..., RunningProxy], cassettes: Path, sim: Simulator, tmp_path: Path
) -> None:
    sim.update_config({"seed_drift": 1.0, "drift_prefix": 10})  # every seeded answer parts after 10 words
    cache = tmp_path / "verify-seed-drift"
    classes, stats = verify_run(proxy_factory, cassettes, cache)
    assert classes == {"content-same-fingerprint": 3, "identical": 2, "variety": 3, "unrecorded": 1}
    assert (stats["drifted"], stats["variety"], stats["unrecorded"]) == (3, 3, 1)
    failing = report(cache, "--fail-on", "content", "--format", "json")
    assert failing.exit_code == 1
    document = json.loads(failing.output)
    failed = [e for e in document["entries"] if e["failed_rules"]]
    assert sorted(e["request"]["seed"] for e in failed) == [7, 42, 42], "only the seeded requests fail"
    assert all(e["request"]["determinism"] == "seed" and e["request"]["temperature"] == 0.7 for e in failed)
    assert document["summary"]["meant_to_repeat"] == 5 and document["summary"]["drifted"] == 3


def test_greedy_drift_and_a_new_fingerprint(
    proxy_factory: Callable[..., RunningProxy], cassettes: Path, sim: Simulator, tmp_path: Path
) -> None:
    sim.update_config({"seed_drift": 1.0, "greedy_drift": 1.0, "drift_prefix": 10})
    sim.rotate_fingerprint("fp_tuesday")
    cache = tmp_path / "verify-new-fp"
    classes, _ = verify_run(proxy_factory, cassettes, cache)
    assert classes == {"content-new-fingerprint": 5, "variety": 3, "unrecorded": 1}
    entries = drift_log.read(cache / "drift.jsonl")
    varied = [e for e in entries if e["class"] == "variety"]
    assert all(e["flags"] == ["variety", "fingerprint"] for e in varied), "the backend change stays visible"
    assert report(cache, "--fail-on", "fingerprint").exit_code == 1


def test_every_format_shows_seed_temperature_and_the_reason(
    proxy_factory: Callable[..., RunningProxy], cassettes: Path, sim: Simulator, tmp_path: Path
) -> None:
    sim.update_config({"seed_drift": 1.0, "drift_prefix": 10})
    cache = tmp_path / "verify-formats"
    verify_run(proxy_factory, cassettes, cache)
    [entry] = [e for e in drift_log.read(cache / "drift.jsonl") if e["request"]["seed"] == 7]
    assert entry["request"] | {"api_version": None} == {
        "api": "azure",
        "route": "chat/completions",
        "deployment": "gpt-4",
        "api_version": None,
        "model": "gpt-4",
        "seed": 7,
        "temperature": 0.7,
        "deterministic": True,
        "determinism": "seed",
    }

    table = " ".join(report(cache, "--fail-on", "content").output.split())  # rich folds long cells
    assert "seed 7, temperature 0.7, meant to repeat: yes (seed)" in table
    assert "no: no seed, temperature 1.0" in table and "yes: temperature 0" not in table  # greedy ones were identical

    junit = tmp_path / "drift.xml"
    report(cache, "--format", "junit", "-o", str(junit))
    cases = ET.parse(junit).getroot().iter("testcase")
    properties = [{p.get("name"): p.get("value") for p in case.iter("property")} for case in cases]
    assert {
        "seed": "7",
        "temperature": "0.7",
        "meant_to_repeat": "yes",
        "determinism": "seed",
        "class": "content-same-fingerprint",
    } in properties
    assert {
        "seed": "-",
        "temperature": "1.0",
        "meant_to_repeat": "no",
        "determinism": "no seed, temperature 1.0",
        "class": "variety",
    } in properties

    page = tmp_path / "drift.html"
    report(cache, "--format", "html", "-o", str(page))
    html = page.read_text()
    assert "seed 7, temperature 0.7, meant to repeat: yes (seed)" in html
    assert 'id="requests"' in html and 'id="variety"' in html and "3 of 5 requests meant to repeat drifted" in html
