"""``seedtape probe`` end to end through the real OpenAI SDK.

The upstream here is a tiny fake served by uvicorn on 127.0.0.1 in a thread: seeded
requests get the same story, unseeded ones a random one, like the seed documents show.
It stands in for the simulator (``seedtape.sim.create_simulator()``);
switching is a matter of changing the ``upstream`` fixture's app.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import openai
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

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
from tests.drift._episodes import STORY_A, STORY_B

# The seed documents' two arms; the fake serves chat completions only (no Responses API).
ARMS = [ArmSpec("unseeded"), ArmSpec("seeded")]

VOCABULARY = [
    "bamboo",
    "forest",
    "panda",
    "tree",
    "leaf",
    "river",
    "moon",
    "quiet",
    "bright",
    "small",
    "curious",
    "brave",
    "sleepy",
    "gentle",
    "mountain",
    "snow",
    "friend",
    "song",
    "path",
    "stone",
    "cloud",
    "wind",
    "grove",
    "secret",
    "snack",
    "spot",
    "monkey",
    "feast",
    "legend",
    "night",
    "morning",
]


@dataclass
class FakeUpstream:
    """Knobs and a record of what the fake saw."""

    fingerprints: list[str] = field(default_factory=lambda: ["fp_fake0001"])
    fail_every: int = 0
    bodies: list[dict[str, Any]] = field(default_factory=list)
    modes: list[str | None] = field(default_factory=list)
    url: str = ""

    def story(self, body: dict[str, Any]) -> str:
        rng = random.Random(body["seed"]) if body.get("seed") is not None else random.Random()
        length = min(int(body.get("max_tokens") or 40), 40)
        return "Once upon a time a red panda " + " ".join(rng.choice(VOCABULARY) for _ in range(length))


def _app(state: FakeUpstream) -> Starlette:
    async def chat(request: Request) -> JSONResponse:
        body = await request.json()
        state.bodies.append(body)
        state.modes.append(request.headers.get("x-seedtape-mode"))
        number = len(state.bodies)
        if state.fail_every and number % state.fail_every == 0:
            return JSONResponse({"error": {"message": "slow down, key sk-abc***", "type": "rate_limit", "code": "429"}}, status_code=429)
        return JSONResponse(
            {
                "id": f"chatcmpl-{number}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "system_fingerprint": state.fingerprints[(number - 1) % len(state.fingerprints)],
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": state.story(body)},
                    }
                ],
                "usage": {"prompt_tokens": 20, "completion_tokens": 40, "total_tokens": 60},
            }
        )

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    state = FakeUpstream()
    server = uvicorn.Server(uvicorn.Config(_app(state), host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "fake upstream did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    state.url = f"http://127.0.0.1:{port}/v1"
    yield state
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def client(upstream: FakeUpstream) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=upstream.url, api_key="sk-test-not-a-secret", max_retries=0) as sdk:
        yield sdk


def test_probe_shows_seeded_identical_unseeded_varying(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    calls: list[tuple[str, int, int]] = []
    result = run_probe(client, "gpt-4o", n=4, progress=lambda arm, done, total: calls.append((arm, done, total)), arms=ARMS)
    seeded, unseeded = result.arm("seeded"), result.arm("unseeded")
    assert seeded.distinct == 1 and seeded.exact_match_rate == 1.0 and seeded.mean_similarity == 1.0
    assert seeded.first_divergence is None and seeded.diff is None
    assert unseeded.distinct == 4 and unseeded.exact_match_rate == 0.0
    assert 0 < unseeded.mean_similarity < 1
    # The shared opening "Once upon a time a red panda" is 7 words.
    assert unseeded.first_divergence is not None and unseeded.first_divergence >= 7
    assert unseeded.diff is not None and unseeded.diff["pair"] == [1, 2]
    assert result.fingerprints == {"fp_fake0001": 8}
    # Requests: the documents' defaults, seed only in the seeded arm, never recorded by a proxy.
    assert upstream.modes == ["passthrough"] * 8
    assert [b.get("seed") for b in upstream.bodies] == [None] * 4 + [42] * 4
    first = upstream.bodies[0]
    assert first["messages"] == [
        {"role": "system", "content": DEFAULT_SYSTEM},
        {"role": "user", "content": DEFAULT_PROMPT},
    ]
    assert first["temperature"] == 0.7 and "max_tokens" not in first
    assert calls[0] == ("unseeded", 0, 8) and calls[-1] == ("seeded", 8, 8) and len(calls) == 10


def test_probe_render_text_and_json(client: openai.OpenAI) -> None:
    result = run_probe(client, "gpt-4o", n=3, seed=7, temperature=0.1, arms=[ArmSpec("unseeded", 12), ArmSpec("seeded", 12)])
    text = render_probe(result, json=False)
    assert "seeded/12 arm: all 3 outputs identical" in text
    assert "unseeded/12 arm: 3 distinct of 3" in text
    assert "[-" in text and "{+" in text
    assert "fp_fake0001 x3" in text and "TARr@3" in text
    assert "repeated exactly: seeded/12" in text
    assert "\x1b[" not in text
    document = json.loads(render_probe(result, json=True))
    assert document["params"]["arms"] == ["unseeded/12", "seeded/12"] and document["params"]["seed"] == 7
    assert [a["name"] for a in document["arms"]] == ["unseeded/12", "seeded/12"]
    assert [a["tarr"] for a in document["arms"]] == [0.0, 1.0]
    assert document["arms"][1]["distinct"] == 1 and len(document["arms"][1]["samples"]) == 3


def test_probe_shows_a_rotated_fingerprint(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    upstream.fingerprints = ["fp_before", "fp_after"]
    result = run_probe(client, "gpt-4o", n=2, arms=ARMS)
    assert result.arm("seeded").fingerprints == {"fp_before": 1, "fp_after": 1}
    assert "Several system_fingerprints seen" in render_probe(result)


def test_probe_keeps_going_on_errors_without_leaking_messages(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    upstream.fail_every = 3
    result = run_probe(client, "gpt-4o", n=3, arms=ARMS)
    assert result.arm("unseeded").errors == 1 and result.arm("seeded").errors == 1
    assert result.arm("seeded").samples[2].error == "RateLimitError (HTTP 429, 429)"
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
