"""The Responses API through seedtape, driven by the real openai SDK (issue 12).

Every test records through a real uvicorn proxy in front of the simulator, then
replays through a proxy whose upstream is a closed port: what the SDK returns offline
must equal what it returned live.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import pydantic
import pytest

from seedtape import InProcessProxy
from seedtape.families import family_of
from seedtape.families.base import StreamEnd
from tests.conftest import AZURE_KEY, OPENAI_KEY, RunningProxy, quiet_logger, scan_for_secrets

OFFLINE = "http://127.0.0.1:9"
STORY = "Tell me a story about a red panda."
TOOLS = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
]


def client_for(proxy: RunningProxy, key: str = OPENAI_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.url + "/v1", api_key=key, max_retries=0)


def replayer(proxy_factory: Callable[..., RunningProxy], recorder: RunningProxy) -> RunningProxy:
    """A replay-only proxy on the recorder's cassettes, with no upstream at all."""
    return proxy_factory(mode="replay", upstream=OFFLINE, cache_dir=recorder.settings.cache_dir.parent / "replay-cache")


def files(proxy: RunningProxy) -> list[Path]:
    return sorted((proxy.settings.cassettes_dir / "default").glob("*.json"))


def test_create_is_recorded_hit_and_replayed_offline(proxy_factory: Callable[..., RunningProxy], sim: Any) -> None:
    proxy = proxy_factory(mode="auto")
    client = client_for(proxy)
    first = client.responses.with_raw_response.create(model="gpt-4o", input=STORY, temperature=0)
    assert first.headers["x-seedtape-cache"] == "recorded" and sim.calls == 1
    again = client.responses.with_raw_response.create(model="gpt-4o", input=STORY, temperature=0)
    assert again.headers["x-seedtape-cache"] == "hit", "temperature 0 asks for the same answer: the cache serves it"
    assert sim.calls == 1
    text = first.parse().output_text
    assert text and again.parse().output_text == text

    (path,) = files(proxy)
    stored = json.loads(path.read_text())
    assert stored["request"]["route"] == "responses" and stored["request"]["body"]["input"] == STORY
    offline = client_for(replayer(proxy_factory, proxy), key="no-key-needed")
    replayed = offline.responses.create(model="gpt-4o", input=STORY, temperature=0)
    assert replayed.output_text == text and replayed.id == first.parse().id
    assert scan_for_secrets(proxy.settings.cassettes_dir) == []


def test_unseeded_creates_are_episodes_replayed_in_order(proxy_factory: Callable[..., RunningProxy], sim: Any) -> None:
    proxy = proxy_factory(mode="auto")
    client = client_for(proxy)
    live = [client.responses.create(model="gpt-4o", input=STORY, temperature=0.9).output_text for _ in range(3)]
    assert sim.calls == 3 and len(set(live)) > 1, "no seed, temperature above 0: the caller asked for variety"
    assert len(files(proxy)) == 1
    offline = client_for(replayer(proxy_factory, proxy))
    assert [offline.responses.create(model="gpt-4o", input=STORY, temperature=0.9).output_text for _ in range(3)] == live


def test_streams_replay_event_for_event_without_done(proxy_factory: Callable[..., RunningProxy]) -> None:
    proxy = proxy_factory(mode="auto")
    client = client_for(proxy)
    live = [event.model_dump() for event in client.responses.create(model="gpt-4o", input=STORY, stream=True)]
    assert live[0]["type"] == "response.created" and live[-1]["type"] == "response.completed"
    assert [e["sequence_number"] for e in live] == list(range(len(live)))

    (path,) = files(proxy)
    events = json.loads(path.read_text())["episodes"][0]["events"]
    assert [e["event"] for e in events] == [e["type"] for e in live], "each event keeps its SSE event: name"
    assert all(e["data"] != "[DONE]" for e in events)

    offline = client_for(replayer(proxy_factory, proxy))
    assert [event.model_dump() for event in offline.responses.create(model="gpt-4o", input=STORY, stream=True)] == live
    with offline.responses.stream(model="gpt-4o", input=STORY) as stream:
        final = stream.get_final_response()
    assert final.output_text == live[-1]["response"]["output"][0]["content"][0]["text"]


@pytest.mark.anyio
async def test_async_client_records_and_replays(proxy_factory: Callable[..., RunningProxy]) -> None:
    proxy = proxy_factory(mode="auto")
    client = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=OPENAI_KEY, max_retries=0)
    live = await client.responses.create(model="gpt-4o", input=STORY, temperature=0)
    events = [e.type async for e in await client.responses.create(model="gpt-4o", input=STORY, stream=True)]
    offline = openai.AsyncOpenAI(base_url=replayer(proxy_factory, proxy).url + "/v1", api_key="x", max_retries=0)
    assert (await offline.responses.create(model="gpt-4o", input=STORY, temperature=0)).output_text == live.output_text
    assert [e.type async for e in await offline.responses.create(model="gpt-4o", input=STORY, stream=True)] == events


class Trip(pydantic.BaseModel):
    city: str
    days: int


def test_parse_and_function_calls_replay_to_equal_objects(proxy_factory: Callable[..., RunningProxy]) -> None:
    proxy = proxy_factory(mode="auto")
    client = client_for(proxy)
    parsed = client.responses.parse(model="gpt-4o", input="Plan a trip to Rome", text_format=Trip, temperature=0)
    assert isinstance(parsed.output_parsed, Trip)
    called = client.responses.create(model="gpt-4o", input="What is the weather in Paris?", tools=TOOLS, temperature=0)
    (call,) = [item for item in called.output if item.type == "function_call"]
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"}

    offline = client_for(replayer(proxy_factory, proxy))
    assert (
        offline.responses.parse(model="gpt-4o", input="Plan a trip to Rome", text_format=Trip, temperature=0).output_parsed
        == parsed.output_parsed
    )
    again = offline.responses.create(model="gpt-4o", input="What is the weather in Paris?", tools=TOOLS, temperature=0)
    assert again.output == called.output


def test_requests_about_a_response_id_replay_offline(proxy_factory: Callable[..., RunningProxy], sim: Any) -> None:
    proxy = proxy_factory(mode="auto")
    client = client_for(proxy)

    def script(c: openai.OpenAI) -> list[Any]:
        created = c.responses.create(model="gpt-4o", input=STORY, temperature=0)
        follow_up = c.responses.create(model="gpt-4o", input="And then?", previous_response_id=created.id, temperature=0)
        background = c.responses.create(model="gpt-4o", input="A story about the sea", background=True)
        states = [background.status]
        while states[-1] in ("queued", "in_progress") and len(states) < 10:
            states.append(c.responses.retrieve(background.id).status)
        items = [item.type for item in c.responses.input_items.list(created.id).data]
        retrieved = c.responses.retrieve(created.id).output_text
        c.responses.delete(follow_up.id)
        return [created.output_text, follow_up.previous_response_id == created.id, states, items, retrieved]

    live = script(client)
    assert live[1] is True and live[2][0] == "queued" and live[2][-1] == "completed" and live[4] == live[0]
    routes = {json.loads(p.read_text())["request"]["route"] for p in files(proxy)}
    assert routes == {"responses", "responses/{id}", "responses/{id}/input_items"}
    calls = sim.calls
    assert script(client_for(replayer(proxy_factory, proxy))) == live, "the polls replay in order: queued ... completed"
    assert sim.calls == calls


def test_azure_shapes_are_recorded_with_their_api(proxy_factory: Callable[..., RunningProxy], sim: Any) -> None:
    proxy = proxy_factory(mode="auto")
    azure = openai.AzureOpenAI(azure_endpoint=proxy.url, api_version="2025-04-01-preview", api_key=AZURE_KEY, max_retries=0)
    v1 = openai.OpenAI(base_url=proxy.url + "/openai/v1", api_key=AZURE_KEY, max_retries=0)
    a = azure.responses.create(model="my-deployment", input=STORY, temperature=0).output_text
    b = v1.responses.create(model="my-deployment", input=STORY, temperature=0).output_text
    requests = sorted((json.loads(p.read_text())["request"] for p in files(proxy)), key=lambda r: r["api"])
    assert [(r["api"], r["route"], r["api_version"]) for r in requests] == [
        ("azure", "responses", "2025-04-01-preview"),
        ("azure-v1", "responses", ""),
    ]
    offline = replayer(proxy_factory, proxy)
    replay_azure = openai.AzureOpenAI(azure_endpoint=offline.url, api_version="2025-04-01-preview", api_key="x", max_retries=0)
    assert replay_azure.responses.create(model="my-deployment", input=STORY, temperature=0).output_text == a
    assert (
        openai.OpenAI(base_url=offline.url + "/openai/v1", api_key="x")
        .responses.create(model="my-deployment", input=STORY, temperature=0)
        .output_text
        == b
    )
    assert scan_for_secrets(proxy.settings.cassettes_dir) == []


def test_in_process_proxy_records_and_replays(tmp_path: Path) -> None:
    with InProcessProxy(mode="auto", upstream="sim", cassettes_dir=tmp_path / "c", cache_dir=tmp_path / "k") as proxy:
        live = proxy.openai().responses.create(model="gpt-4o", input=STORY, temperature=0).output_text
    with InProcessProxy(mode="replay", cassettes_dir=tmp_path / "c", cache_dir=tmp_path / "k") as proxy:
        assert proxy.openai().responses.create(model="gpt-4o", input=STORY, temperature=0).output_text == live


def test_replay_miss_names_the_input_that_differs(proxy_factory: Callable[..., RunningProxy]) -> None:
    proxy = proxy_factory(mode="auto")
    client_for(proxy).responses.create(model="gpt-4o", input=STORY, temperature=0)
    offline = client_for(replayer(proxy_factory, proxy))
    with pytest.raises(openai.NotFoundError) as caught:
        offline.responses.create(model="gpt-4o", input="Tell me a story about a snow leopard.", temperature=0)
    message = caught.value.message
    assert "seedtape_cassette_miss" in str(caught.value.body) or "no recording" in message
    assert "input:" in message and "snow leopard" in message and "red panda" in message


def test_verify_flags_content_drift_when_the_backend_changes(proxy_factory: Callable[..., RunningProxy], sim: Any) -> None:
    recorder = proxy_factory(mode="auto")
    recorded = client_for(recorder).responses.create(model="gpt-4o", input=STORY, temperature=0).output_text
    verifier = proxy_factory(mode="verify", cache_dir=recorder.settings.cache_dir)
    same = client_for(verifier).responses.with_raw_response.create(model="gpt-4o", input=STORY, temperature=0)
    assert same.headers["x-seedtape-drift"] == "none"
    sim.rotate_fingerprint()
    changed = client_for(verifier).responses.with_raw_response.create(model="gpt-4o", input=STORY, temperature=0)
    assert changed.headers["x-seedtape-drift"] == "content"
    assert changed.parse().output_text != recorded
    log = [json.loads(line) for line in (recorder.settings.cache_dir / "drift.jsonl").read_text().splitlines()]
    assert [entry["kind"] for entry in log] == ["parts", "parts"]
    assert log[-1]["choices"][0]["part"] == "output_text" and log[-1]["first_divergence"] is not None


@pytest.mark.parametrize("fault", ["reset_mid_stream", "end_stream_early"])
def test_a_stream_cut_before_completed_reaches_the_client_broken_and_is_not_recorded(
    fault: str, proxy_factory: Callable[..., RunningProxy], sim: Any
) -> None:
    proxy = proxy_factory(mode="auto")
    sim.inject({"kind": fault, "after_chunks": 4})
    received = []
    with quiet_logger(), pytest.raises((openai.APIError, httpx.HTTPError)):
        for event in client_for(proxy).responses.create(model="gpt-4o", input=STORY, stream=True):
            received.append(event.type)
    assert 0 < len(received) <= 4 and "response.completed" not in received
    assert files(proxy) == []
    whole = [e.type for e in client_for(proxy).responses.create(model="gpt-4o", input=STORY, stream=True)]
    assert whole[-1] == "response.completed" and len(files(proxy)) == 1


@pytest.mark.anyio
async def test_async_client_sees_a_cut_stream_as_broken(proxy_factory: Callable[..., RunningProxy], sim: Any) -> None:
    proxy = proxy_factory(mode="record")
    sim.inject({"kind": "end_stream_early", "after_chunks": 3})
    client = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=OPENAI_KEY, max_retries=0)
    with quiet_logger(), pytest.raises((openai.APIError, httpx.HTTPError)):
        async for _ in await client.responses.create(model="gpt-4o", input=STORY, stream=True):
            pass
    assert files(proxy) == []


def test_stream_end_rules() -> None:
    responses = family_of("responses")
    assert responses.stream_end({"type": "response.completed", "response": {}}) is StreamEnd.COMPLETE
    assert responses.stream_end({"type": "response.incomplete", "response": {}}) is StreamEnd.COMPLETE
    assert responses.stream_end({"type": "response.failed", "response": {}}) is StreamEnd.ERROR
    assert responses.stream_end({"type": "error", "message": "boom"}) is StreamEnd.ERROR
    assert responses.stream_end({"type": "response.output_text.delta", "delta": "x"}) is None
    assert responses.stream_end("[DONE]") is None, "the Responses API never ends with [DONE]"


def test_function_call_arguments_are_compared_as_json() -> None:
    responses = family_of("responses")
    spaced = {"output": [{"type": "function_call", "name": "f", "arguments": '{"b": 1, "a": 2}'}], "status": "completed"}
    compact = {"output": [{"type": "function_call", "name": "f", "arguments": '{"a":2,"b":1}'}], "status": "completed"}
    assert responses.drift_parts(spaced) == responses.drift_parts(compact)
