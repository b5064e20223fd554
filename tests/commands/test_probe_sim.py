"""``seedtape probe`` against the built-in simulator: the documented seed behaviour."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from click.testing import CliRunner

from seedtape.cli import main
from seedtape.commands.probe import run_probe
from seedtape.serving import serve_in_thread
from seedtape.sim.simulator import SimConfig, create_simulator


def arms(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {arm["name"]: arm for arm in result["arms"]}


def test_cli_probe_on_the_simulator_shows_seeded_identical_unseeded_varying() -> None:
    outcome = CliRunner().invoke(main, ["probe", "--upstream", "sim", "-n", "4", "--json"])
    assert outcome.exit_code == 0, outcome.output
    by_name = arms(json.loads(outcome.output))
    assert by_name["seeded"]["distinct"] == 1 and by_name["seeded"]["exact_match_rate"] == 1.0
    assert by_name["unseeded"]["distinct"] > 1 and by_name["unseeded"]["exact_match_rate"] < 1.0
    assert by_name["unseeded"]["first_divergence"] is not None


def test_probe_text_output_names_both_arms() -> None:
    outcome = CliRunner().invoke(main, ["probe", "--upstream", "sim", "-n", "2", "--max-tokens", "40"])
    assert outcome.exit_code == 0, outcome.output
    assert "unseeded" in outcome.output and "seeded" in outcome.output and "fp_sim0001" in outcome.output


def test_probe_sees_a_rotated_fingerprint() -> None:
    simulator = create_simulator()
    with serve_in_thread(simulator.app) as url:
        client = openai.AzureOpenAI(azure_endpoint=url, api_key="k", api_version="2024-02-01")

        def rotate_midway(arm: str, done: int, total: int) -> None:
            if arm == "seeded" and done == total - 2:
                simulator.rotate_fingerprint("fp_rotated42")

        result = run_probe(client, "gpt-4", n=4, progress=rotate_midway)
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
        short = run_probe(client, "gpt-4", n=6, max_tokens=10).arm("seeded")
        long = run_probe(client, "gpt-4", n=6, max_tokens=400, prompt="Tell me a long story about how the universe began.").arm("seeded")
    assert long.exact_match_rate is not None and short.exact_match_rate is not None
    assert long.exact_match_rate < short.exact_match_rate
