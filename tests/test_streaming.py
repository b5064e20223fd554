"""Streaming: SSE recorded event for event and replayed with the same framing (issue 3)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from click.testing import CliRunner

from client_shim import async_azure_client, azure_client, openai_client
from seedtape.cli import main
from tests.conftest import AZURE_KEY, OPENAI_KEY, RunningProxy, scan_for_secrets

OFFLINE = "http://127.0.0.1:9"
PANDA = [
    {"role": "system", "content": "You always produce 3-sentence answers."},
    {"role": "user", "content": "Create a story about red panda."},
]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]},
        },
    },
]


def chunks_of(client: openai.OpenAI, **params: Any) -> tuple[list[dict[str, Any]], httpx.Headers]:
    params.setdefault("model", "gpt-4")
    params.setdefault("messages", PANDA)
    raw = client.chat.completions.with_raw_response.create(stream=True, **params)
    return [chunk.model_dump() for chunk in raw.parse()], raw.headers


def files(proxy: RunningProxy) -> list[Path]:
    return sorted((proxy.settings.cassettes_dir / "default").glob("*.json"))


@pytest.mark.parametrize("kind", ["openai", "azure"])
def test_replayed_stream_equals_live_chunk_for_chunk(kind: str, proxy_factory: Callable[..., RunningProxy]) -> None:
    recorder = proxy_factory(mode="record")
    make = openai_client if kind == "openai" else azure_client
    live, headers = chunks_of(make(recorder.url, api_key=AZURE_KEY), seed=42, stream_options={"include_usage": True})
    assert headers["x-seedtape-cache"] == "recorded" and headers["content-type"].startswith("text/event-stream")
    assert live[-1]["choices"] == [] and live[-1]["usage"]["total_tokens"] > 0
    if kind == "azure":
        assert live[0]["id"] == "" and live[0]["choices"] == [] and live[0]["prompt_filter_results"]
        assert any(c["choices"] and c["choices"][0].get("content_filter_results") for c in live)
    assert all(c["system_fingerprint"] for c in live if c["id"])

    [path] = files(recorder)
    episode = json.loads(path.read_text())["episodes"][0]
    assert episode["events"][-1]["data"] == "[DONE]" and len(episode["events"]) == len(live) + 1
    assert [e["ms"] for e in episode["events"]] == sorted(e["ms"] for e in episode["events"])

    replay = proxy_factory(mode="replay", upstream=OFFLINE)
    replayed, replay_headers = chunks_of(make(replay.url), seed=42, stream_options={"include_usage": True})
    assert replayed == live
    assert replay_headers["x-seedtape-cache"] == "hit"


@pytest.mark.anyio
async def test_async_stream_replays_equal(proxy_factory: Callable[..., RunningProxy]) -> None:
    recorder = proxy_factory(mode="auto")
    async with async_azure_client(recorder.url, api_key=AZURE_KEY) as client:
        live = [c.model_dump() async for c in await client.chat.completions.create(model="gpt-4", messages=PANDA, seed=3, stream=True)]
    replay = proxy_factory(mode="replay", upstream=OFFLINE)
    async with async_azure_client(replay.url) as client:
        stream = await client.chat.completions.create(model="gpt-4", messages=PANDA, seed=3, stream=True)
        assert [c.model_dump() async for c in stream] == live


def test_stream_helper_and_parallel_tool_calls_replay(proxy_factory: Callable[..., RunningProxy]) -> None:
    recorder = proxy_factory(mode="auto")
    params: dict[str, Any] = {
        "model": "gpt-4",
        "seed": 5,
        "tools": TOOLS,
        "tool_choice": "required",
        "messages": [{"role": "user", "content": "What is the weather and the time in Rome?"}],
    }
    with azure_client(recorder.url, api_key=AZURE_KEY).chat.completions.stream(**params) as stream:
        live = stream.get_final_completion()
    calls = live.choices[0].message.tool_calls or []
    assert len(calls) >= 2 and {c.function.name for c in calls} == {"get_weather", "get_time"}
    replay = proxy_factory(mode="replay", upstream=OFFLINE)
    with azure_client(replay.url).chat.completions.stream(**params) as stream:
        replayed = stream.get_final_completion()
    assert replayed.model_dump() == live.model_dump()


@pytest.mark.slow  # timed: real delays between chunks
def test_live_stream_is_passed_on_as_it_arrives(proxy_factory: Callable[..., RunningProxy], sim: Any) -> None:
    """The first chunk reaches the client long before the upstream finishes (no buffering)."""
    sim.config.stream_delay_ms = 40
    proxy = proxy_factory(mode="record")
    started = time.perf_counter()
    stream = azure_client(proxy.url, api_key=AZURE_KEY).chat.completions.create(model="gpt-4", messages=PANDA, seed=1, stream=True)
    arrivals = [time.perf_counter() - started for _ in stream]
    assert len(arrivals) > 10
    assert arrivals[1] < arrivals[-1] / 3, f"first chunks at {arrivals[:3]}, last at {arrivals[-1]}"


@pytest.mark.slow  # timed: replays real gaps
def test_pace_recorded_replays_gaps_and_fast_does_not(proxy_factory: Callable[..., RunningProxy], sim: Any) -> None:
    sim.config.stream_delay_ms = 30
    recorder = proxy_factory(mode="record")
    list(azure_client(recorder.url, api_key=AZURE_KEY).chat.completions.create(model="gpt-4", messages=PANDA, seed=1, stream=True))
    events = json.loads(files(recorder)[0].read_text())["episodes"][0]["events"]
    span = events[-1]["ms"] / 1000
    assert span > 0.2

    def replay_seconds(pace: str) -> float:
        replay = proxy_factory(mode="replay", upstream=OFFLINE, pace=pace)
        started = time.perf_counter()
        list(azure_client(replay.url).chat.completions.create(model="gpt-4", messages=PANDA, seed=1, stream=True))
        return time.perf_counter() - started

    assert replay_seconds("recorded") >= span * 0.9
    assert replay_seconds("fast") < span / 2


def test_broken_stream_reaches_client_broken_and_is_never_recorded(proxy_factory: Callable[..., RunningProxy], sim: Any) -> None:
    proxy = proxy_factory(mode="record")
    client = azure_client(proxy.url, api_key=AZURE_KEY, max_retries=0)
    good = chunks_of(client, seed=11)[0]
    [path] = files(proxy)
    before = path.read_bytes()

    sim.inject({"kind": "reset_mid_stream", "after_chunks": 3})
    received = []
    with pytest.raises((openai.APIError, httpx.HTTPError)):
        for chunk in azure_client(proxy.url, api_key=AZURE_KEY, max_retries=0, session="again").chat.completions.create(
            model="gpt-4", messages=PANDA, seed=11, stream=True
        ):
            received.append(chunk)
    assert 0 < len(received) < len(good)
    assert path.read_bytes() == before, "the previous recording is kept intact"
    assert httpx.get(proxy.url + "/_seedtape/health").status_code == 200


@pytest.mark.slow  # timed: a slow stream, and waits for the proxy to notice
def test_client_disconnect_mid_stream_leaves_proxy_healthy(proxy_factory: Callable[..., RunningProxy], sim: Any) -> None:
    sim.config.stream_delay_ms = 30
    proxy = proxy_factory(mode="auto")
    stream = azure_client(proxy.url, api_key=AZURE_KEY).chat.completions.create(model="gpt-4", messages=PANDA, temperature=0.9, stream=True)
    for index, _ in enumerate(stream):
        if index == 2:
            break
    stream.close()
    time.sleep(0.3)
    assert files(proxy) == [], "an abandoned stream is not recorded"
    assert httpx.get(proxy.url + "/_seedtape/health").json()["status"] == "ok"
    complete, headers = chunks_of(azure_client(proxy.url, api_key=AZURE_KEY), temperature=0.9)
    assert headers["x-seedtape-cache"] == "recorded" and complete


def test_json_error_to_a_stream_request_passes_through_as_json(proxy_factory: Callable[..., RunningProxy], sim: Any) -> None:
    proxy = proxy_factory(mode="auto")
    sim.inject({"status": 401})
    with pytest.raises(openai.AuthenticationError) as caught:
        chunks_of(openai_client(proxy.url, api_key=OPENAI_KEY, max_retries=0), seed=1)
    assert caught.value.response.headers["content-type"].startswith("application/json")
    assert files(proxy) == []


def test_show_prints_assembled_stream_and_event_count(proxy_factory: Callable[..., RunningProxy]) -> None:
    proxy = proxy_factory(mode="auto")
    live, headers = chunks_of(azure_client(proxy.url, api_key=AZURE_KEY), seed=8)
    text = "".join(c["choices"][0]["delta"]["content"] or "" for c in live if c["choices"])
    result = CliRunner().invoke(main, ["show", headers["x-seedtape-key"][:12], "--cassettes", str(proxy.settings.cassettes_dir)])
    assert result.exit_code == 0, result.output
    assert f"stream, {len(live) + 1} events" in result.output
    assert " ".join(text.split()[:6]) in " ".join(result.output.split())
    assert scan_for_secrets(proxy.settings.cassettes_dir) == []
