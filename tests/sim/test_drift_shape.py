"""The simulator's drift model: what ``seedtape probe --upstream sim`` measures.

Seeded answers (``seed_drift``) and temperature-0 answers (``greedy_drift``) agree on a
prefix, then may part with a chance that grows with length; the fingerprint can rotate
on a schedule (``fingerprint_every``). With every knob at its default the simulator's
answers are byte-identical to what it always gave: ``cassettes/demo`` still replays.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from random import Random
from typing import Any

import httpx
import openai
import pytest

from seedtape.episode import response_json
from seedtape.serving import serve_in_thread
from seedtape.sim import text as sim_text
from seedtape.sim.simulator import SimConfig, create_simulator

DEMO = Path(__file__).resolve().parents[2] / "cassettes" / "demo"
STORY = [{"role": "user", "content": "Tell me a long story about a red panda."}]


def _generate(body: dict[str, Any], max_words: int | None, entropy: Random, **knobs: Any) -> str:
    req = sim_text.TextRequest.from_body(body, STORY, max_words)
    knobs.setdefault("seed_drift", 0.0)
    text = sim_text.generate(req, fingerprint="fp_x", choice_index=0, entropy=entropy, **knobs)
    return " ".join(text.split()[:max_words] if max_words else text.split())


def _shared_prefix(a: str, b: str) -> int:
    shared = 0
    for x, y in zip(a.split(), b.split(), strict=False):
        if x != y:
            break
        shared += 1
    return shared


def binomial_bounds(trials: int, p: float, tail: float = 0.0005) -> tuple[int, int]:
    """Counts outside [lo, hi] have probability <= ``tail`` on each side for Binomial(trials, p)."""
    pmf = [math.comb(trials, k) * p**k * (1 - p) ** (trials - k) for k in range(trials + 1)]
    lo, low_mass = 0, 0.0
    while low_mass + pmf[lo] <= tail:
        low_mass += pmf[lo]
        lo += 1
    hi, high_mass = trials, 0.0
    while high_mass + pmf[hi] <= tail:
        high_mass += pmf[hi]
        hi -= 1
    return lo, hi


def test_default_outputs_are_unchanged_the_demo_cassettes_regenerate() -> None:
    """Every deterministic demo recording is what the default simulator answers today."""
    checked = 0
    with serve_in_thread(create_simulator().app) as url:
        for path in sorted(DEMO.glob("*.json")):
            recording = json.loads(path.read_text())
            request, body = recording["request"], dict(recording["request"]["body"])
            if body.get("seed") is None:
                continue  # unseeded episodes were drawn from fresh entropy
            answer = httpx.post(
                f"{url}/openai/deployments/{request['deployment']}/chat/completions",
                params={"api-version": request["api_version"]},
                headers={"api-key": "k"},
                json={**body, "stream": False},
            ).json()
            recorded = response_json(recording["episodes"][0])
            assert answer["choices"][0]["message"]["content"] == recorded["choices"][0]["message"]["content"], path.name
            checked += 1
    assert checked == 3


def test_divergence_chance_grows_with_length_after_the_prefix() -> None:
    assert sim_text.divergence_chance(0.2, 50) == pytest.approx(0.2)
    assert sim_text.divergence_chance(0.2, 100) == pytest.approx(1 - 0.8**2)
    assert sim_text.divergence_chance(0.2, 30, prefix=30) == 0.0
    assert sim_text.divergence_chance(0.2, 80, prefix=30) == pytest.approx(0.2)
    chances = [sim_text.divergence_chance(0.1, n, prefix=20) for n in (10, 40, 80, 160, 320)]
    assert chances == sorted(chances) and chances[0] == 0.0


@pytest.mark.parametrize(("knob", "body"), [("seed_drift", {"seed": 42, "temperature": 0.7}), ("greedy_drift", {"temperature": 0})])
def test_answers_agree_on_the_prefix_then_part_at_the_configured_rate(knob: str, body: dict[str, Any]) -> None:
    """Rate 0.3 per 50 words past a 20-word prefix, answers of 70 words: each parts with
    chance 0.3. 400 answers: the count that part lies in the exact Binomial(400, 0.3)
    interval holding 99.9% of the mass, and each one that parted shares the prefix."""
    body = {"model": "gpt-4", "messages": STORY, **body}
    baseline = _generate(body, 70, Random(0))
    assert len(baseline.split()) == 70
    entropy = Random(20261122)
    runs = [_generate(body, 70, entropy, **{knob: 0.3, "drift_prefix": 20}) for _ in range(400)]
    parted = [run for run in runs if run != baseline]
    lo, hi = binomial_bounds(400, 0.3)
    assert lo <= len(parted) <= hi, (len(parted), lo, hi)
    assert min(_shared_prefix(baseline, run) for run in parted) >= 20, "no answer parts inside the prefix"


def test_a_high_hazard_parts_right_after_the_prefix() -> None:
    """Thinking Machines' shape: identical for a prefix, then parting at once."""
    body = {"model": "gpt-4", "messages": STORY, "temperature": 0}
    baseline = _generate(body, 100, Random(0))
    entropy = Random(7)
    shared = [_shared_prefix(baseline, _generate(body, 100, entropy, greedy_drift=1.0, drift_prefix=40)) for _ in range(30)]
    assert all(40 <= n < 40 + 12 for n in shared), shared


def test_greedy_drift_touches_only_temperature_zero_without_a_seed() -> None:
    seeded = {"model": "gpt-4", "messages": STORY, "seed": 42, "temperature": 0.7}
    greedy = {"model": "gpt-4", "messages": STORY, "temperature": 0}
    seeded_base, greedy_base = _generate(seeded, 70, Random(0)), _generate(greedy, 70, Random(0))
    entropy = Random(1)
    assert all(_generate(seeded, 70, entropy, greedy_drift=1.0) == seeded_base for _ in range(20))
    assert all(_generate(greedy, 70, entropy, seed_drift=1.0) == greedy_base for _ in range(20))
    assert all(_generate(greedy, 70, entropy, greedy_drift=1.0, drift_prefix=10) != greedy_base for _ in range(20))


def test_fingerprint_rotates_on_a_schedule() -> None:
    simulator = create_simulator(SimConfig(fingerprint_every=3))
    with serve_in_thread(simulator.app) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0)
        seen = [client.chat.completions.create(model="gpt-4", messages=STORY, seed=1, max_tokens=20).system_fingerprint for _ in range(7)]
    assert seen[0] == "fp_sim0001" and len(set(seen[:3])) == 1
    assert seen[3] != seen[2] and len(set(seen[3:6])) == 1
    assert seen[6] not in (seen[0], seen[3]) and simulator.config.fingerprint == seen[6]


def test_new_knobs_are_validated() -> None:
    simulator = create_simulator()
    simulator.update_config({"greedy_drift": 0.5, "drift_prefix": 100, "fingerprint_every": 10})
    assert (simulator.config.greedy_drift, simulator.config.drift_prefix, simulator.config.fingerprint_every) == (0.5, 100, 10)
    for bad in ({"greedy_drift": 1.5}, {"drift_prefix": -1}, {"drift_prefix": 2.5}, {"fingerprint_every": True}):
        with pytest.raises(ValueError):
            simulator.update_config(bad)
