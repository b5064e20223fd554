"""``seedtape probe`` against the built-in simulator: the documented seed behaviour."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from click.testing import CliRunner

from seedtape.cli import main
from seedtape.commands.probe import ArmSpec, run_probe
from seedtape.serving import serve_in_thread
from seedtape.sim.simulator import SimConfig, create_simulator


def arms(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {arm["name"]: arm for arm in result["arms"]}


def test_cli_probe_on_the_simulator_shows_seeded_identical_unseeded_varying() -> None:
    outcome = CliRunner().invoke(main, ["probe", "--upstream", "sim", "-n", "4", "--json"])
    assert outcome.exit_code == 0, outcome.output
    by_name = arms(json.loads(outcome.output))
    assert list(by_name) == ["unseeded/50", "seeded/50", "t0/50", "unseeded/500", "seeded/500", "t0/500", "responses-t0/500"]
    for length in (50, 500):
        seeded, unseeded, greedy = (by_name[f"{kind}/{length}"] for kind in ("seeded", "unseeded", "t0"))
        assert seeded["distinct"] == 1 and seeded["exact_match_rate"] == 1.0 and seeded["tarr"] == 1.0
        assert greedy["tarr"] == 1.0 and greedy["temperature"] == 0.0 and greedy["seed"] is None
        assert unseeded["distinct"] > 1 and unseeded["exact_match_rate"] < 1.0 and unseeded["tarr"] == 0.0
        assert unseeded["first_divergence"] is not None
    responses = by_name["responses-t0/500"]
    assert responses["api"] == "responses" and responses["tarr"] == 1.0 and responses["errors"] == 0
    assert responses["fingerprints"] == {"(none)": 4}, "the Responses API names no fingerprint"


def test_probe_text_output_names_both_arms() -> None:
    outcome = CliRunner().invoke(main, ["probe", "--upstream", "sim", "-n", "2", "--max-tokens", "40"])
    assert outcome.exit_code == 0, outcome.output
    for name in ("unseeded/40", "seeded/40", "t0/40", "responses-t0/40"):
        assert name in outcome.output
    assert "fp_sim0001" in outcome.output


def test_probe_sees_a_rotated_fingerprint() -> None:
    simulator = create_simulator()
    with serve_in_thread(simulator.app) as url:
        client = openai.AzureOpenAI(azure_endpoint=url, api_key="k", api_version="2024-02-01")

        def rotate_midway(arm: str, done: int, total: int) -> None:
            if arm == "seeded" and done == total - 2:
                simulator.rotate_fingerprint("fp_rotated42")

        result = run_probe(client, "gpt-4", n=4, progress=rotate_midway, arms=[ArmSpec("unseeded"), ArmSpec("seeded")])
    seeded = result.arm("seeded")
    assert set(seeded.fingerprints) == {"fp_sim0001", "fp_rotated42"}
    assert seeded.distinct == 2, "the backend change shows in the seeded outputs too"


@pytest.mark.parametrize("seed_drift", [0.5])
def test_longer_answers_drift_more(seed_drift: float) -> None:
    # Drift is drawn at random, as on the real service; a fixed draw keeps this a test of
    # the length effect and not of luck (unfixed, a run failed once: no long answer drifted).
    simulator = create_simulator(SimConfig(seed_drift=seed_drift), entropy_seed=20261122)
    with serve_in_thread(simulator.app) as url:
        client = openai.AzureOpenAI(azure_endpoint=url, api_key="k", api_version="2024-02-01")
        short = run_probe(client, "gpt-4", n=6, arms=[ArmSpec("seeded", 10)]).arm("seeded/10")
        long = run_probe(client, "gpt-4", n=6, arms=[ArmSpec("seeded", 400)], prompt="Tell me a long story about how the universe began.")
        long = long.arm("seeded/400")
    assert long.exact_match_rate is not None and short.exact_match_rate is not None
    assert long.exact_match_rate < short.exact_match_rate
