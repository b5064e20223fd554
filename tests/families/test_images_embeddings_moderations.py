"""Images (episodes: asking again asks for another image), embeddings and moderations
(deterministic: an identical request is served from the recording) (issue 12)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import openai

from tests.conftest import OPENAI_KEY, RunningProxy

OFFLINE = "http://127.0.0.1:9"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def client_for(proxy: RunningProxy) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.url + "/v1", api_key=OPENAI_KEY, max_retries=0)


def replayer(proxy_factory: Callable[..., RunningProxy], recorder: RunningProxy) -> RunningProxy:
    return proxy_factory(mode="replay", upstream=OFFLINE, cache_dir=recorder.settings.cache_dir.parent / "replay-cache")


def test_generated_images_are_episodes_replayed_in_order(proxy_factory: Callable[..., RunningProxy], sim: Any) -> None:
    proxy = proxy_factory(mode="auto")
    client = client_for(proxy)
    live = [client.images.generate(model="gpt-image-1", prompt="a red panda").data[0].b64_json for _ in range(2)]
    assert sim.calls == 2 and live[0] != live[1]
    assert all(base64.b64decode(image or "").startswith(b"\x89PNG") for image in live)
    offline = client_for(replayer(proxy_factory, proxy))
    assert [offline.images.generate(model="gpt-image-1", prompt="a red panda").data[0].b64_json for _ in range(2)] == live


def test_image_edits_are_keyed_by_the_image_hash(proxy_factory: Callable[..., RunningProxy], sim: Any) -> None:
    proxy = proxy_factory(mode="auto")
    client = client_for(proxy)
    edited = client.images.edit(model="gpt-image-1", image=("in.png", PNG, "image/png"), prompt="add a hat").data[0].b64_json
    other = client.images.edit(model="gpt-image-1", image=("in.png", PNG + b"\x01", "image/png"), prompt="add a hat").data[0].b64_json
    assert sim.calls == 2 and edited != other
    files = sorted((proxy.settings.cassettes_dir / "default").glob("*.json"))
    assert len(files) == 2 and all(PNG not in f.read_bytes() for f in files)
    offline = client_for(replayer(proxy_factory, proxy))
    assert offline.images.edit(model="gpt-image-1", image=("renamed.png", PNG, "image/png"), prompt="add a hat").data[0].b64_json == edited


def test_identical_embeddings_are_paid_once_in_auto_mode(proxy_factory: Callable[..., RunningProxy], sim: Any) -> None:
    """The cookbook's reproducibility notebook embeds the same text five times."""
    proxy = proxy_factory(mode="auto")
    client = client_for(proxy)
    caches = []
    vectors = []
    for _ in range(5):
        raw = client.embeddings.with_raw_response.create(model="text-embedding-3-small", input="The food was delicious.")
        caches.append(raw.headers["x-seedtape-cache"])
        vectors.append(raw.parse().data[0].embedding)
    assert caches == ["recorded", "hit", "hit", "hit", "hit"]
    assert sim.calls == 1 and all(v == vectors[0] for v in vectors)


def test_moderations_are_deterministic_and_replay(proxy_factory: Callable[..., RunningProxy], sim: Any) -> None:
    proxy = proxy_factory(mode="auto")
    client = client_for(proxy)
    first = client.moderations.create(model="omni-moderation-latest", input="I will attack you")
    assert first.results[0].flagged and first.results[0].categories.violence
    client.moderations.create(model="omni-moderation-latest", input="I will attack you")
    assert sim.calls == 1
    offline = client_for(replayer(proxy_factory, proxy))
    assert offline.moderations.create(model="omni-moderation-latest", input="I will attack you") == first


def test_paths_no_family_owns_are_forwarded_counted_and_named_once(proxy: RunningProxy, caplog: Any) -> None:
    client = client_for(proxy)
    for _ in range(3):
        client.models.list()
    stats = proxy.stats()
    assert stats["bypassed"] == 3 and stats["bypassed_paths"] == {"GET /v1/models": 3}
    named = [r.getMessage() for r in caplog.records if "is not recorded: forwarded untouched" in r.getMessage()]
    assert named == ["seedtape: GET /v1/models is not recorded: forwarded untouched"]
    assert not list(proxy.settings.cassettes_dir.glob("**/*.json"))
    assert json.dumps(stats)


def test_every_family_records_and_replays_in_process(tmp_path: Any) -> None:
    """The in-process proxy (no port, no server) answers every family the same way."""
    from seedtape import InProcessProxy

    def calls(client: openai.OpenAI) -> list[Any]:
        return [
            client.audio.transcriptions.create(model="whisper-1", file=("a.wav", b"RIFF-in-process", "audio/wav")).text,
            client.audio.speech.create(model="gpt-4o-mini-tts", input="Hello", voice="alloy").content,
            client.images.generate(model="gpt-image-1", prompt="a red panda").data[0].b64_json,
            client.embeddings.create(model="text-embedding-3-small", input="hello").data[0].embedding,
            client.moderations.create(input="hello").results[0].flagged,
            client.responses.create(model="gpt-4o", input="Tell me a story about a red panda.", temperature=0).output_text,
        ]

    with InProcessProxy(mode="auto", upstream="sim", cassettes_dir=tmp_path / "c", cache_dir=tmp_path / "k") as proxy:
        live = calls(proxy.openai())
    with InProcessProxy(mode="replay", cassettes_dir=tmp_path / "c", cache_dir=tmp_path / "k2") as proxy:
        assert calls(proxy.openai()) == live
        assert proxy.stats()["upstream_calls"] == 0
