"""``seedtape probe`` end to end through the real OpenAI SDK, against the simulator.

The simulator is served by uvicorn on 127.0.0.1 in a thread and keeps the requests it
receives: seeded requests get the same story, unseeded ones share an opening and then
diverge, like the seed documents show. Its unseeded draws are fixed (``entropy_seed``)
so the counts of distinct answers below are the same on every run.
(tests/commands/test_probe_sim.py runs the ``probe`` command itself on ``--upstream sim``.)
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest

from seedtape.commands.probe import (
    DEFAULT_PROMPT,
    DEFAULT_SYSTEM,
    ArmResult,
    ArmSpec,
    Sample,
    arm_statistics,
    progress_bar,
    render_probe,
    run_probe,
)
from seedtape.serving import serve_in_thread
from seedtape.sim.simulator import SimConfig, Simulator, create_simulator
from tests.drift._episodes import STORY_A, STORY_B

ENTROPY_SEED = 20240601  # the simulator's unseeded draws (see the module docstring)
# The seed documents' two arms (the chat completions API, at the probe's default max_tokens).
ARMS = [ArmSpec("unseeded"), ArmSpec("seeded")]


def shared_opening(texts: list[str]) -> int:
    """How many words all the texts start with."""
    words = [text.split() for text in texts]
    count = 0
    while all(len(w) > count for w in words) and len({w[count] for w in words}) == 1:
        count += 1
    return count


@pytest.fixture
def upstream() -> Simulator:
    return create_simulator(SimConfig(keep_requests=True), entropy_seed=ENTROPY_SEED)


@pytest.fixture
def client(upstream: Simulator) -> Iterator[openai.OpenAI]:
    with serve_in_thread(upstream.app) as url, openai.OpenAI(base_url=url + "/v1", api_key="sk-test-not-a-secret", max_retries=0) as sdk:
        yield sdk


def test_probe_shows_seeded_identical_unseeded_varying(client: openai.OpenAI, upstream: Simulator) -> None:
    calls: list[tuple[str, int, int]] = []
    result = run_probe(client, "gpt-4o", n=4, progress=lambda arm, done, total: calls.append((arm, done, total)), arms=ARMS)
    seeded, unseeded = result.arm("seeded"), result.arm("unseeded")
    assert seeded.distinct == 1 and seeded.exact_match_rate == 1.0 and seeded.mean_similarity == 1.0
    assert seeded.first_divergence is None and seeded.diff is None
    assert unseeded.distinct == 4 and unseeded.exact_match_rate == 0.0
    assert 0 < unseeded.mean_similarity < 1
    # Unseeded answers share an opening ("In the snowy hills of ..."), and the divergence is counted after it.
    opening = shared_opening(unseeded.texts)
    assert opening > 0 and unseeded.first_divergence is not None and unseeded.first_divergence >= opening
    assert unseeded.diff is not None and unseeded.diff["pair"] == [1, 2]
    assert result.fingerprints == {"fp_sim0001": 8}
    # Requests: the documents' defaults, seed only in the seeded arm, never recorded by a proxy.
    assert [r.headers.get("x-seedtape-mode") for r in upstream.received] == ["passthrough"] * 8
    bodies = [r.body for r in upstream.received]
    assert [b.get("seed") for b in bodies] == [None] * 4 + [42] * 4
    first = bodies[0]
    assert first["messages"] == [
        {"role": "system", "content": DEFAULT_SYSTEM},
        {"role": "user", "content": DEFAULT_PROMPT},
    ]
    assert first["temperature"] == 0.7 and "max_tokens" not in first
    assert calls[0] == ("unseeded", 0, 8) and calls[-1] == ("seeded", 8, 8) and len(calls) == 10


def test_probe_render_text_and_json(client: openai.OpenAI) -> None:
    # Hot enough that the unseeded answers part within their first 12 words.
    result = run_probe(client, "gpt-4o", n=3, seed=7, temperature=1.0, arms=[ArmSpec("unseeded", 12), ArmSpec("seeded", 12)])
    text = render_probe(result, json=False)
    assert "seeded/12 arm: all 3 outputs identical" in text
    assert "unseeded/12 arm: 3 distinct of 3" in text
    assert "[-" in text and "{+" in text
    assert "fp_sim0001 x3" in text and "TARr@3" in text
    assert "repeated exactly: seeded/12" in text
    assert "\x1b[" not in text
    document = json.loads(render_probe(result, json=True))
    assert document["params"]["arms"] == ["unseeded/12", "seeded/12"] and document["params"]["seed"] == 7
    assert [a["name"] for a in document["arms"]] == ["unseeded/12", "seeded/12"]
    assert [a["tarr"] for a in document["arms"]] == [0.0, 1.0]
    assert document["arms"][1]["distinct"] == 1 and len(document["arms"][1]["samples"]) == 3


def test_probe_shows_a_rotated_fingerprint(client: openai.OpenAI, upstream: Simulator) -> None:
    def alternate(arm: str, done: int, total: int) -> None:  # fp_before, fp_after, fp_before, fp_after
        upstream.rotate_fingerprint("fp_after" if done % 2 else "fp_before")

    result = run_probe(client, "gpt-4o", n=2, progress=alternate, arms=ARMS)
    assert result.arm("seeded").fingerprints == {"fp_before": 1, "fp_after": 1}
    assert "Several system_fingerprints seen" in render_probe(result)


def test_probe_keeps_going_on_errors_without_leaking_messages(client: openai.OpenAI, upstream: Simulator) -> None:
    def fail_every_third(arm: str, done: int, total: int) -> None:
        if done % 3 == 2:  # requests 3 and 6: the last of each arm
            upstream.inject({"status": 429, "message": "slow down, key sk-abc***"})

    result = run_probe(client, "gpt-4o", n=3, progress=fail_every_third, arms=ARMS)
    assert upstream.calls == 6 and upstream.calls_by_route["chat/completions"] == 6
    assert result.arm("unseeded").errors == 1 and result.arm("seeded").errors == 1
    assert result.arm("seeded").samples[2].error == "RateLimitError (HTTP 429, rate_limit_exceeded)"
    assert result.arm("seeded").distinct == 1
    rendered = render_probe(result) + render_probe(result, json=True)
    assert "sk-abc" not in rendered and "sk-test" not in rendered
    assert "request(s) failed" in rendered


def test_probe_needs_two_requests(client: openai.OpenAI) -> None:
    with pytest.raises(ValueError):
        run_probe(client, "gpt-4o", n=1)


def test_progress_bar_callback(client: openai.OpenAI) -> None:
    import io

    from rich.console import Console

    buffer = io.StringIO()
    with progress_bar(Console(file=buffer, force_terminal=False), transient=False) as update:
        run_probe(client, "gpt-4o", n=2, progress=update, arms=ARMS)
    assert "seeded arm" in buffer.getvalue()


def test_arm_statistics_on_the_seed_notebook_stories() -> None:
    arm = arm_statistics(ArmResult("unseeded", None, [Sample(STORY_A, "fp_a"), Sample(STORY_B, "fp_a"), Sample(STORY_A, None)]))
    assert arm.distinct == 2
    assert arm.exact_match_rate == pytest.approx(1 / 3, abs=1e-6)
    assert arm.first_divergence == len(STORY_A.split("but it was")[0].split())  # the median of the two differing pairs
    assert arm.fingerprints == {"fp_a": 2, "(none)": 1}
    assert arm.diff is not None and arm.diff["removed"][:2] == ["but", "it"]
