"""client_shim: real openai clients on the in-process proxy, offline, on both HTTP stacks (issue 5, item 1).

Cassettes are recorded once per module through the in-process proxy in auto mode
against the simulator; every replay test then runs with the network refused at the
socket level and a fresh, empty cache directory, so what it gets can only come from
the cassette folder.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import httpx2
import openai
import pytest

from client_shim import (
    InProcessProxy,
    async_azure_client,
    async_openai_client,
    azure_client,
    http_stack,
    openai_client,
    seedtape_env,
)
from seedtape.app import create_app
from seedtape.config import Settings
from seedtape.serving import serve_in_thread
from seedtape.sim.simulator import SimConfig, Simulator, create_simulator

PANDA = [
    {"role": "system", "content": "You always produce 3-sentence answers."},
    {"role": "user", "content": "Create a story about red panda."},
]
MODEL = "gpt-4o-mini"
SYNC_KINDS = ("openai", "azure")
ASYNC_KINDS = ("async_openai", "async_azure")
STACKS = ("httpx2", "httpx")
CLASSES = {"openai": openai.OpenAI, "azure": openai.AzureOpenAI, "async_openai": openai.AsyncOpenAI, "async_azure": openai.AsyncAzureOpenAI}
ENTROPY_SEED = 5  # the simulator's unseeded draws, fixed so "two different stories" holds on every run


def simulator() -> Simulator:
    """The upstream: the built-in simulator, keeping what it receives (``.received``)."""
    return create_simulator(SimConfig(keep_requests=True), entropy_seed=ENTROPY_SEED)


def upstream_of(sim: Simulator) -> httpx.ASGITransport:
    return httpx.ASGITransport(app=sim.app)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# No network ------------------------------------------------------------------------
class NetworkBlocked(RuntimeError):
    """Raised by the guard; not an OSError, so no HTTP library can map it to a retryable error."""


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Refuse every outgoing connection and name lookup for the test; yields the attempts."""
    attempts: list[str] = []

    def refuse(what: str) -> Callable[..., Any]:
        def blocked(*args: Any, **kwargs: Any) -> Any:
            attempts.append(f"{what}{args!r}")
            raise NetworkBlocked(f"test tried to use the network: {what}")

        return blocked

    monkeypatch.setattr(socket.socket, "connect", refuse("socket.connect"))
    monkeypatch.setattr(socket.socket, "connect_ex", refuse("socket.connect_ex"))
    monkeypatch.setattr(socket, "create_connection", refuse("socket.create_connection"))
    monkeypatch.setattr(socket, "getaddrinfo", refuse("socket.getaddrinfo"))
    yield attempts
    assert attempts == [], f"the test opened connections: {attempts}"


def test_the_guard_really_blocks_connections(no_network: list[str]) -> None:
    with pytest.raises(NetworkBlocked):
        httpx.get("http://127.0.0.1:9/", timeout=1)
    with pytest.raises(NetworkBlocked):
        httpx2.get("http://localhost:9/", timeout=1)
    assert len(no_network) == 2
    no_network.clear()  # expected here; the fixture's own check is for every other test


# Recording once ----------------------------------------------------------------------
def api_of(kind: str) -> str:
    return "azure" if "azure" in kind else "openai"


def make_client(proxy: InProcessProxy, kind: str) -> Any:
    return {"openai": proxy.openai, "azure": proxy.azure, "async_openai": proxy.async_openai, "async_azure": proxy.async_azure}[kind]()


def request(stream: bool) -> dict[str, Any]:
    params: dict[str, Any] = {"model": MODEL, "messages": PANDA, "temperature": 0.1, "seed": 42}
    if stream:
        params |= {"stream": True, "stream_options": {"include_usage": True}}
    return params


@dataclass
class Recorded:
    cassettes: Path
    expected: dict[tuple[str, bool], Any] = field(default_factory=dict)  # (api, stream) -> model_dump(s)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    """Record a plain and a streamed answer for the OpenAI and the Azure API shapes."""
    root = tmp_path_factory.mktemp("recorded")
    sim = simulator()
    result = Recorded(root / "cassettes")
    proxy = InProcessProxy(mode="auto", cassettes_dir=result.cassettes, cache_dir=root / "cache", upstream_transport=upstream_of(sim))
    with proxy:
        for kind in SYNC_KINDS:
            client = make_client(proxy, kind)
            result.expected[(api_of(kind), False)] = client.chat.completions.create(**request(False)).model_dump()
            result.expected[(api_of(kind), True)] = [c.model_dump() for c in client.chat.completions.create(**request(True))]
        assert proxy.stats()["recorded"] == 4
    assert sim.calls == len(sim.received) == 4
    assert len(list(result.cassettes.rglob("*.json"))) == 4
    return result


def replay_proxy(recorded: Recorded, tmp_path: Path, http: str) -> InProcessProxy:
    """A replay proxy on a private copy of the cassettes and an empty cache: the folder is all it has."""
    cassettes = tmp_path / "cassettes"
    shutil.copytree(recorded.cassettes, cassettes)
    return InProcessProxy(cassettes_dir=cassettes, cache_dir=tmp_path / "cache", http=http)


def check_stream(chunks: list[Any], recorded: Recorded, api: str) -> None:
    assert [c.model_dump() for c in chunks] == recorded.expected[(api, True)]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None  # include_usage's final chunk
    # The streamed text is the upstream's answer: the same seeded story as the plain request's.
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text and text == recorded.expected[(api, False)]["choices"][0]["message"]["content"]


# Replay, offline -----------------------------------------------------------------------
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("http", STACKS)
@pytest.mark.parametrize("kind", SYNC_KINDS)
def test_sync_clients_replay_offline(kind: str, http: str, stream: bool, recorded: Recorded, tmp_path: Path, no_network: list[str]) -> None:
    with replay_proxy(recorded, tmp_path, http) as proxy:
        client = make_client(proxy, kind)
        assert isinstance(client, CLASSES[kind])
        assert http_stack(client) == http
        raw = client.chat.completions.with_raw_response.create(**request(stream))
        assert raw.headers["x-seedtape-mode"] == "replay"
        assert raw.headers["x-seedtape-cache"] == "hit"
        answer = raw.parse()
        if stream:
            check_stream(list(answer), recorded, api_of(kind))
        else:
            assert answer.model_dump() == recorded.expected[(api_of(kind), False)]
        assert proxy.stats()["upstream_calls"] == 0
        assert len(proxy.used()) == 1
    assert no_network == []


@pytest.mark.anyio
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("http", STACKS)
@pytest.mark.parametrize("kind", ASYNC_KINDS)
async def test_async_clients_replay_offline(
    kind: str, http: str, stream: bool, recorded: Recorded, tmp_path: Path, no_network: list[str]
) -> None:
    async with replay_proxy(recorded, tmp_path, http) as proxy:
        client = make_client(proxy, kind)
        assert isinstance(client, CLASSES[kind])
        assert http_stack(client) == http
        raw = await client.chat.completions.with_raw_response.create(**request(stream))
        assert raw.headers["x-seedtape-cache"] == "hit"
        answer = raw.parse()  # the legacy raw-response API parses synchronously
        if stream:
            check_stream([chunk async for chunk in answer], recorded, api_of(kind))
        else:
            assert answer.model_dump() == recorded.expected[(api_of(kind), False)]
        assert proxy.stats()["upstream_calls"] == 0
    assert no_network == []


def test_replay_miss_names_the_closest_recording(recorded: Recorded, tmp_path: Path, no_network: list[str]) -> None:
    with replay_proxy(recorded, tmp_path, "httpx2") as proxy:
        client = proxy.openai()
        with pytest.raises(openai.NotFoundError) as caught:
            client.chat.completions.create(**{**request(False), "seed": 7})
        assert caught.value.type == "seedtape_cassette_miss"  # type: ignore[attr-defined]
        assert "seed: 7 != 42" in str(caught.value)
        assert [m.type for m in proxy.misses] == ["seedtape_cassette_miss"]
        assert "seed: 7 != 42" in proxy.misses[0].message


def test_replay_never_forwards_other_routes(recorded: Recorded, tmp_path: Path, no_network: list[str]) -> None:
    with replay_proxy(recorded, tmp_path, "httpx") as proxy:
        with pytest.raises(openai.NotFoundError, match="replay mode never calls upstream"):
            proxy.openai().models.list()
        assert [m.type for m in proxy.misses] == ["seedtape_unrecorded_route"]


# Episodes across clients of one proxy ------------------------------------------------------
def test_episode_counters_are_shared_by_every_client_of_a_proxy(tmp_path: Path, no_network: list[str]) -> None:
    """Two unseeded identical requests are two episodes, whichever clients send them."""
    sim = simulator()
    unseeded = {"model": MODEL, "messages": PANDA, "temperature": 0.7}
    with InProcessProxy(mode="auto", cassettes_dir=tmp_path / "c", cache_dir=tmp_path / "k", upstream_transport=upstream_of(sim)) as proxy:
        first = proxy.openai().chat.completions.create(**unseeded).choices[0].message.content
        second = asyncio.run(proxy.async_openai().chat.completions.create(**unseeded)).choices[0].message.content
    assert first != second and sim.calls == 2

    with InProcessProxy(cassettes_dir=tmp_path / "c", cache_dir=tmp_path / "k2") as proxy:

        async def two_async_clients() -> list[str | None]:
            one = await proxy.async_openai().chat.completions.create(**unseeded)
            two = await proxy.async_openai().chat.completions.create(**unseeded)
            return [one.choices[0].message.content, two.choices[0].message.content]

        assert asyncio.run(two_async_clients()) == [first, second]
        assert proxy.openai().chat.completions.create(**unseeded).choices[0].message.content == second  # past the end: the last
    assert sim.calls == 2


def test_azure_deployment_names_reach_the_proxy_decoded_on_both_paths(tmp_path: Path, no_network: list[str]) -> None:
    """The sync transport decodes the path like ASGITransport does, so both find the same key."""
    sim = simulator()
    params = {"model": "my deployment", "messages": PANDA, "seed": 1}
    with InProcessProxy(mode="auto", cassettes_dir=tmp_path / "c", cache_dir=tmp_path / "k", upstream_transport=upstream_of(sim)) as proxy:
        recorded = asyncio.run(proxy.async_azure().chat.completions.create(**params)).choices[0].message.content
    assert [r.path for r in sim.received] == ["/openai/deployments/my deployment/chat/completions"]
    with InProcessProxy(cassettes_dir=tmp_path / "c", cache_dir=tmp_path / "k") as proxy:
        assert proxy.azure().chat.completions.create(**params).choices[0].message.content == recorded


@pytest.mark.anyio
async def test_app_serves_asgi_clients_of_your_own(recorded: Recorded, tmp_path: Path, no_network: list[str]) -> None:
    async with replay_proxy(recorded, tmp_path, "httpx") as proxy:
        transport = httpx.ASGITransport(app=proxy.app())
        async with httpx.AsyncClient(transport=transport, base_url="http://proxy") as client:
            health = await client.get("/_seedtape/health")
            answer = await client.post("/v1/chat/completions", json=request(False))
        assert health.json()["mode"] == "replay"
        assert answer.status_code == 200 and answer.headers["x-seedtape-cache"] == "hit"
        assert proxy.used() == {(key_cassette(recorded), answer.headers["x-seedtape-key"])}


def key_cassette(recorded: Recorded) -> str:
    return "default"


def test_inprocess_proxy_refuses_settings_and_options_together(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        InProcessProxy(Settings(cassettes_dir=tmp_path), mode="auto")
    with pytest.raises(ValueError):
        InProcessProxy(http="requests")


# Clients for a running proxy -------------------------------------------------------------------
def test_http_stack_names_the_package_of_running_proxy_clients() -> None:
    proxy = "http://127.0.0.1:9"
    assert http_stack(openai_client(proxy)) == "httpx2"  # the SDK's own default client
    assert http_stack(azure_client(proxy, http_client=httpx.Client())) == "httpx"
    assert http_stack(async_openai_client(proxy, http_client=httpx.AsyncClient())) == "httpx"
    assert http_stack(async_azure_client(proxy, http_client=httpx2.AsyncClient())) == "httpx2"
    assert http_stack(httpx2.Client()) == "httpx2"
    with pytest.raises(TypeError):
        http_stack(object())


def test_running_proxy_clients_carry_the_seedtape_headers() -> None:
    client = azure_client("http://127.0.0.1:9/", cassette="c1", mode="replay", session="s1", default_headers={"x-extra": "1"})
    assert str(client.base_url).startswith("http://127.0.0.1:9/openai")
    headers = client.default_headers
    assert headers["x-seedtape-cassette"] == "c1" and headers["x-seedtape-mode"] == "replay"
    assert headers["x-seedtape-session"] == "s1" and headers["x-extra"] == "1"
    assert str(openai_client("http://127.0.0.1:9/").base_url) == "http://127.0.0.1:9/v1/"


# The environment helper ------------------------------------------------------------------------
def test_seedtape_env_sets_every_spelling_and_restores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "https://stale.example/v1")
    monkeypatch.delenv("AZURE_OPENAI_ENDPOINT", raising=False)
    monkeypatch.delenv("OPENAI_API_VERSION", raising=False)
    with seedtape_env("http://127.0.0.1:8787/", api_key="sk-test", api_version="2024-06-01") as values:
        assert os.environ["OPENAI_BASE_URL"] == os.environ["OPENAI_API_BASE"] == "http://127.0.0.1:8787/v1"
        assert os.environ["AZURE_OPENAI_ENDPOINT"] == os.environ["AZURE_API_BASE"] == "http://127.0.0.1:8787"
        assert os.environ["OPENAI_API_KEY"] == os.environ["AZURE_OPENAI_API_KEY"] == "sk-test"
        assert os.environ["OPENAI_API_VERSION"] == "2024-06-01"
        assert values["OPENAI_BASE_URL"] == "http://127.0.0.1:8787/v1"
    assert os.environ["OPENAI_BASE_URL"] == "https://stale.example/v1"
    assert "AZURE_OPENAI_ENDPOINT" not in os.environ and "OPENAI_API_VERSION" not in os.environ


def ask_pydantic_ai(azure: bool) -> str:
    """pydantic-ai builds its own AsyncOpenAI/AsyncAzureOpenAI from the environment."""
    from pydantic_ai import Agent
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.azure import AzureProvider
    from pydantic_ai.providers.openai import OpenAIProvider

    async def ask() -> str:
        provider = AzureProvider() if azure else OpenAIProvider()
        agent = Agent(OpenAIChatModel(MODEL, provider=provider), system_prompt=PANDA[0]["content"])
        async with provider:  # closes the HTTP client the provider made for itself
            result = await agent.run(PANDA[1]["content"], model_settings={"temperature": 0.1, "seed": 42})
        return str(result.output)

    return asyncio.run(ask())


def ask_openai_from_env() -> Any:
    """The baseline: the SDK's own client, built from the environment."""
    with openai.OpenAI() as client:
        return client.chat.completions.create(**request(False))


def test_seedtape_env_with_a_third_party_client_on_a_real_proxy(tmp_path: Path) -> None:
    """pydantic-ai, pointed at a uvicorn-served proxy by the environment alone: record, then replay."""
    sim = simulator()
    common = {"cassettes_dir": tmp_path / "cassettes", "cache_dir": tmp_path / "cache"}
    recording = create_app(Settings(mode="auto", upstream="http://sim.upstream", **common), upstream_transport=upstream_of(sim))
    with serve_in_thread(recording) as url, seedtape_env(url, api_key="sk-test", api_version="2024-06-01"):
        answers = [ask_pydantic_ai(azure=False), ask_pydantic_ai(azure=True), ask_openai_from_env()]
    assert [call.path for call in sim.received] == [
        "/v1/chat/completions",
        f"/openai/deployments/{MODEL}/chat/completions",
        "/v1/chat/completions",
    ]
    # The upstream's answers: one seeded request (same messages, seed, temperature) through three clients, one story.
    assert "panda" in answers[0] and answers[0] == answers[1] == answers[2].choices[0].message.content

    replaying = create_app(Settings(mode="replay", upstream="http://127.0.0.1:9", **common))
    with serve_in_thread(replaying) as url, seedtape_env(url, api_key="sk-other", api_version="2024-06-01"):
        again = [ask_pydantic_ai(azure=False), ask_pydantic_ai(azure=True), ask_openai_from_env()]
    assert again[:2] == answers[:2]
    assert again[2].model_dump() == answers[2].model_dump()
    assert sim.calls == 3  # the replay did not reach upstream
    assert replaying.state.engine.coordinator.stats()["hits"] == 3


def test_third_party_client_on_the_in_process_proxy(tmp_path: Path, no_network: list[str]) -> None:
    """Libraries that take a base URL and an HTTP client use the in-process proxy with no port at all."""
    from pydantic_ai import Agent
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    def ask(proxy: InProcessProxy) -> str:
        async def run() -> str:
            provider = OpenAIProvider(base_url=proxy.base_url, api_key="sk-test", http_client=proxy.async_http_client())
            result = await Agent(OpenAIChatModel(MODEL, provider=provider)).run("Create a story about red panda.")
            return str(result.output)

        return asyncio.run(run())

    sim = simulator()
    folders = {"cassettes_dir": tmp_path / "c", "cache_dir": tmp_path / "k"}
    with InProcessProxy(mode="auto", upstream_transport=upstream_of(sim), **folders) as proxy:
        recorded = ask(proxy)
    with InProcessProxy(**folders) as proxy:
        assert ask(proxy) == recorded
    assert sim.calls == 1 and no_network == []
