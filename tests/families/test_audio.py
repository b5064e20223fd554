"""Audio through seedtape with the real SDK: multipart transcriptions keyed by the file's
hash (never its bytes or the boundary), and speech's binary answers (issue 12)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.conftest import AZURE_KEY, OPENAI_KEY, RunningProxy, scan_for_secrets

OFFLINE = "http://127.0.0.1:9"
AUDIO = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(256)) * 4  # bytes that must never reach a cassette
OTHER_AUDIO = AUDIO[:-1] + b"\x01"


def client_for(proxy: RunningProxy, key: str = OPENAI_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.url + "/v1", api_key=key, max_retries=0)


def replayer(proxy_factory: Callable[..., RunningProxy], recorder: RunningProxy) -> RunningProxy:
    return proxy_factory(mode="replay", upstream=OFFLINE, cache_dir=recorder.settings.cache_dir.parent / "replay-cache")


def recordings(proxy: RunningProxy) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((proxy.settings.cassettes_dir / "default").glob("*.json"))]


def transcribe(client: openai.OpenAI, audio: bytes = AUDIO, **params: Any) -> Any:
    return client.audio.transcriptions.with_raw_response.create(model="whisper-1", file=("meeting.wav", audio, "audio/wav"), **params)


def test_the_same_file_hits_whatever_the_boundary_and_is_never_stored(proxy_factory: Callable[..., RunningProxy], sim: Any) -> None:
    proxy = proxy_factory(mode="auto")
    client = client_for(proxy)
    first = transcribe(client, language="en")
    assert first.headers["x-seedtape-cache"] == "recorded"
    second = transcribe(client, language="en")  # the SDK draws a new multipart boundary
    assert second.headers["x-seedtape-cache"] == "hit" and sim.calls == 1
    assert second.parse().text == first.parse().text
    assert first.headers["x-seedtape-key"] == second.headers["x-seedtape-key"]

    (recording,) = recordings(proxy)
    assert recording["request"]["route"] == "audio/transcriptions"
    assert recording["request"]["body"]["file"] == {
        "filename": "meeting.wav",
        "content_type": "audio/wav",
        "size": len(AUDIO),
        "sha256": hashlib.sha256(AUDIO).hexdigest(),
    }
    assert recording["request"]["body"]["model"] == "whisper-1" and recording["request"]["body"]["language"] == "en"
    raw = (proxy.settings.cassettes_dir / "default").glob("*.json")
    assert all(AUDIO[20:60] not in path.read_bytes() for path in raw), "the audio itself is never written"
    assert scan_for_secrets(proxy.settings.cassettes_dir) == []


def test_a_different_file_misses_and_the_miss_says_so(proxy_factory: Callable[..., RunningProxy]) -> None:
    proxy = proxy_factory(mode="auto")
    transcribe(client_for(proxy))
    offline = client_for(replayer(proxy_factory, proxy))
    assert transcribe(offline).parse().text
    with pytest.raises(openai.NotFoundError) as caught:
        transcribe(offline, OTHER_AUDIO)
    assert "file.sha256:" in caught.value.message and hashlib.sha256(OTHER_AUDIO).hexdigest()[:8] in caught.value.message


@pytest.mark.parametrize("response_format", ["json", "text", "srt", "verbose_json"])
def test_every_answer_format_replays_as_it_came(response_format: str, proxy_factory: Callable[..., RunningProxy]) -> None:
    proxy = proxy_factory(mode="auto")
    live = transcribe(client_for(proxy), response_format=response_format).parse()
    replayed = transcribe(client_for(replayer(proxy_factory, proxy)), response_format=response_format).parse()
    assert replayed == live
    (recording,) = recordings(proxy)
    episode = recording["episodes"][0]
    assert ("body_text" in episode) == (response_format in ("text", "srt"))


@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")  # translations: deprecated in the SDK, still served
def test_translations_and_streamed_transcriptions(proxy_factory: Callable[..., RunningProxy]) -> None:
    proxy = proxy_factory(mode="auto")
    client = client_for(proxy)
    translated = client.audio.translations.create(model="whisper-1", file=("fr.wav", AUDIO, "audio/wav")).text
    streamed = [e.model_dump() for e in client.audio.transcriptions.create(model="gpt-4o-transcribe", file=("a.wav", AUDIO), stream=True)]
    assert streamed[-1]["type"] == "transcript.text.done"
    offline = client_for(replayer(proxy_factory, proxy))
    assert offline.audio.translations.create(model="whisper-1", file=("fr.wav", AUDIO, "audio/wav")).text == translated
    assert [
        e.model_dump() for e in offline.audio.transcriptions.create(model="gpt-4o-transcribe", file=("a.wav", AUDIO), stream=True)
    ] == streamed


def test_azure_transcription_through_a_deployment(proxy_factory: Callable[..., RunningProxy]) -> None:
    proxy = proxy_factory(mode="auto")
    azure = openai.AzureOpenAI(azure_endpoint=proxy.url, api_version="2024-06-01", api_key=AZURE_KEY, max_retries=0)
    text = azure.audio.transcriptions.create(model="whisper", file=("a.wav", AUDIO, "audio/wav")).text
    (recording,) = recordings(proxy)
    assert (recording["request"]["api"], recording["request"]["deployment"]) == ("azure", "whisper")
    offline = replayer(proxy_factory, proxy)
    replay = openai.AzureOpenAI(azure_endpoint=offline.url, api_version="2024-06-01", api_key="x", max_retries=0)
    assert replay.audio.transcriptions.create(model="whisper", file=("a.wav", AUDIO, "audio/wav")).text == text


@pytest.mark.parametrize("response_format", ["mp3", "wav"])
def test_speech_replays_the_same_bytes_and_content_type(response_format: str, proxy_factory: Callable[..., RunningProxy], sim: Any) -> None:
    proxy = proxy_factory(mode="auto")
    client = client_for(proxy)
    live = client.audio.speech.with_raw_response.create(
        model="gpt-4o-mini-tts", input="Hello there", voice="alloy", response_format=response_format
    )
    again = client.audio.speech.with_raw_response.create(
        model="gpt-4o-mini-tts", input="Hello there", voice="alloy", response_format=response_format
    )
    assert again.headers["x-seedtape-cache"] == "hit" and sim.calls == 1, "reading a text aloud is deterministic: cached"
    audio = live.content
    assert audio[:4] in (b"RIFF", b"ID3\x03")
    (recording,) = recordings(proxy)
    episode = recording["episodes"][0]
    assert episode["body_sha256"] == hashlib.sha256(audio).hexdigest() and episode["body_size"] == len(audio)

    offline = client_for(replayer(proxy_factory, proxy))
    replayed = offline.audio.speech.with_raw_response.create(
        model="gpt-4o-mini-tts", input="Hello there", voice="alloy", response_format=response_format
    )
    assert replayed.content == audio
    assert replayed.headers["content-type"] == live.headers["content-type"]


def test_verify_compares_the_transcript_text(proxy_factory: Callable[..., RunningProxy], tmp_path: Path) -> None:
    recorder = proxy_factory(mode="auto")
    transcribe(client_for(recorder))
    verifier = proxy_factory(mode="verify", cache_dir=recorder.settings.cache_dir)
    checked = transcribe(client_for(verifier))
    assert checked.headers["x-seedtape-drift"] == "none"
    entry = json.loads((recorder.settings.cache_dir / "drift.jsonl").read_text().splitlines()[-1])
    assert entry["kind"] == "parts" and entry["request"]["route"] == "audio/transcriptions"


def test_a_text_transcript_that_parses_as_json_stays_text() -> None:
    """ "42\n" from response_format=text is a transcript, not the number 42."""
    import httpx

    from seedtape.families import family_of
    from seedtape.recorder import _stored_answer

    answer = httpx.Response(200, headers={"content-type": "text/plain; charset=utf-8"}, content=b"42\n")
    assert _stored_answer(family_of("audio/transcriptions"), answer, b"42\n", ok=True) == {"text": "42\n"}
    as_json = httpx.Response(200, headers={"content-type": "application/json"}, content=b'{"text": "42"}')
    assert _stored_answer(family_of("audio/transcriptions"), as_json, b'{"text": "42"}', ok=True) == {"body": {"text": "42"}}
