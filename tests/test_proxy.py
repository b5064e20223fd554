"""The core proxy through the real openai SDK and a real uvicorn server (issue 2)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import brotli
import httpx
import openai
import pytest

from client_shim import async_azure_client, async_openai_client, azure_client, openai_client
from seedtape.app import create_app
from seedtape.config import Settings
from tests.conftest import AZURE_KEY, OPENAI_KEY, RunningProxy, scan_for_secrets

OFFLINE = "http://127.0.0.1:9"
PANDA = [
    {"role": "system", "content": "You always produce 3-sentence answers."},
    {"role": "user", "content": "Create a story about red panda."},
]


def ask(client: openai.OpenAI, **params: Any) -> tuple[str, httpx.Headers]:
    params.setdefault("model", "gpt-4")
    params.setdefault("messages", PANDA)
    raw = client.chat.completions.with_raw_response.create(**params)
    return raw.parse().choices[0].message.content or "", raw.headers


def cassette_files(proxy: RunningProxy, cassette: str = "default") -> list[Path]:
    return sorted((proxy.settings.cassettes_dir / cassette).glob("*.json"))


@pytest.mark.parametrize("kind", ["openai", "azure"])
def test_record_then_hit_then_replay_offline(kind: str, proxy_factory: Callable[..., RunningProxy], sim: Any) -> None:
    proxy = proxy_factory(mode="auto")
    make = openai_client if kind == "openai" else azure_client
    key = OPENAI_KEY if kind == "openai" else AZURE_KEY
    client = make(proxy.url, api_key=key, max_retries=0)

    first, h1 = ask(client, seed=42, temperature=0.1)
    assert h1["x-seedtape-cache"] == "recorded" and h1["x-seedtape-mode"] == "auto" and h1["x-seedtape-episode"] == "1"
    assert sim.calls == 1
    second, h2 = ask(client, seed=42, temperature=0.1)
    assert (second, h2["x-seedtape-cache"], h2["x-seedtape-key"]) == (first, "hit", h1["x-seedtape-key"])
    assert sim.calls == 1, "the identical seeded call must not reach upstream"

    other, h3 = ask(client, seed=7, temperature=0.1)
    assert h3["x-seedtape-key"] != h1["x-seedtape-key"] and h3["x-seedtape-cache"] == "recorded"
    assert sim.calls == 2
    assert len(cassette_files(proxy)) == 2

    offline = proxy_factory(mode="replay", upstream=OFFLINE, cache_dir=proxy.settings.cache_dir.parent / "other-cache")
    replay_client = make(offline.url, api_key="dummy", max_retries=0)
    assert ask(replay_client, seed=42, temperature=0.1)[0] == first
    assert ask(replay_client, seed=7, temperature=0.1)[0] == other
    assert scan_for_secrets(proxy.settings.cassettes_dir.parent) == []


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["openai", "azure"])
async def test_async_clients_record_and_replay(kind: str, proxy_factory: Callable[..., RunningProxy], sim: Any) -> None:
    proxy = proxy_factory(mode="auto")
    make = async_openai_client if kind == "openai" else async_azure_client
    async with make(proxy.url, api_key=AZURE_KEY, max_retries=0) as client:
        first = await client.chat.completions.create(model="gpt-4", messages=PANDA, seed=42, temperature=0.1)
        again = await client.chat.completions.create(model="gpt-4", messages=PANDA, seed=42, temperature=0.1)
    assert again.model_dump() == first.model_dump()
    assert sim.calls == 1
    offline = proxy_factory(mode="replay", upstream=OFFLINE)
    async with make(offline.url, max_retries=0) as client:
        replayed = await client.chat.completions.create(model="gpt-4", messages=PANDA, seed=42, temperature=0.1)
    assert replayed.model_dump() == first.model_dump()
    assert replayed.system_fingerprint == first.system_fingerprint and first.system_fingerprint


def test_replay_miss_names_closest_recording_and_differences(proxy_factory: Callable[..., RunningProxy]) -> None:
    recorder = proxy_factory(mode="auto")
    ask(azure_client(recorder.url, api_key=AZURE_KEY), seed=42, temperature=0.1)
    replay = proxy_factory(mode="replay", upstream=OFFLINE)
    client = azure_client(replay.url, max_retries=0)
    with pytest.raises(openai.NotFoundError) as caught:
        ask(client, seed=7, temperature=0.1)
    error = caught.value.body
    assert isinstance(error, dict) and error["type"] == "seedtape_cassette_miss"
    assert "seed: 7 != 42" in error["message"]
    assert "Closest recorded request" in error["message"] and "gpt-4" in error["message"]
    assert caught.value.response.headers["x-seedtape-cache"] == "miss"


def test_replay_miss_in_empty_cassette_says_so(proxy_factory: Callable[..., RunningProxy]) -> None:
    replay = proxy_factory(mode="replay", upstream=OFFLINE)
    with pytest.raises(openai.NotFoundError, match="cassette is empty"):
        ask(openai_client(replay.url, max_retries=0), seed=1)


def test_unseeded_repeats_are_episodes_replayed_in_order(proxy_factory: Callable[..., RunningProxy], sim: Any) -> None:
    proxy = proxy_factory(mode="auto")
    client = azure_client(proxy.url, api_key=AZURE_KEY)
    one, h1 = ask(client, temperature=0.1)
    two, h2 = ask(client, temperature=0.1)
    assert one != two, "the simulator varies unseeded answers, like the service"
    assert (h1["x-seedtape-episode"], h2["x-seedtape-episode"]) == ("1", "2")
    assert h1["x-seedtape-key"] == h2["x-seedtape-key"]
    [path] = cassette_files(proxy)
    assert len(json.loads(path.read_text())["episodes"]) == 2

    replay = proxy_factory(mode="replay", upstream=OFFLINE)
    replay_client = azure_client(replay.url)
    assert [ask(replay_client, temperature=0.1)[0] for _ in range(3)] == [one, two, two]  # past the end: the last repeats


def test_rerecording_rewrites_episodes_instead_of_appending(proxy_factory: Callable[..., RunningProxy]) -> None:
    first_run = proxy_factory(mode="record")
    client = azure_client(first_run.url, api_key=AZURE_KEY)
    old = [ask(client, temperature=0.9)[0] for _ in range(2)]
    [path] = cassette_files(first_run)
    second_run = proxy_factory(mode="record")  # a new proxy run is a new session
    client = azure_client(second_run.url, api_key=AZURE_KEY)
    new = [ask(client, temperature=0.9)[0] for _ in range(2)]
    episodes = json.loads(path.read_text())["episodes"]
    assert len(episodes) == 2
    assert [e["body"]["choices"][0]["message"]["content"] for e in episodes] == new != old


def test_session_header_restarts_episode_counters(proxy_factory: Callable[..., RunningProxy]) -> None:
    proxy = proxy_factory(mode="auto")
    texts = {}
    for session in ("test-a", "test-b"):
        client = azure_client(proxy.url, api_key=AZURE_KEY, session=session)
        texts[session] = [ask(client, temperature=0.5)[0] for _ in range(2)]
    assert texts["test-a"] == texts["test-b"], "each session starts again at episode 1"


def test_auto_mode_seeded_past_the_end_is_served_from_cache(proxy_factory: Callable[..., RunningProxy], sim: Any) -> None:
    proxy = proxy_factory(mode="auto")
    client = openai_client(proxy.url, api_key=OPENAI_KEY)
    answers = [ask(client, seed=42, temperature=0.7) for _ in range(3)]
    assert sim.calls == 1
    assert [h["x-seedtape-cache"] for _, h in answers] == ["recorded", "hit", "hit"]
    zero = [ask(client, temperature=0)[1]["x-seedtape-cache"] for _ in range(2)]
    assert zero == ["recorded", "hit"] and sim.calls == 2


def test_repeats_sequence_forces_new_episodes(proxy_factory: Callable[..., RunningProxy], sim: Any) -> None:
    proxy = proxy_factory(mode="auto", repeats="sequence")
    client = openai_client(proxy.url, api_key=OPENAI_KEY)
    assert [ask(client, seed=42)[1]["x-seedtape-cache"] for _ in range(2)] == ["recorded", "recorded"]
    assert sim.calls == 2


def test_per_request_cassette_and_mode_headers(proxy_factory: Callable[..., RunningProxy], sim: Any) -> None:
    proxy = proxy_factory(mode="auto")
    ask(azure_client(proxy.url, api_key=AZURE_KEY, cassette="suite/alpha"), seed=1)
    assert len(cassette_files(proxy, "suite/alpha")) == 1 and cassette_files(proxy) == []
    with pytest.raises(openai.NotFoundError):
        ask(azure_client(proxy.url, api_key=AZURE_KEY, mode="replay"), seed=1)  # default cassette is empty
    _, headers = ask(azure_client(proxy.url, api_key=AZURE_KEY, cassette="suite/alpha", mode="replay"), seed=1)
    assert headers["x-seedtape-mode"] == "replay" and headers["x-seedtape-cache"] == "hit"
    _, headers = ask(azure_client(proxy.url, api_key=AZURE_KEY, mode="passthrough"), seed=1)
    assert headers["x-seedtape-cache"] == "bypass" and cassette_files(proxy) == []


@pytest.mark.parametrize("header,value", [("x-seedtape-mode", "fast-forward"), ("x-seedtape-cassette", "../escape")])
def test_bad_per_request_headers_are_clear_400s(proxy: RunningProxy, header: str, value: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        ask(openai_client(proxy.url, api_key=OPENAI_KEY, default_headers={header: value}, max_retries=0), seed=1)
    assert value[:10] in caught.value.body["message"]  # type: ignore[index]
    assert not (proxy.settings.cassettes_dir.parent / "escape").exists()


def test_seedtape_headers_are_stripped_and_credentials_forwarded(
    proxy_factory: Callable[..., RunningProxy], sim: Any, tmp_path: Path
) -> None:
    sim.config.keep_requests = True
    proxy = proxy_factory()
    client = openai_client(proxy.url, api_key=OPENAI_KEY, cassette="c1", mode="record", session="s1")
    client.chat.completions.create(model="m", messages=PANDA, seed=3)
    [headers] = [request.headers for request in sim.received]
    assert not [h for h in headers if h.startswith("x-seedtape")]
    assert headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert scan_for_secrets(tmp_path) == []


def test_other_paths_are_forwarded_untouched_and_never_stored(proxy: RunningProxy, sim: Any) -> None:
    response = httpx.get(proxy.url + "/v1/models", headers={"authorization": f"Bearer {OPENAI_KEY}"})
    assert response.status_code == 200 and response.json()["object"] == "list"
    assert response.headers["x-seedtape-cache"] == "bypass"
    models = openai_client(proxy.url, api_key=OPENAI_KEY).models.list()
    assert models.data
    assert not proxy.settings.cassettes_dir.exists() or not list(proxy.settings.cassettes_dir.rglob("*.json"))


def test_replay_mode_never_forwards_other_paths(proxy_factory: Callable[..., RunningProxy], sim: Any) -> None:
    replay = proxy_factory(mode="replay")
    response = httpx.get(replay.url + "/v1/models")
    assert response.status_code == 404 and response.json()["error"]["type"] == "seedtape_unrecorded_route"
    assert sim.calls == 0


def test_embeddings_and_legacy_completions_are_recorded(proxy_factory: Callable[..., RunningProxy], sim: Any) -> None:
    proxy = proxy_factory(mode="auto")
    client = azure_client(proxy.url, api_key=AZURE_KEY)
    vector = client.embeddings.create(model="ada", input="red panda").data[0].embedding
    text = client.completions.create(model="davinci", prompt="Once upon a time", seed=5, max_tokens=20).choices[0].text
    assert len(cassette_files(proxy)) == 2
    replay = proxy_factory(mode="replay", upstream=OFFLINE)
    offline = azure_client(replay.url)
    assert offline.embeddings.create(model="ada", input="red panda").data[0].embedding == vector
    assert offline.completions.create(model="davinci", prompt="Once upon a time", seed=5, max_tokens=20).choices[0].text == text


def test_cassette_edit_and_delete_are_seen_without_restart(proxy_factory: Callable[..., RunningProxy]) -> None:
    recorder = proxy_factory(mode="auto")
    client = azure_client(recorder.url, api_key=AZURE_KEY)
    original, _ = ask(client, seed=42)
    [path] = cassette_files(recorder)
    replay = proxy_factory(mode="replay", upstream=OFFLINE, cache_dir=recorder.settings.cache_dir)
    replay_client = azure_client(replay.url, max_retries=0)
    assert ask(replay_client, seed=42)[0] == original

    data = json.loads(path.read_text())
    data["episodes"][0]["body"]["choices"][0]["message"]["content"] = "Edited by hand."
    path.write_text(json.dumps(data, indent=2))
    assert ask(replay_client, seed=42)[0] == "Edited by hand."

    path.unlink()
    with pytest.raises(openai.NotFoundError):
        ask(replay_client, seed=42)


def test_deleting_the_cache_directory_loses_nothing(proxy_factory: Callable[..., RunningProxy]) -> None:
    import shutil

    recorder = proxy_factory(mode="auto")
    original, _ = ask(azure_client(recorder.url, api_key=AZURE_KEY), seed=42)
    replay = proxy_factory(mode="replay", upstream=OFFLINE, cache_dir=recorder.settings.cache_dir)
    client = azure_client(replay.url)
    assert ask(client, seed=42)[0] == original  # now indexed in the cache
    shutil.rmtree(recorder.settings.cache_dir)
    fresh = proxy_factory(mode="replay", upstream=OFFLINE, cache_dir=recorder.settings.cache_dir)
    assert ask(azure_client(fresh.url), seed=42)[0] == original


def test_upstream_errors_pass_through_unrecorded(proxy_factory: Callable[..., RunningProxy], sim: Any) -> None:
    proxy = proxy_factory(mode="auto")
    sim.inject({"status": 429, "retry_after": 7})
    with pytest.raises(openai.RateLimitError) as caught:
        ask(azure_client(proxy.url, api_key=AZURE_KEY, max_retries=0), seed=42)
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.response.headers["x-seedtape-cache"] == "miss"
    assert cassette_files(proxy) == []
    _text, headers = ask(azure_client(proxy.url, api_key=AZURE_KEY), seed=42)
    assert headers["x-seedtape-cache"] == "recorded"


def test_record_errors_option_records_them(proxy_factory: Callable[..., RunningProxy], sim: Any) -> None:
    proxy = proxy_factory(mode="auto", record_errors=True)
    sim.inject({"status": 500})
    with pytest.raises(openai.InternalServerError):
        ask(azure_client(proxy.url, api_key=AZURE_KEY, max_retries=0), seed=42)
    [path] = cassette_files(proxy)
    assert json.loads(path.read_text())["episodes"][0]["status"] == 500
    replay = proxy_factory(mode="replay", upstream=OFFLINE)
    with pytest.raises(openai.InternalServerError):
        ask(azure_client(replay.url, max_retries=0), seed=42)


def test_gzip_upstream_is_decoded_and_stored_decoded(proxy_factory: Callable[..., RunningProxy], sim: Any) -> None:
    proxy = proxy_factory(mode="auto")
    sim.inject({"kind": "gzip"})
    raw = httpx.post(
        proxy.url + "/v1/chat/completions",
        json={"model": "gpt-4", "messages": PANDA, "seed": 9},
        headers={"authorization": f"Bearer {OPENAI_KEY}", "accept-encoding": "gzip, br"},
    )
    assert raw.status_code == 200 and "content-encoding" not in raw.headers
    assert raw.json()["choices"][0]["message"]["content"]
    [path] = cassette_files(proxy)
    assert json.loads(path.read_text())["episodes"][0]["body"]["object"] == "chat.completion"


def test_recorded_routes_ask_upstream_only_for_encodings_seedtape_decodes(proxy: RunningProxy, sim: Any) -> None:
    """The client's accept-encoding (here zstd, which httpx cannot decode) is not what
    goes upstream: seedtape stores bodies decoded, so it asks for what httpx decodes."""
    raw = httpx.post(
        proxy.url + "/v1/chat/completions",
        json={"model": "gpt-4", "messages": PANDA, "seed": 10},
        headers={"authorization": f"Bearer {OPENAI_KEY}", "accept-encoding": "zstd"},
    )
    assert raw.status_code == 200
    assert sim.requests[-1]["headers"]["accept-encoding"] == "gzip, deflate, br"


@pytest.mark.anyio
async def test_brotli_upstream_is_decoded_and_stored_decoded(tmp_path: Path) -> None:
    """An upstream answering ``content-encoding: br`` (seedtape offers br) is decoded by
    httpx with the brotli package: the client gets JSON and the cassette stores JSON."""
    answer = {"id": "chatcmpl-br", "object": "chat.completion", "created": 1, "model": "gpt-4", "choices": []}
    asked: list[str] = []

    def upstream(request: httpx.Request) -> httpx.Response:
        asked.append(request.headers["accept-encoding"])
        compressed = brotli.compress(json.dumps(answer).encode())
        return httpx.Response(200, headers={"content-type": "application/json", "content-encoding": "br"}, content=compressed)

    settings = Settings(mode="auto", upstream="http://upstream.test", cassettes_dir=tmp_path / "c", cache_dir=tmp_path / "cache")
    app = create_app(settings, upstream_transport=httpx.MockTransport(upstream))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://seedtape.test") as client:
        raw = await client.post("/v1/chat/completions", json={"model": "gpt-4", "messages": PANDA, "seed": 12})
    assert asked == ["gzip, deflate, br"]
    assert raw.status_code == 200 and "content-encoding" not in raw.headers and raw.json() == answer
    [path] = (tmp_path / "c" / "default").glob("*.json")
    assert json.loads(path.read_text())["episodes"][0]["body"] == answer


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/models"])
def test_forwarded_answers_carry_one_date_and_one_server_header(proxy: RunningProxy, path: str) -> None:
    """uvicorn sets both on every answer; the upstream's copies are not passed on too."""
    body = {"model": "gpt-4", "messages": PANDA, "seed": 11}
    raw = httpx.request(
        "POST" if "chat" in path else "GET",
        proxy.url + path,
        json=body if "chat" in path else None,
        headers={"authorization": f"Bearer {OPENAI_KEY}"},
    )
    names = [name.lower() for name, _ in raw.headers.multi_items()]
    assert raw.status_code == 200
    assert names.count("date") == 1 and names.count("server") == 1


def test_health_and_stats(proxy: RunningProxy, sim: Any) -> None:
    assert httpx.get(proxy.url + "/_seedtape/health").json()["status"] == "ok"
    client = azure_client(proxy.url, api_key=AZURE_KEY)
    ask(client, seed=1)
    ask(client, seed=1)
    stats = proxy.stats()
    assert (stats["hits"], stats["recorded"], stats["upstream_calls"], stats["misses"]) == (1, 1, 1, 1)


def test_cassette_file_format(proxy: RunningProxy) -> None:
    _, headers = ask(azure_client(proxy.url, api_key=AZURE_KEY), seed=42, temperature=0.1)
    [path] = cassette_files(proxy)
    text = path.read_text(encoding="utf-8")
    data = json.loads(text)
    assert path.name == headers["x-seedtape-key"][:16] + ".json"
    assert data["format"] == "seedtape/1" and data["key"] == headers["x-seedtape-key"]
    assert data["request"] == {
        "api": "azure",
        "route": "chat/completions",
        "deployment": "gpt-4",
        "api_version": "2024-02-01",
        "body": {"model": "gpt-4", "messages": PANDA, "seed": 42, "temperature": 0.1},
    }
    [episode] = data["episodes"]
    assert episode["status"] == 200 and episode["system_fingerprint"].startswith("fp_")
    assert set(episode["headers"]) <= {"content-type", "retry-after", "openai-version", "openai-processing-ms", "x-ms-region"}
    assert episode["recorded_at"].endswith("Z") and isinstance(episode["latency_ms"], int)
    assert text == json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
