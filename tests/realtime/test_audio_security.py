"""What a Realtime cassette holds: no credential, client audio as hashes, server audio
kept (or hashed with the flag), one reviewable entry per event."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from typing import Any

import openai
import pytest
from websockets.exceptions import ConnectionClosedError

from seedtape.sim.realtime import AUDIO_RATE
from seedtape.sim.simulator import Simulator
from tests.conftest import AZURE_KEY, OPENAI_KEY, RunningProxy, scan_for_secrets
from tests.realtime._helpers import CLOSED_PORT_URL, MAX_EVENTS, SESSION, load, openai_client, session_files, text_session, wait_recorded

Factory = Callable[..., RunningProxy]
QUERY_KEY = "azquerykey-SECRET-0011223344556677"
TOKEN = "rt-scan-token-SECRET-8899aabb"
# Half a second of pcm16 at 24 kHz: 24,000 bytes, 32,000 base64 characters.
MICROPHONE = bytes((i * 7) % 256 for i in range(AUDIO_RATE))
AUDIO_SESSION = {"type": "realtime", "output_modalities": ["audio"], "instructions": "answer aloud"}


def audio_session(conn: Any, audio: bytes = MICROPHONE) -> list[dict[str, Any]]:
    conn.session.update(session=AUDIO_SESSION)
    conn.input_audio_buffer.append(audio=base64.b64encode(audio).decode())
    conn.input_audio_buffer.commit()
    conn.response.create()
    events: list[dict[str, Any]] = []
    for _ in range(MAX_EVENTS):
        events.append(json.loads(conn.recv_bytes()))
        if events[-1]["type"] in ("response.done", "error"):
            return events
    raise AssertionError("no response.done within the event bound")


def test_credentials_are_forwarded_and_never_written(proxy_factory: Factory, sim: Simulator, tmp_path: Any) -> None:
    headers = {"x-seedtape-token": TOKEN}
    for mode in ("record", "replay", "verify", "auto", "passthrough"):
        proxy = proxy_factory(mode=mode, auth_token=TOKEN)
        ws_base = proxy.url.replace("http://", "ws://") + "/openai"
        azure = openai.AzureOpenAI(
            azure_endpoint=proxy.url, api_key=AZURE_KEY, api_version="2025-08-28", websocket_base_url=ws_base, default_headers=headers
        )
        bearer = openai_client(proxy.url, OPENAI_KEY, default_headers=headers)
        v1 = openai.OpenAI(base_url=proxy.url + "/openai/v1", api_key="unused", default_headers=headers)
        # Azure also takes the key in the query string (browsers cannot set headers).
        query_key = v1.realtime.connect(model="gpt-realtime", extra_query={"api-key": QUERY_KEY})
        for manager in (azure.realtime.connect(model="gpt-realtime"), bearer.realtime.connect(model="gpt-realtime"), query_key):
            with manager as conn:
                assert text_session(conn)[-1]["type"] == "response.done"
        if mode == "record":
            wait_recorded(proxy, 3)
    assert any(h["query"].get("api-key") == QUERY_KEY for h in sim.realtime.handshakes)  # forwarded upstream
    assert any(h["headers"].get("api-key") == "<redacted>" for h in sim.realtime.handshakes)
    assert (tmp_path / "cache" / "drift.jsonl").is_file()  # verify wrote its log: scanned too
    assert scan_for_secrets(tmp_path, (AZURE_KEY, OPENAI_KEY, QUERY_KEY, TOKEN)) == []
    stored = [load(p)["request"] for p in session_files(tmp_path / "cassettes")]
    assert len(stored) == 3 and all("api-key" not in r["body"]["query"] for r in stored)


def test_client_audio_is_stored_as_sha256_and_size_server_audio_kept(proxy_factory: Factory) -> None:
    recorder = proxy_factory(mode="record")
    with openai_client(recorder.url, OPENAI_KEY).realtime.connect(model="gpt-realtime") as conn:
        live = audio_session(conn)
    wait_recorded(recorder, 1)
    [path] = session_files(recorder.settings.cassettes_dir)
    text = path.read_text()
    assert base64.b64encode(MICROPHONE).decode() not in text
    events = load(path)["episodes"][0]["events"]
    appended = next(e["data"] for e in events if e["dir"] == "client" and e["data"]["type"] == "input_audio_buffer.append")
    assert appended["audio"] == {"sha256": hashlib.sha256(MICROPHONE).hexdigest(), "bytes": len(MICROPHONE)}
    deltas = [e["data"]["delta"] for e in events if e["dir"] == "server" and e["data"]["type"] == "response.output_audio.delta"]
    live_deltas = [e["delta"] for e in live if e["type"] == "response.output_audio.delta"]
    assert deltas == live_deltas and len(base64.b64decode(deltas[0])) == AUDIO_RATE // 100 * 2  # kept: 10 ms of pcm16

    replayer = proxy_factory(mode="replay", upstream=CLOSED_PORT_URL)
    client = openai_client(replayer.url, OPENAI_KEY)
    with client.realtime.connect(model="gpt-realtime") as conn:
        assert audio_session(conn) == live  # the same microphone audio matches its hash; the same audio plays
    other = bytes(reversed(MICROPHONE))
    with client.realtime.connect(model="gpt-realtime") as conn:
        # Only the events up to the one that differs: the proxy closes right after its
        # error event, so a later send could race the close.
        conn.session.update(session=AUDIO_SESSION)
        conn.input_audio_buffer.append(audio=base64.b64encode(other).decode())
        events = []
        for _ in range(MAX_EVENTS):
            events.append(json.loads(conn.recv_bytes()))
            if events[-1]["type"] == "error":
                break
        with pytest.raises(ConnectionClosedError):
            conn.recv()
    error = events[-1]["error"]
    assert error["param"] == "audio.sha256" and "client event 2 (input_audio_buffer.append)" in error["message"]


def test_hash_flag_keeps_only_audio_hashes_and_replays_silence_of_the_same_length(proxy_factory: Factory) -> None:
    recorder = proxy_factory(mode="record", realtime_audio="hash")
    with openai_client(recorder.url, OPENAI_KEY).realtime.connect(model="gpt-realtime") as conn:
        live = audio_session(conn)
    wait_recorded(recorder, 1)
    [path] = session_files(recorder.settings.cassettes_dir)
    episode = load(path)["episodes"][0]
    assert episode["audio"] == "hash"
    live_delta = next(e["delta"] for e in live if e["type"] == "response.output_audio.delta")
    stored = next(e["data"]["delta"] for e in episode["events"] if e["data"].get("type") == "response.output_audio.delta")
    raw = base64.b64decode(live_delta)
    assert stored == {"sha256": hashlib.sha256(raw).hexdigest(), "bytes": len(raw)}
    assert live_delta not in path.read_text()

    replayer = proxy_factory(mode="replay", upstream=CLOSED_PORT_URL)
    with openai_client(replayer.url, OPENAI_KEY).realtime.connect(model="gpt-realtime") as conn:
        replayed = audio_session(conn)
    played = next(e["delta"] for e in replayed if e["type"] == "response.output_audio.delta")
    assert base64.b64decode(played) == bytes(len(raw))  # silence, as long as the recorded audio
    strip = [{k: v for k, v in e.items() if k != "delta"} if e["type"] == "response.output_audio.delta" else e for e in live]
    assert [{k: v for k, v in e.items() if k != "delta"} if e["type"] == "response.output_audio.delta" else e for e in replayed] == strip


def test_a_session_cassette_is_pretty_json_with_one_entry_per_event(proxy_factory: Factory) -> None:
    recorder = proxy_factory(mode="record")
    with openai_client(recorder.url, OPENAI_KEY).realtime.connect(model="gpt-realtime") as conn:
        live = text_session(conn)
    wait_recorded(recorder, 1)
    [path] = session_files(recorder.settings.cassettes_dir)
    text = path.read_text()
    data = json.loads(text)
    assert text == json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert data["format"] == "seedtape/1" and path.name == data["key"][:16] + ".json"
    episode = data["episodes"][0]
    assert episode["status"] == 101 and episode["end"] == {"by": "client", "code": 1000, "reason": ""}
    assert episode["model"] == "gpt-realtime" and episode["audio"] == "keep"
    events = episode["events"]
    assert all(set(e) == {"ms", "dir", "data"} for e in events)
    assert [e["data"] for e in events if e["dir"] == "server"][: len(live)] == live
    client = [e["data"] for e in events if e["dir"] == "client"]
    assert [c["type"] for c in client] == ["session.update", "conversation.item.create", "response.create"]
    assert client[0] == {"type": "session.update", "session": SESSION}
    assert [e["ms"] for e in events] == sorted(e["ms"] for e in events)
