"""``seedtape probe`` as a measuring instrument (issue 14), on the simulator.

The simulator is told how often an answer meant to repeat parts from the others; the
probe must measure that rate back, in the papers' terms (TARr@N, TARa@N), within a
stated statistical bound. Its history draws reproducibility over time, checked in a
real headless Chromium like the drift report.
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import openai
import pytest
from click.testing import CliRunner

from seedtape.cli import main
from seedtape.commands import probe_report
from seedtape.commands.probe import ArmSpec, json_path_extractor, public_upstream, read_history, regex_extractor, run_probe
from seedtape.serving import serve_in_thread
from seedtape.sim.simulator import SimConfig, create_simulator
from tests.drift.test_report import _png_pixels, chromium
from tests.sim.test_drift_shape import binomial_bounds

ANIMALS = [
    "fox",
    "otter",
    "heron",
    "badger",
    "lynx",
    "marmot",
    "beaver",
    "falcon",
    "walrus",
    "bison",
    "gecko",
    "ibis",
    "koala",
    "lemur",
    "moose",
    "newt",
    "ocelot",
    "puffin",
    "quokka",
    "raven",
    "salmon",
    "tapir",
    "urchin",
    "vole",
    "wombat",
    "yak",
    "zebra",
    "alpaca",
    "bobcat",
    "camel",
    "dingo",
    "egret",
    "ferret",
    "gibbon",
    "hare",
    "iguana",
    "jackal",
    "kiwi",
    "llama",
    "mole",
]
PROMPTS = [f"Tell me a story about a {animal}." for animal in ANIMALS]


@pytest.mark.parametrize(("arm", "knob"), [("seeded", "seed_drift"), ("t0", "greedy_drift"), ("responses-t0", "greedy_drift")])
def test_tarr_measures_the_configured_divergence_rate(arm: str, knob: str) -> None:
    """The bound: every answer parts from the common text with chance d independently, so
    a prompt's N = 5 answers all agree with chance p = (1 - d)^N (two answers that parted
    never coincide: each draws a fresh 64-bit stream). Over Q = 40 prompts the number that
    agree is Binomial(Q, p); the test accepts the exact interval holding 99.9% of it,
    so with any entropy seed it fails by chance at most once in a thousand runs.

    d = 0.1 is the simulator's rate per 50 words past a 10-word shared prefix; answers are
    cut at 60 tokens (the stories run ~100 words), so each answer's chance is exactly d.
    """
    d, n, q = 0.1, 5, len(PROMPTS)
    simulator = create_simulator(SimConfig(**{knob: d, "drift_prefix": 10}), entropy_seed=20261201)
    with serve_in_thread(simulator.app) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0)
        result = run_probe(client, "gpt-4", n=n, prompt=PROMPTS, arms=[ArmSpec(arm, 60)])
    measured = result.arm(f"{arm}/60")
    assert measured.errors == 0 and measured.prompts == q and len(measured.texts) == q * n
    p = (1 - d) ** n
    lo, hi = binomial_bounds(q, p)
    assert measured.tarr is not None
    agreeing = round(measured.tarr * q)
    assert lo <= agreeing <= hi, f"TARr@{n} = {measured.tarr} ({agreeing}/{q}); expected {p:.3f} ({lo}..{hi} of {q})"
    # Parted answers share the 10-word prefix: the first divergence is never earlier.
    assert measured.earliest_divergence is not None and measured.earliest_divergence >= 10
    if arm != "responses-t0":  # chat usage on the simulator is one token per word: the estimate is exact
        assert measured.first_divergence_token == measured.first_divergence


def test_tarr_and_tara_without_drift_and_with_constant_drift() -> None:
    """The edges: no drift gives TARr 100%; drift on every answer gives TARr 0%, while the
    parsed answer (the hero's name, chosen in the first sentence, before the prefix ends)
    still agrees: TARa@N 100%, the raw/parsed gap Atil et al. report."""
    outcome = CliRunner().invoke(
        main,
        ["probe", "--upstream", "sim", "-n", "4", "--arm", "seeded/80", "--arm", "unseeded/80", "--json",
         "--prompt", "Tell me a story about a red panda.", "--prompt", "Tell me a story about a snow leopard.",
         "--answer-regex", r"(?:named|called) (\w+)", "--sim", "seed_drift=1", "--sim", "drift_prefix=30", "--sim", "entropy_seed=5"],
    )  # fmt: skip
    assert outcome.exit_code == 0, outcome.output
    by_name = {arm["name"]: arm for arm in json.loads(outcome.output)["arms"]}
    seeded = by_name["seeded/80"]
    assert (seeded["tarr"], seeded["tara"]) == (0.0, 1.0)
    assert all(sample["answer"] for sample in seeded["samples"])
    assert seeded["differing_same_fingerprint"] == seeded["differing_pairs"] > 0, "same backend, other text"
    quiet = CliRunner().invoke(
        main, ["probe", "--upstream", "sim", "-n", "4", "--arm", "seeded/80", "--answer-regex", r"(?:named|called) (\w+)", "--json",
               "--prompt", "Tell me a story about a red panda."],
    )  # fmt: skip
    assert [(a["tarr"], a["tara"]) for a in json.loads(quiet.output)["arms"]] == [(1.0, 1.0)]


def test_answer_extractors() -> None:
    assert regex_extractor(r"Answer: (\d+)")("so... Answer: 42.") == "42"
    assert regex_extractor(r"\d+")("no digits") is None
    assert regex_extractor(r"\d+")("x 17 y") == "17"
    extract = json_path_extractor("result.items.1")
    assert extract('{"result": {"items": ["a", "b"]}}') == "b"
    assert extract('{"result": {"items": ["a"]}}') is None
    assert extract("not json") is None
    assert json_path_extractor("answer")('{"answer": {"b": 1, "a": 2}}') == '{"a": 2, "b": 1}'


def test_bad_probe_options_are_usage_errors() -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["probe", "--upstream", "sim", "--arm", "sideways"]).exit_code == 2
    assert runner.invoke(main, ["probe", "--upstream", "sim", "--sim", "colour=red"]).exit_code == 2
    assert runner.invoke(main, ["probe", "--upstream", "sim", "--answer-regex", "("]).exit_code == 2


def test_history_records_where_without_credentials() -> None:
    assert public_upstream("https://user:pw@my.openai.azure.com/?sig=secret") == "https://my.openai.azure.com/"
    assert public_upstream("sim") == "sim"


def _three_runs(history: Path) -> None:
    """Monday and Tuesday morning on one backend; Tuesday evening a new fingerprint, and
    seeded answers part (the case the chart exists for)."""
    runner = CliRunner()
    base = ["probe", "--upstream", "sim", "-n", "3", "--max-tokens", "50", "--max-tokens", "120", "--history", str(history), "--json",
            "--prompt", "Tell me a story about a red panda.", "--prompt", "Tell me a story about how the universe began?"]  # fmt: skip
    for extra in (
        [],
        ["--sim", "greedy_drift=0.2"],
        ["--sim", "fingerprint=fp_tuesday", "--sim", "seed_drift=1", "--sim", "drift_prefix=20"],
    ):
        outcome = runner.invoke(main, [*base, "--sim", "entropy_seed=9", *extra])
        assert outcome.exit_code == 0, outcome.output


def test_history_of_three_runs_as_table_and_json(tmp_path: Path) -> None:
    history = tmp_path / "probe.jsonl"
    _three_runs(history)
    runs = read_history(history)
    assert len(runs) == 3 and [r["fingerprints"].get("fp_tuesday", 0) > 0 for r in runs] == [False, False, True]
    assert all(r["upstream"] == "sim" and r["model"] == "gpt-4" and len(r["arms"]) == 7 for r in runs)
    document = json.loads(CliRunner().invoke(main, ["probe", "report", str(history), "--format", "json"]).output)
    [model] = document["models"]
    assert [c["to"] for c in model["fingerprint_changes"]] == ["fp_tuesday"]
    seeded = [run["arms"]["seeded/120"]["tarr"] for run in model["runs"]]
    assert seeded == [1.0, 1.0, 0.0], "the seeded arm broke when the fingerprint changed"
    table = CliRunner().invoke(main, ["probe", "report", str(history)]).output
    assert "fp_tuesday" in table and "<- new" in table and "seeded/120" in table


@pytest.mark.slow
def test_history_html_renders_its_chart_in_headless_chromium(tmp_path: Path) -> None:
    browser = chromium()
    history = tmp_path / "probe.jsonl"
    _three_runs(history)
    page = tmp_path / "history.html"
    outcome = CliRunner().invoke(main, ["probe", "report", str(history), "--format", "html", "-o", str(page)])
    assert outcome.exit_code == 0, outcome.output
    text = page.read_text()
    assert text.count("<svg") == 1 and 'class="arm"' in text and 'class="change"' in text
    assert "http" not in text.lower() and "<script" not in text.lower()
    shot = tmp_path / "history.png"
    subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--force-color-profile=srgb",
         f"--screenshot={shot}", "--window-size=1280,900", page.as_uri()],
        capture_output=True, check=False, timeout=120,
    )  # fmt: skip
    assert shot.exists(), "chromium wrote no screenshot"
    _, _, pixels = _png_pixels(shot.read_bytes())
    counts = Counter(pixels)

    def near(colour: str, tolerance: int = 6) -> int:
        target = tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))
        return sum(n for rgb, n in counts.items() if all(abs(a - b) <= tolerance for a, b in zip(rgb, target, strict=True)))

    arms: list[Any] = [near(colour) for colour in probe_report.ARM_COLOURS[:7]]
    assert sum(1 for found in arms if found > 150) >= 4, arms  # the lines (those at 100% all run along the top)
    assert near(probe_report.CHANGE_COLOUR) > 300  # the dashed fingerprint-change marker
    assert near(probe_report.FINGERPRINT_COLOURS[0]) > 2000 and near(probe_report.FINGERPRINT_COLOURS[1]) > 1000  # the band


@pytest.mark.slow
def test_docs_show_what_the_documented_probe_command_prints() -> None:
    """docs/probe.md's simulator table is this command's output, row for row."""
    root = Path(__file__).resolve().parents[2]
    docs = (root / "docs" / "probe.md").read_text()
    outcome = CliRunner().invoke(
        main,
        ["probe", "--upstream", "sim", "--prompts-file", str(root / "docs" / "probe-prompts.txt"),
         "--answer-regex", r"(?:named|called) (\w+)", "--sim", "seed_drift=0.1", "--sim", "greedy_drift=0.05",
         "--sim", "drift_prefix=20", "--sim", "entropy_seed=2026", "--json"],
    )  # fmt: skip
    assert outcome.exit_code == 0, outcome.output
    assert "--sim seed_drift=0.1 --sim greedy_drift=0.05 --sim drift_prefix=20 --sim entropy_seed=2026" in docs

    def rate(value: float | None) -> str:
        return "-" if value is None else f"{100 * value:.0f}%"

    arms = {arm["name"]: arm for arm in json.loads(outcome.output)["arms"]}
    readme = (root / "README.md").read_text()
    for kind in ("seeded", "t0"):
        short, long = arms[f"{kind}/50"], arms[f"{kind}/500"]
        cells = (
            f"| `{kind}/50` / `{kind}/500` | {rate(short['tarr'])} / {rate(long['tarr'])} | {rate(short['tara'])} / {rate(long['tara'])} |"
        )
        assert cells in readme, cells
    for arm in arms.values():
        token = "-" if arm["first_divergence_token"] is None else f"~{arm['first_divergence_token']:g}"
        row = (
            f"| `{arm['name']}` | {arm['seed'] if arm['seed'] is not None else '-'} | {arm['temperature']:g} | {rate(arm['tarr'])} "
            f"| {rate(arm['tara'])} | {arm['unique_ratio']:.2f} | {arm['first_divergence']:g} / {token} "
            f"| {arm['differing_same_fingerprint']}/{arm['differing_pairs']} | {arm['mean_similarity']:.3f} |"
        )
        assert row in docs, row
