"""The simulator seen through the real ``openai`` SDK, the way seedtape's users and tests see it.

Most tests go over real sockets (uvicorn on 127.0.0.1, one server for the session);
some run in-process through an ASGI transport, which is how offline suites use it.
"""

from __future__ import annotations

import gzip
import json
import re
import time
from random import Random

import httpx
import httpx2
import openai
import pytest

from seedtape.serving import serve_in_thread as serve_app
from seedtape.sim import text as sim_text
from seedtape.sim.simulator import SimConfig, Simulator, create_simulator
from tests.conftest import quiet_logger

API_VERSION = "2024-10-21"
KEY = "sk-test-DO-NOT-ECHO-0123456789"
PANDA = [
    {"role": "system", "content": "You always produce 3-sentence answers."},
    {"role": "user", "content": "Create a story about red panda."},
]
UNIVERSE = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Tell me a story about how the universe began?"},
]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["location"],
        },
    },
}
CLOCK = {
    "type": "function",
    "function": {
        "name": "get_local_time",
        "description": "Current local time in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture(scope="session")
def sim() -> Simulator:
    return create_simulator()


@pytest.fixture(scope="session")
def sim_url(sim: Simulator):
    with serve_app(sim.app) as url:
        yield url


@pytest.fixture(autouse=True)
def fresh(sim: Simulator) -> None:
    """One server for the session, but every test starts from a clean simulator."""
    sim.reset()
    sim.config = SimConfig()


@pytest.fixture
def azure(sim_url: str) -> openai.AzureOpenAI:
    return openai.AzureOpenAI(azure_endpoint=sim_url, api_key=KEY, api_version=API_VERSION, max_retries=0)


@pytest.fixture
def oai(sim_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{sim_url}/v1", api_key=KEY, max_retries=0)


def text_of(response) -> str:
    return response.choices[0].message.content


def shared_words(a: str, b: str) -> int:
    """How many words two texts share before they first differ (the seed documents' measure)."""
    n = 0
    for x, y in zip(a.split(), b.split(), strict=False):
        if x != y:
            break
        n += 1
    return n


def extra(model) -> dict:
    """Fields the SDK's models do not declare (Azure's filter results)."""
    return model.model_extra or {}


# --- the seed, as the Azure page and the notebook describe it ---------------------------


def test_same_seed_same_text_with_azure_shapes(azure, sim):
    runs = [azure.chat.completions.create(model="gpt-4o", messages=PANDA, temperature=0.1, seed=42) for _ in range(2)]
    first, second = (text_of(r) for r in runs)
    assert first == second
    assert "red panda" in first
    assert len(re.split(r"(?<=[.!?])\s+", first)) == 3  # "You always produce 3-sentence answers."
    assert runs[0].system_fingerprint == "fp_sim0001"
    assert runs[0].model == "gpt-4o-2024-08-06"  # Azure reports the model behind the deployment
    assert runs[0].id.startswith("chatcmpl-") and runs[0].id != runs[1].id
    choice = runs[0].choices[0]
    assert choice.finish_reason == "stop" and choice.message.refusal is None
    assert extra(choice)["content_filter_results"]["violence"] == {"filtered": False, "severity": "safe"}
    assert extra(runs[0])["prompt_filter_results"][0]["prompt_index"] == 0
    assert runs[0].usage.total_tokens == runs[0].usage.prompt_tokens + runs[0].usage.completion_tokens
    assert sim.calls == 2


def test_without_seed_texts_differ_after_a_shared_opening(azure):
    texts = [text_of(azure.chat.completions.create(model="gpt-4o", messages=PANDA, temperature=0.1)) for _ in range(3)]
    assert len(set(texts)) == 3
    for other in texts[1:]:  # like the notebook: same opening, then they go their own way
        assert 8 <= shared_words(texts[0], other) < len(texts[0].split())


def test_default_temperature_varies_and_temperature_zero_does_not(oai):
    hot = {text_of(oai.chat.completions.create(model="gpt-4o", messages=UNIVERSE)) for _ in range(3)}
    cold = {text_of(oai.chat.completions.create(model="gpt-4o", messages=UNIVERSE, temperature=0)) for _ in range(3)}
    assert len(hot) == 3
    assert len(cold) == 1


def test_rotating_the_fingerprint_changes_seeded_text_late(azure, sim, sim_url):
    def ask():
        return azure.chat.completions.create(model="gpt-4o", messages=UNIVERSE, temperature=0.7, max_tokens=50, seed=42)

    before = ask()
    rotated = httpx.post(f"{sim_url}/_sim/rotate").json()
    after = ask()
    assert rotated["previous"] == before.system_fingerprint == "fp_sim0001"
    assert after.system_fingerprint == rotated["fingerprint"] != "fp_sim0001"
    assert text_of(after) != text_of(before)
    assert shared_words(text_of(before), text_of(after)) >= 25  # only the later part of 50 tokens changed
    assert text_of(ask()) == text_of(after)  # reproducible on the new backend too
    sim.rotate_fingerprint("fp_sim0001")
    assert text_of(ask()) == text_of(before)


def test_seed_drift_changes_only_the_later_part(azure, sim_url):
    def ask() -> str:
        return text_of(azure.chat.completions.create(model="gpt-4o", messages=UNIVERSE, temperature=0.7, max_tokens=50, seed=42))

    baseline = ask()
    assert httpx.post(f"{sim_url}/_sim/config", json={"seed_drift": 1.0}).json()["config"]["seed_drift"] == 1.0
    for drifted in (ask(), ask(), ask()):
        assert drifted != baseline
        assert 25 <= shared_words(baseline, drifted) < 50


def test_longer_answers_drift_more_often():
    """The Azure page: larger max_tokens values give less deterministic responses."""

    def drift_rate(max_tokens: int | None) -> float:
        body = {"model": "gpt-4o", "messages": UNIVERSE, "temperature": 0.7, "seed": 42}
        req = sim_text.TextRequest.from_body(body, UNIVERSE, max_tokens)
        entropy = Random(1234)
        baseline = sim_text.generate(req, fingerprint="fp", choice_index=0, entropy=entropy, seed_drift=0)
        runs = [sim_text.generate(req, fingerprint="fp", choice_index=0, entropy=entropy, seed_drift=0.3) for _ in range(200)]
        return sum(run != baseline for run in runs) / len(runs)

    short, medium, long = drift_rate(30), drift_rate(50), drift_rate(None)  # the story is ~80 words
    assert short < medium < long and long > 0.3


def test_max_tokens_stop_n_and_json_mode(oai):
    def ask(**kw):
        return oai.chat.completions.create(model="gpt-4o", messages=UNIVERSE, seed=9, temperature=0.7, **kw)

    full = text_of(ask())
    cut = ask(max_tokens=10)
    assert cut.choices[0].finish_reason == "length" and cut.usage.completion_tokens == 10
    assert len(text_of(cut).split()) == 10
    stop_word = full.split()[5]
    stopped = ask(stop=[" " + stop_word])
    assert stopped.choices[0].finish_reason == "stop" and full.startswith(text_of(stopped))
    assert stop_word not in text_of(stopped).split()[5:6]
    several = ask(n=3)
    assert [c.index for c in several.choices] == [0, 1, 2]
    assert text_of(several) == full  # choice 0 is the n=1 answer
    assert len({c.message.content for c in several.choices}) == 3
    assert [c.message.content for c in ask(n=3).choices] == [c.message.content for c in several.choices]
    greedy = oai.chat.completions.create(model="gpt-4o", messages=UNIVERSE, temperature=0, n=2)
    assert greedy.choices[0].message.content == greedy.choices[1].message.content
    as_json = ask(response_format={"type": "json_object"})
    assert json.loads(text_of(as_json))["answer"]


# --- streaming ---------------------------------------------------------------------------


def test_stream_adds_up_to_the_non_streamed_text(azure):
    kwargs = {"model": "gpt-4o", "messages": PANDA, "temperature": 0.1, "seed": 7}
    whole = azure.chat.completions.create(**kwargs)
    chunks = list(azure.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True}))
    opening = chunks[0]  # Azure: filter results first, nothing else
    assert opening.choices == [] and opening.id == "" and extra(opening)["prompt_filter_results"]
    assert chunks[1].choices[0].delta.role == "assistant"
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == text_of(whole)
    body = chunks[1:]
    assert all(c.object == "chat.completion.chunk" and c.system_fingerprint == "fp_sim0001" for c in body)
    content = [c for c in body if c.choices and c.choices[0].delta.content]
    assert len(content) > 10 and all(extra(c.choices[0])["content_filter_results"]["hate"] for c in content)
    finals = [c.choices[0].finish_reason for c in body if c.choices and c.choices[0].finish_reason]
    assert finals == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_stream_framing_on_the_wire(sim_url):
    body = {"model": "gpt-4o", "messages": PANDA, "seed": 1, "stream": True, "max_tokens": 5}
    response = httpx.post(f"{sim_url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"})
    assert response.headers["content-type"].startswith("text/event-stream")
    raw = response.text
    assert raw.endswith("data: [DONE]\n\n")
    events = raw.split("\n\n")[:-1]
    assert all(e.startswith("data: ") and "\n" not in e for e in events)
    chunks = [json.loads(e[6:]) for e in events[:-1]]
    assert all("prompt_filter_results" not in c and "content_filter_results" not in c["choices"][0] for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


def test_stream_delays_are_real(oai, sim_url):
    httpx.post(f"{sim_url}/_sim/config", json={"stream_delay_ms": 40})
    started = time.monotonic()
    arrivals = []
    for _chunk in oai.chat.completions.create(model="gpt-4o", messages=PANDA, max_tokens=4, stream=True):
        arrivals.append(time.monotonic() - started)
    assert len(arrivals) >= 5
    assert arrivals[-1] - arrivals[0] >= 0.04 * (len(arrivals) - 2)  # chunks trickle in, not one buffered blob


def test_streamed_tool_calls_assemble_into_the_same_call(azure):
    kwargs = {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "What's the weather in Paris?"}],
        "tools": [WEATHER],
        "seed": 3,
    }
    whole = azure.chat.completions.create(**kwargs).choices[0].message.tool_calls[0]
    name, args, finish = "", "", None
    for chunk in azure.chat.completions.create(**kwargs, stream=True):
        for choice in chunk.choices:
            for call in choice.delta.tool_calls or []:
                name += call.function.name or ""
                args += call.function.arguments or ""
            finish = choice.finish_reason or finish
    assert (name, args, finish) == (whole.function.name, whole.function.arguments, "tool_calls")


# --- tools, embeddings, legacy completions -------------------------------------------------


def test_tool_calls_follow_the_question_and_tool_choice(oai):
    def ask(question: str, **kw):
        messages = [{"role": "user", "content": question}]
        return oai.chat.completions.create(model="gpt-4o", messages=messages, tools=[WEATHER, CLOCK], **kw).choices[0]

    one = ask("What's the weather in Paris in celsius?")
    assert one.finish_reason == "tool_calls" and one.message.content is None
    (call,) = one.message.tool_calls
    assert call.id.startswith("call_") and call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"location": "Paris", "unit": "celsius"}
    both = ask("What's the weather and the local time in Paris?")
    assert {c.function.name for c in both.message.tool_calls} == {"get_weather", "get_local_time"}
    assert json.loads(both.message.tool_calls[1].function.arguments) == {"city": "Paris"}
    forced = ask("Hello there", tool_choice={"type": "function", "function": {"name": "get_local_time"}})
    assert [c.function.name for c in forced.message.tool_calls] == ["get_local_time"]
    assert ask("What's the weather in Paris?", tool_choice="none").message.tool_calls is None
    assert ask("Hello there").message.content  # nothing matches: plain text
    after_tool = oai.chat.completions.create(
        model="gpt-4o",
        tools=[WEATHER],
        messages=[
            {"role": "user", "content": "What's the weather in Paris?"},
            {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "content": "18 degrees and sunny"},
        ],
    ).choices[0]
    assert after_tool.finish_reason == "stop" and "18 degrees and sunny" in after_tool.message.content


def test_embeddings_are_deterministic_unit_vectors(oai, azure, sim):
    packed = oai.embeddings.create(model="text-embedding-3-small", input=["red panda", "universe"])  # SDK asks base64
    plain = oai.embeddings.create(model="text-embedding-3-small", input="red panda", encoding_format="float")
    assert len(packed.data) == 2 and len(packed.data[0].embedding) == 16
    assert packed.data[0].embedding == pytest.approx(plain.data[0].embedding, abs=1e-6)
    assert packed.data[0].embedding != packed.data[1].embedding
    assert sum(v * v for v in plain.data[0].embedding) == pytest.approx(1.0, abs=1e-4)
    assert plain.usage.prompt_tokens == 2
    small = azure.embeddings.create(model="my-embedding-deployment", input="red panda", dimensions=8)
    assert len(small.data[0].embedding) == 8
    assert sim.calls_by_route["embeddings"] == 3


def test_legacy_completions(oai, azure):
    first = oai.completions.create(model="gpt-35-turbo-instruct", prompt="Tell me about red pandas", seed=5)
    again = oai.completions.create(model="gpt-35-turbo-instruct", prompt="Tell me about red pandas", seed=5)
    assert first.object == "text_completion" and first.id.startswith("cmpl-")
    assert first.choices[0].text == again.choices[0].text
    assert first.choices[0].finish_reason == "length" and len(first.choices[0].text.split()) == 16  # default max_tokens
    batch = azure.completions.create(model="instruct", prompt=["red pandas", "the universe"], max_tokens=30)
    assert [c.index for c in batch.choices] == [0, 1]
    assert extra(batch.choices[0])["content_filter_results"]
    streamed = "".join(
        c.choices[0].text
        for c in oai.completions.create(model="gpt-35-turbo-instruct", prompt="Tell me about red pandas", seed=5, stream=True)
    )
    assert streamed == first.choices[0].text


# --- faults ------------------------------------------------------------------------------


def test_rate_limit_fault_repeats_then_clears(azure, sim):
    sim.inject({"status": 429, "retry_after": 2, "count": 2})
    for _ in range(2):
        with pytest.raises(openai.RateLimitError) as caught:
            azure.chat.completions.create(model="gpt-4o", messages=PANDA)
        assert caught.value.response.headers["retry-after"] == "2"
        assert caught.value.code == "429" and "retry after 2 seconds" in caught.value.message
    assert text_of(azure.chat.completions.create(model="gpt-4o", messages=PANDA))
    assert sim.calls == 3


@pytest.mark.parametrize(
    ("status", "error"),
    [(500, openai.InternalServerError), (401, openai.AuthenticationError), (400, openai.BadRequestError)],
)
def test_status_faults_through_the_admin_route(oai, sim_url, status, error):
    assert httpx.post(f"{sim_url}/_sim/fault", json={"status": status}).json() == {"queued": 1}
    with pytest.raises(error) as caught:
        oai.chat.completions.create(model="gpt-4o", messages=PANDA)
    assert set(caught.value.response.json()["error"]) == {"message", "type", "param", "code"}


def test_reset_mid_stream_drops_the_connection_before_done(azure, sim, sim_url):
    sim.inject({"kind": "reset_mid_stream", "after_chunks": 3})
    received = []
    with quiet_logger(), pytest.raises(openai.APIConnectionError):
        for chunk in azure.chat.completions.create(model="gpt-4o", messages=PANDA, stream=True):
            received.append(chunk)
    assert len(received) == 3
    sim.inject({"kind": "reset_mid_stream", "after_chunks": 2})
    body = {"model": "gpt-4o", "messages": PANDA, "stream": True}
    raw = b""
    with (
        quiet_logger(),
        pytest.raises(httpx.RemoteProtocolError),
        httpx.stream("POST", f"{sim_url}/v1/chat/completions", json=body, headers={"api-key": KEY}) as response,
    ):
        for part in response.iter_bytes():
            raw += part
    assert raw.count(b"data: ") == 2 and b"[DONE]" not in raw


def test_broken_bodies(sim, sim_url):
    url, body, headers = f"{sim_url}/v1/chat/completions", {"model": "gpt-4o", "messages": PANDA}, {"api-key": KEY}
    sim.inject({"kind": "truncated_json"})
    cut = httpx.post(url, json=body, headers=headers)
    assert cut.status_code == 200 and cut.headers["content-type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut.content)
    sim.inject({"kind": "not_json"})
    html = httpx.post(url, json=body, headers=headers)
    assert html.status_code == 200 and html.text.startswith("<html>")
    assert httpx.post(url, json=body, headers=headers).json()["object"] == "chat.completion"  # faults are used up


def test_gzip_fault_sends_real_gzip(sim, sim_url):
    url, headers = f"{sim_url}/openai/deployments/gpt-4o/chat/completions?api-version={API_VERSION}", {"api-key": KEY}
    body = {"messages": PANDA, "seed": 1}
    sim.inject({"kind": "gzip", "count": 2})
    with httpx.stream("POST", url, json=body, headers=headers) as response:
        raw = b"".join(response.iter_raw())
    assert response.headers["content-encoding"] == "gzip" and raw[:2] == b"\x1f\x8b"
    assert json.loads(gzip.decompress(raw))["choices"][0]["message"]["content"]
    streamed = httpx.post(url, json={**body, "stream": True}, headers=headers)  # httpx decodes gzip itself
    assert streamed.headers["content-encoding"] == "gzip" and streamed.text.endswith("data: [DONE]\n\n")


def test_delay_fault_trips_a_client_timeout(azure, sim):
    sim.inject({"kind": "delay", "ms": 700})
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        azure.with_options(timeout=0.2).chat.completions.create(model="gpt-4o", messages=PANDA)
    assert time.monotonic() - started < 0.6
    sim.config.first_byte_delay_ms = 150
    started = time.monotonic()
    assert text_of(azure.chat.completions.create(model="gpt-4o", messages=PANDA))  # the delay fault was used up
    assert time.monotonic() - started >= 0.15


def test_bad_faults_are_refused(sim, sim_url):
    with pytest.raises(ValueError, match="kind"):
        sim.inject({"kind": "meteor"})
    assert httpx.post(f"{sim_url}/_sim/fault", json={"status": 200}).status_code == 400


# --- credentials, errors, admin -----------------------------------------------------------


def test_requests_without_a_key_get_azure_401(sim_url, sim):
    body = {"messages": PANDA}
    azure_url = f"{sim_url}/openai/deployments/gpt-4o/chat/completions?api-version={API_VERSION}"
    denied = httpx.post(azure_url, json=body)
    assert denied.status_code == 401
    assert denied.json()["error"]["code"] == "401" and denied.json()["error"]["message"].startswith("Access denied")
    assert httpx.post(azure_url, json=body, headers={"Authorization": "Bearer x"}).status_code == 200
    openai_denied = httpx.post(f"{sim_url}/v1/chat/completions", json={"model": "m", **body})
    assert openai_denied.status_code == 401 and "API key" in openai_denied.json()["error"]["message"]
    assert sim.calls == 3  # refused requests still count as upstream calls


def test_credentials_are_never_echoed(azure, oai, sim, sim_url, caplog):
    azure.chat.completions.create(model="gpt-4o", messages=PANDA)
    oai.embeddings.create(model="e", input="x")
    sim.inject({"status": 401})
    seen = [httpx.post(f"{sim_url}/v1/chat/completions", json={"model": "m", "messages": PANDA}, headers={"api-key": KEY})]
    seen.append(httpx.post(f"{sim_url}/nowhere", headers={"api-key": KEY}))
    seen.append(httpx.get(f"{sim_url}/_sim/state"))
    for response in seen:
        assert KEY not in response.text and KEY not in str(response.headers)
    assert KEY not in json.dumps(list(sim.requests)) and KEY not in caplog.text
    assert {r["headers"].get("api-key", r["headers"].get("authorization")) for r in sim.requests} == {"<redacted>"}


def test_openai_shaped_errors_for_bad_input(oai, sim_url):
    headers = {"api-key": KEY}
    malformed = httpx.post(f"{sim_url}/v1/chat/completions", content=b"{not json", headers=headers)
    assert malformed.status_code == 400 and malformed.json()["error"]["type"] == "invalid_request_error"
    unknown = httpx.post(f"{sim_url}/v2/whatever", json={}, headers=headers)
    assert unknown.status_code == 404 and set(unknown.json()["error"]) == {"message", "type", "param", "code"}
    no_version = httpx.post(f"{sim_url}/openai/deployments/d/chat/completions", json={"messages": PANDA}, headers=headers)
    assert no_version.status_code == 404
    with pytest.raises(openai.BadRequestError):
        oai.chat.completions.create(model="gpt-4o", messages=PANDA, temperature=5)
    models = oai.models.list()
    assert "gpt-4o-2024-08-06" in [m.id for m in models.data]


def test_route_shapes_and_omitted_fingerprint(oai, sim_url, sim):
    plain = oai.chat.completions.create(model="gpt-4o", messages=PANDA)
    assert "prompt_filter_results" not in extra(plain) and "content_filter_results" not in extra(plain.choices[0])
    v1 = openai.OpenAI(base_url=f"{sim_url}/openai/v1", api_key=KEY, max_retries=0)
    assert extra(v1.chat.completions.create(model="gpt-4o", messages=PANDA))["prompt_filter_results"]
    sim.config.omit_fingerprint = True
    assert oai.chat.completions.create(model="gpt-4o", messages=PANDA).system_fingerprint is None
    assert sim.calls_by_route["chat/completions"] == 3


def test_admin_routes(sim, sim_url):
    state = httpx.get(f"{sim_url}/_sim/state").json()
    assert state["fingerprint"] == "fp_sim0001" and state["calls"] == 0 and state["config"]["seed_drift"] == 0
    changed = httpx.post(f"{sim_url}/_sim/config", json={"model": "gpt-4o-mini", "first_byte_delay_ms": 1}).json()
    assert changed["config"]["model"] == sim.config.model == "gpt-4o-mini"
    assert httpx.post(f"{sim_url}/_sim/config", json={"colour": "red"}).status_code == 400
    assert httpx.post(f"{sim_url}/_sim/config", json={"seed_drift": 2}).status_code == 400
    assert httpx.post(f"{sim_url}/_sim/rotate", json={"fingerprint": "fp_custom"}).json()["fingerprint"] == "fp_custom"
    httpx.post(f"{sim_url}/_sim/fault", json={"kind": "not_json"})
    assert httpx.get(f"{sim_url}/_sim/state").json()["pending_faults"][0]["kind"] == "not_json"
    assert httpx.post(f"{sim_url}/_sim/reset").json()["pending_faults"] == []


# --- options for tests of the proxy: echo, keep_requests ---------------------------------------


def test_both_test_options_are_off_by_default(oai, sim):
    assert (sim.config.echo, sim.config.keep_requests) == (False, False)
    answer = text_of(oai.chat.completions.create(model="gpt-4o", messages=PANDA, seed=42))
    assert answer != PANDA[-1]["content"] and sim.received == []


def test_echo_answers_with_the_last_user_message_in_every_shape(oai, azure, sim, sim_url):
    sim.update_config({"echo": True})
    messages = [*PANDA, {"role": "assistant", "content": "Once."}, {"role": "user", "content": "My card is 4111; write to me."}]
    plain = oai.chat.completions.create(model="gpt-4o", messages=messages)
    assert text_of(plain) == "My card is 4111; write to me." and plain.system_fingerprint == "fp_sim0001"
    stream = azure.chat.completions.create(model="gpt-4o", messages=PANDA, seed=1, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "Create a story about red panda."
    assert text_of(oai.chat.completions.create(model="gpt-4o", messages=PANDA, max_tokens=3)) == "Create a story"
    legacy = oai.completions.create(model="gpt-35-turbo-instruct", prompt="Say this is a test", max_tokens=20)
    assert legacy.choices[0].text == " Say this is a test"
    assert httpx.post(f"{sim_url}/_sim/config", json={"echo": "yes"}).status_code == 400
    sim.update_config({"echo": False})
    assert text_of(oai.chat.completions.create(model="gpt-4o", messages=PANDA)) != "Create a story about red panda."


def test_keep_requests_keeps_every_api_request_as_sent_in_memory_only(oai, sim, sim_url, caplog):
    assert httpx.post(f"{sim_url}/_sim/config", json={"keep_requests": True}).json()["config"]["keep_requests"] is True
    oai.with_options(default_headers={"x-extra": "1"}).chat.completions.create(model="gpt-4o", messages=PANDA, seed=42)
    oai.models.list()
    httpx.post(f"{sim_url}/nowhere", content=b"{not json", headers={"api-key": KEY})
    httpx.post(f"{sim_url}/v1/embeddings", json={"model": "e", "input": "x"})  # refused: no key, still received
    httpx.get(f"{sim_url}/_sim/state")  # admin routes are not API requests
    chat, models, nowhere, refused = sim.received
    assert (chat.method, chat.path, chat.body["seed"], chat.body["messages"]) == ("POST", "/v1/chat/completions", 42, PANDA)
    assert chat.headers["authorization"] == f"Bearer {KEY}" and chat.headers["x-extra"] == "1"
    assert (models.method, models.path, models.body) == ("GET", "/v1/models", None)
    assert (nowhere.path, nowhere.body, nowhere.headers["api-key"]) == ("/nowhere", None, KEY)
    assert refused.path == "/v1/embeddings" and "authorization" not in refused.headers and sim.calls == 2
    for response in (httpx.get(f"{sim_url}/_sim/state"), httpx.post(f"{sim_url}/_sim/reset")):
        assert KEY not in response.text, "kept for the test's eyes only"
    assert KEY not in caplog.text and KEY not in json.dumps(list(sim.requests))
    assert sim.received == [], "reset forgets them"


def test_keep_requests_holds_a_bounded_number(sim, sim_url, monkeypatch):
    monkeypatch.setattr("seedtape.sim.simulator.KEPT_REQUESTS", 3)
    sim.config.keep_requests = True
    with httpx.Client(base_url=sim_url) as client:
        for n in range(5):
            client.post(f"/v{n}/nowhere")
    assert [r.path for r in sim.received] == ["/v2/nowhere", "/v3/nowhere", "/v4/nowhere"]


# --- async, over sockets and in-process -------------------------------------------------------


@pytest.mark.anyio
async def test_async_azure_client_streams_over_http(sim_url):
    client = openai.AsyncAzureOpenAI(azure_endpoint=sim_url, api_key=KEY, api_version=API_VERSION, max_retries=0)
    kwargs = {"model": "gpt-4o", "messages": UNIVERSE, "seed": 42, "temperature": 0.7, "max_tokens": 50}
    stream = await client.chat.completions.create(**kwargs, stream=True)
    streamed = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    whole = await client.chat.completions.create(**kwargs)
    assert streamed == text_of(whole) and whole.choices[0].finish_reason == "length"
    await client.close()


@pytest.mark.anyio
@pytest.mark.parametrize("http", [httpx, httpx2], ids=["httpx", "httpx2"])
async def test_in_process_without_a_port(http):
    """Offline suites talk to the app through an ASGI transport: no server, no socket."""
    sim = create_simulator(SimConfig(fingerprint="fp_inproc"))
    async with http.AsyncClient(transport=http.ASGITransport(app=sim.app), base_url="http://sim") as transport_client:
        client = openai.AsyncOpenAI(base_url="http://sim/v1", api_key=KEY, http_client=transport_client, max_retries=0)
        first = await client.chat.completions.create(model="gpt-4o", messages=PANDA, seed=42, temperature=0.1)
        second = await client.chat.completions.create(model="gpt-4o", messages=PANDA, seed=42, temperature=0.1)
        stream = await client.chat.completions.create(model="gpt-4o", messages=PANDA, seed=42, temperature=0.1, stream=True)
        streamed = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text_of(first) == text_of(second) == streamed
    assert first.system_fingerprint == "fp_inproc"
    assert sim.calls == 3
