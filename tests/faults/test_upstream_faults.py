"""Upstream faults: passed on as they came (or as an OpenAI-shaped 502/504), never
recorded, never overwriting a recording; the SDK's own retries behave as against the
real service, and a failed attempt does not use up an episode number.

The upstream is the built-in simulator on 127.0.0.1 with injected faults.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from client_shim import azure_client, openai_client
from tests.conftest import AZURE_KEY, OPENAI_KEY, RunningProxy, quiet_logger
from tests.faults._helpers import PANDA, assert_openai_error, cassette_files, closed_port_url

CHAT = "/openai/deployments/gpt-4/chat/completions?api-version=2024-02-01"
AUTH = {"api-key": AZURE_KEY}
SEEDED = {"model": "gpt-4", "messages": PANDA, "seed": 42, "temperature": 0.1}


def post(proxy: RunningProxy, body: dict[str, Any] = SEEDED, **headers: str) -> httpx.Response:
    return httpx.post(proxy.url + CHAT, json=body, headers={**AUTH, **headers}, timeout=30)


def digest(paths: list[Path]) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


# --------------------------------------------------------------------------- each fault, as the client sees it


def test_connection_refused_is_an_openai_shaped_502(proxy_factory: Callable[..., RunningProxy]) -> None:
    proxy = proxy_factory(mode="auto", upstream=closed_port_url())
    error = assert_openai_error(post(proxy), 502, "upstream_error")
    assert "unreachable" in error["message"] and "ConnectError" in error["message"]
    with pytest.raises(openai.InternalServerError) as caught:
        azure_client(proxy.url, api_key=AZURE_KEY, max_retries=0).chat.completions.create(**SEEDED)
    assert caught.value.status_code == 502
    assert cassette_files(proxy.settings.cassettes_dir) == []


@pytest.mark.slow  # waits out the upstream timeout
def test_timeout_is_a_504_after_upstream_timeout(proxy_factory: Callable[..., RunningProxy], sim: Any) -> None:
    proxy = proxy_factory(mode="auto", upstream_timeout=0.5)
    sim.inject({"kind": "delay", "ms": 1500})
    started = time.monotonic()
    error = assert_openai_error(post(proxy), 504, "upstream_timeout")
    assert "timed out" in error["message"]
    assert time.monotonic() - started < 2.5
    assert cassette_files(proxy.settings.cassettes_dir) == []


def test_reset_mid_body_is_a_502(proxy_factory: Callable[..., RunningProxy], sim: Any) -> None:
    proxy = proxy_factory(mode="auto")
    sim.inject({"kind": "reset_mid_stream"})
    with quiet_logger():
        error = assert_openai_error(post(proxy), 502, "upstream_error")
    assert "broke off" in error["message"]
    assert cassette_files(proxy.settings.cassettes_dir) == []


def test_reset_mid_stream_breaks_the_client_stream_and_records_nothing(proxy_factory: Callable[..., RunningProxy], sim: Any) -> None:
    proxy = proxy_factory(mode="auto")
    sim.inject({"kind": "reset_mid_stream", "after_chunks": 3})
    client = azure_client(proxy.url, api_key=AZURE_KEY, max_retries=0)
    received = []
    with quiet_logger(), pytest.raises((openai.APIError, httpx.HTTPError)):
        for chunk in client.chat.completions.create(**SEEDED, stream=True):
            received.append(chunk)
    assert 0 < len(received) <= 3, "what arrived before the reset was passed on live"
    assert cassette_files(proxy.settings.cassettes_dir) == []
    whole = list(client.chat.completions.create(**SEEDED, stream=True))
    assert whole and len(cassette_files(proxy.settings.cassettes_dir)) == 1


@pytest.mark.parametrize("kind", ["truncated_json", "not_json"])
def test_a_200_with_a_broken_body_is_a_502_naming_the_problem(kind: str, proxy_factory: Callable[..., RunningProxy], sim: Any) -> None:
    proxy = proxy_factory(mode="auto")
    sim.inject({"kind": kind})
    error = assert_openai_error(post(proxy), 502, "upstream_error")
    assert "not JSON" in error["message"] and "nothing was recorded" in error["message"]
    assert cassette_files(proxy.settings.cassettes_dir) == []


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_error_statuses_pass_through_as_they_came(status: int, proxy_factory: Callable[..., RunningProxy], sim: Any) -> None:
    proxy = proxy_factory(mode="auto")
    sim.inject({"status": status, "retry_after": 7})
    response = post(proxy)
    assert response.status_code == status
    assert response.headers["retry-after"] == "7"
    assert response.headers["x-seedtape-cache"] == "miss" and "x-seedtape-episode" not in response.headers
    assert response.json()["error"]["type"] in ("requests", "server_error")  # the simulator's body, untouched
    assert cassette_files(proxy.settings.cassettes_dir) == []


# --------------------------------------------------------------------------- a failure never overwrites a recording

FAULTS: dict[str, dict[str, Any]] = {
    "429": {"status": 429, "retry_after": 1},
    "500": {"status": 500},
    "truncated": {"kind": "truncated_json"},
    "not-json": {"kind": "not_json"},
    "reset-body": {"kind": "reset_mid_stream"},
    "reset-stream": {"kind": "reset_mid_stream", "after_chunks": 2},
    "timeout": {"kind": "delay", "ms": 1000},
}


@pytest.mark.parametrize("mode", ["record", "verify-update"])
@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n == "timeout" else n for n in sorted(FAULTS)]
)  # timeout: waits it out
def test_a_failure_never_overwrites_an_existing_recording(
    name: str, mode: str, proxy_factory: Callable[..., RunningProxy], sim: Any
) -> None:
    stream = name == "reset-stream"
    body = {**SEEDED, "stream": stream}
    recorder = proxy_factory(mode="record")
    assert post(recorder, body).status_code == 200
    before = digest(cassette_files(recorder.settings.cassettes_dir))
    assert len(before) == 1

    options: dict[str, Any] = {"mode": "verify", "update": True} if mode == "verify-update" else {"mode": "record"}
    again = proxy_factory(**options, upstream_timeout=0.5, cache_dir=recorder.settings.cache_dir)
    sim.rotate_fingerprint()  # a successful verify --update would now rewrite the file
    sim.inject(FAULTS[name])
    with quiet_logger():
        try:
            response = httpx.post(again.url + CHAT, json=body, headers=AUTH, timeout=30)
            response.read()
            assert response.status_code >= 400 or stream
        except httpx.HTTPError:
            assert stream  # a reset stream reaches the client broken
    assert digest(cassette_files(recorder.settings.cassettes_dir)) == before
    assert not list(recorder.settings.cassettes_dir.rglob(".tmp-*"))


# --------------------------------------------------------------------------- the SDK's own retries


@pytest.mark.slow  # waits two retry-after delays
def test_sdk_retries_a_429_honouring_retry_after_and_only_the_success_is_recorded(
    proxy_factory: Callable[..., RunningProxy], sim: Any
) -> None:
    proxy = proxy_factory(mode="auto")
    sim.inject({"status": 429, "retry_after": 0.3, "count": 2})
    client = azure_client(proxy.url, api_key=AZURE_KEY, max_retries=2)
    started = time.monotonic()
    raw = client.chat.completions.with_raw_response.create(**SEEDED)
    elapsed = time.monotonic() - started
    assert raw.parse().choices[0].message.content
    assert sim.calls == 3 and elapsed >= 0.6, "two waits of retry-after, as against the real service"
    assert (raw.headers["x-seedtape-cache"], raw.headers["x-seedtape-episode"]) == ("recorded", "1")
    retry_counts = [r["headers"].get("x-stainless-retry-count") for r in sim.requests]
    assert retry_counts == ["0", "1", "2"], "the SDK's retry headers reach upstream unchanged"
    [path] = cassette_files(proxy.settings.cassettes_dir)
    [episode] = json.loads(path.read_text())["episodes"]
    assert episode["status"] == 200


def test_sdk_gives_up_after_max_retries_with_the_upstream_error_and_nothing_recorded(
    proxy_factory: Callable[..., RunningProxy], sim: Any
) -> None:
    proxy = proxy_factory(mode="auto")
    sim.inject({"status": 500, "retry_after": 0.05, "count": 3})
    with pytest.raises(openai.InternalServerError) as caught:
        openai_client(proxy.url, api_key=OPENAI_KEY, max_retries=2).chat.completions.create(**SEEDED)
    assert caught.value.status_code == 500 and sim.calls == 3
    assert cassette_files(proxy.settings.cassettes_dir) == []


def test_direct_and_proxied_retry_behaviour_is_the_same(proxy_factory: Callable[..., RunningProxy], sim: Any, sim_url: str) -> None:
    """The same fault script against the simulator directly and through the proxy:
    the same outcome, the same number of attempts."""
    outcomes = []
    for base in (sim_url, proxy_factory(mode="auto").url):
        sim.reset()
        sim.inject({"status": 503, "retry_after": 0.05, "count": 1})
        sim.inject({"status": 429, "retry_after": 0.05, "count": 1})
        result = azure_client(base, api_key=AZURE_KEY, max_retries=2).chat.completions.create(**SEEDED)
        outcomes.append((sim.calls, result.choices[0].message.content))
    assert outcomes[0] == outcomes[1] and outcomes[0][0] == 3


@pytest.mark.slow  # waits the SDK's backoff before retrying a 502
def test_retried_attempts_do_not_shift_episode_numbers(proxy_factory: Callable[..., RunningProxy], sim: Any) -> None:
    """Re-recording rewrites episode n with the n-th request. A 429 on the first request
    and the SDK's retry must still rewrite episode 1 (not append a third), and a 502
    retried on the second must rewrite episode 2."""
    unseeded = {"model": "gpt-4", "messages": PANDA, "temperature": 0.9}
    first_run = proxy_factory(mode="record")
    client = azure_client(first_run.url, api_key=AZURE_KEY, max_retries=0)
    for _ in range(2):
        client.chat.completions.create(**unseeded)
    [path] = cassette_files(first_run.settings.cassettes_dir)

    second_run = proxy_factory(mode="record")  # a new run: a new session, counters from 1
    client = azure_client(second_run.url, api_key=AZURE_KEY, max_retries=2)
    sim.inject({"status": 429, "retry_after": 0.05, "count": 2})
    first = client.chat.completions.with_raw_response.create(**unseeded)
    sim.inject({"kind": "truncated_json"})
    second = client.chat.completions.with_raw_response.create(**unseeded)  # a 502, retried by the SDK
    assert [first.headers["x-seedtape-episode"], second.headers["x-seedtape-episode"]] == ["1", "2"]
    episodes = json.loads(path.read_text())["episodes"]
    texts = [first.parse().choices[0].message.content, second.parse().choices[0].message.content]
    assert [e["body"]["choices"][0]["message"]["content"] for e in episodes] == texts

    replay = proxy_factory(mode="replay", upstream=closed_port_url())
    offline = azure_client(replay.url, max_retries=0)
    assert [offline.chat.completions.create(**unseeded).choices[0].message.content for _ in range(2)] == texts


def test_streaming_request_retried_after_503_records_one_stream(proxy_factory: Callable[..., RunningProxy], sim: Any) -> None:
    proxy = proxy_factory(mode="auto")
    sim.inject({"status": 503, "retry_after": 0.05})
    client = azure_client(proxy.url, api_key=AZURE_KEY, max_retries=2)
    chunks = list(client.chat.completions.create(**SEEDED, stream=True))
    assert chunks and sim.calls == 2
    [path] = cassette_files(proxy.settings.cassettes_dir)
    [episode] = json.loads(path.read_text())["episodes"]
    assert episode["events"][-1]["data"] == "[DONE]"
