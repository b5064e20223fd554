"""Verify for Realtime (drift classes on assembled transcripts), the simulator in process,
recorded pacing, and WebSocket paths that are not Realtime."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import websockets.sync.client
from click.testing import CliRunner
from websockets.exceptions import InvalidStatus

import seedtape.sim
from seedtape.app import create_app
from seedtape.cli import main
from seedtape.config import Settings
from seedtape.drift import log as drift_log
from seedtape.realtime.verify import assemble
from seedtape.serving import serve_in_thread
from seedtape.sim.simulator import Simulator
from tests.conftest import OPENAI_KEY, RunningProxy
from tests.realtime._helpers import CLOSED_PORT_URL, SESSION, delta_text, openai_client, session_files, text_session, wait_recorded

Factory = Callable[..., RunningProxy]


def one_session(proxy: RunningProxy, text: str = "Say hello", **session: Any) -> list[dict[str, Any]]:
    with openai_client(proxy.url, OPENAI_KEY).realtime.connect(model="gpt-realtime") as conn:
        return text_session(conn, text, {**SESSION, **session} if session else None)


def wait_log(path: Path, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entries = drift_log.read(path)
        if len(entries) >= count:
            return entries
        time.sleep(0.01)
    raise AssertionError(f"drift log has {len(drift_log.read(path))} entries, expected {count}")


def test_verify_classes_sessions_by_their_transcripts(proxy_factory: Factory, sim: Simulator, tmp_path: Path) -> None:
    recorder = proxy_factory(mode="record")
    recorded = one_session(recorder)
    wait_recorded(recorder, 1)
    [path] = session_files(recorder.settings.cassettes_dir)
    before = path.read_bytes()

    verifier = proxy_factory(mode="verify")
    log_path = verifier.engine.drift_log
    assert one_session(verifier) == recorded  # the live session, the same as recorded
    [same] = wait_log(log_path, 1)
    assert same["class"] == "identical" and same["flags"] == []
    assert same["request"]["route"] == "realtime" and same["request"]["model"] == "gpt-realtime"
    assert same["fingerprint"]["status"] == "unknown"  # Realtime has no system_fingerprint

    sim.rotate_fingerprint()  # the backend moves: the same conversation ends differently
    verifier = proxy_factory(mode="verify")
    live = one_session(verifier)
    assert delta_text(live) != delta_text(recorded)
    drifted = wait_log(log_path, 2)[-1]
    assert drifted["flags"] == ["content"] and drifted["class"] == "content-same-fingerprint"
    assert drifted["diff"]["removed"] and drifted["diff"]["added"] and 0 < drifted["similarity"] < 1
    assert drifted["first_divergence"] > 0  # the start of the answer is the same
    assert path.read_bytes() == before  # verify alone never writes the cassette

    unrecorded = proxy_factory(mode="verify")
    one_session(unrecorded, instructions="a session never recorded")
    assert wait_log(log_path, 3)[-1]["class"] == "unrecorded"

    updater = proxy_factory(mode="verify", update=True)
    one_session(updater)
    wait_log(log_path, 4)
    wait_recorded(updater, 1)  # --update re-records the drifted session
    replayer = proxy_factory(mode="replay", upstream=CLOSED_PORT_URL)
    assert delta_text(one_session(replayer)) == delta_text(live)

    result = CliRunner().invoke(main, ["report", "--log", str(log_path), "--format", "json"])
    assert result.exit_code == 0, result.output
    classes = [entry["class"] for entry in json.loads(result.output)["entries"]]
    assert classes[:3] == ["identical", "content-same-fingerprint", "unrecorded"]


def test_transcripts_assemble_text_audio_transcript_and_audio_hashes() -> None:
    def server(data: dict[str, Any]) -> dict[str, Any]:
        return {"dir": "server", "ms": 0, "data": data}

    events = [
        server({"type": "session.created", "session": {"model": "gpt-realtime"}}),
        {"dir": "client", "ms": 1, "data": {"type": "response.create"}},
        server({"type": "response.output_text.delta", "response_id": "r1", "delta": "Hel"}),
        server({"type": "response.output_text.delta", "response_id": "r1", "delta": "lo"}),
        server({"type": "response.done", "response": {"id": "r1", "status": "completed", "usage": {"total_tokens": 3}}}),
        server({"type": "response.output_audio_transcript.delta", "response_id": "r2", "delta": "Hi"}),
        server({"type": "response.output_audio.delta", "response_id": "r2", "delta": "AAAA"}),
        server({"type": "response.done", "response": {"id": "r2", "status": "completed", "usage": {"total_tokens": 4}}}),
    ]
    document = assemble(events)
    assert document["model"] == "gpt-realtime" and document["usage"] == {"total_tokens": 7}
    first, second = document["choices"]
    assert first["message"]["content"] == "Hello" and first["finish_reason"] == "completed"
    assert second["message"]["content"].startswith("Hi [audio 3 bytes sha256:")
    hashed = [*events[:6], server({"type": "response.output_audio.delta", "response_id": "r2", "delta": {"sha256": "x", "bytes": 3}})]
    assert assemble(hashed)["choices"][1]["message"]["content"] != second["message"]["content"]  # another audio, another digest


def test_upstream_sim_reaches_the_simulator_in_process(tmp_path: Path) -> None:
    settings = Settings(mode="record", upstream="sim", cassettes_dir=tmp_path / "cassettes", cache_dir=tmp_path / "cache")
    app = create_app(settings, upstream_transport=seedtape.sim.transport())
    with serve_in_thread(app) as url:
        with openai_client(url, OPENAI_KEY).realtime.connect(model="gpt-realtime") as conn:
            live = text_session(conn)
        deadline = time.monotonic() + 5
        while not session_files(tmp_path / "cassettes") and time.monotonic() < deadline:
            time.sleep(0.01)
    assert live[-1]["type"] == "response.done"
    assert len(session_files(tmp_path / "cassettes")) == 1


@pytest.mark.slow
def test_recorded_pace_keeps_the_recorded_gaps(proxy_factory: Factory, sim: Simulator) -> None:
    sim.update_config({"stream_delay_ms": 4})
    recorder = proxy_factory(mode="record")
    started = time.perf_counter()
    recorded = one_session(recorder)
    recording_s = time.perf_counter() - started
    wait_recorded(recorder, 1)
    deltas = sum(1 for e in recorded if e["type"] == "response.output_text.delta")
    assert deltas > 20

    timings = {}
    for pace in ("recorded", "fast"):
        replayer = proxy_factory(mode="replay", upstream=CLOSED_PORT_URL, pace=pace)
        started = time.perf_counter()
        assert one_session(replayer) == recorded
        timings[pace] = time.perf_counter() - started
    gaps = (deltas - 1) * 0.004
    assert timings["recorded"] >= 0.8 * gaps, (timings, recording_s)
    assert timings["fast"] < timings["recorded"]


def test_other_websocket_paths_are_refused_in_replay_and_piped_otherwise(proxy_factory: Factory) -> None:
    replayer = proxy_factory(mode="replay")
    url = replayer.url.replace("http://", "ws://") + "/v1/responses"
    with pytest.raises(InvalidStatus) as refused:
        websockets.sync.client.connect(url, additional_headers={"authorization": "Bearer x"}, open_timeout=5)
    assert refused.value.response.status_code == 404
    assert b"seedtape_unrecorded_route" in (refused.value.response.body or b"")
    piped = proxy_factory(mode="auto")
    url = piped.url.replace("http://", "ws://") + "/v1/responses"
    with pytest.raises(InvalidStatus) as upstream_answer:  # the simulator has no such WebSocket: its refusal comes back
        websockets.sync.client.connect(url, additional_headers={"authorization": "Bearer x"}, open_timeout=5)
    assert upstream_answer.value.response.status_code == 403
    assert session_files(piped.settings.cassettes_dir) == []


def test_a_client_leaving_mid_replay_ends_quietly(proxy_factory: Factory, sim: Simulator) -> None:
    recorder = proxy_factory(mode="record")
    one_session(recorder)
    wait_recorded(recorder, 1)
    replayer = proxy_factory(mode="replay", upstream=CLOSED_PORT_URL)
    with openai_client(replayer.url, OPENAI_KEY).realtime.connect(model="gpt-realtime") as conn:
        conn.session.update(session=SESSION)
        assert conn.recv().type == "session.created"  # then leave without reading the rest
    with openai_client(replayer.url, OPENAI_KEY).realtime.connect(model="gpt-realtime") as conn:
        text_session(conn)  # the proxy is fine, and this is the next occurrence: episode 1 repeats
    assert replayer.engine.coordinator.stats()["errors"] == 0
