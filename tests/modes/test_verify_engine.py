"""verify against the engine: ask upstream again, compare with the recording, log the drift.

(tests/modes/test_verify.py covers the same mode end to end, through the SDK and a server.)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from seedtape.drift import log as drift_log
from tests.modes._engine import Rig, cache, episode_text, seedtape_headers, text


def drift_entries(rig: Rig) -> list[dict[str, Any]]:
    return drift_log.read(rig.engine.drift_log)


@pytest.mark.anyio
async def test_identical(rig: Rig) -> None:
    recorded = await rig.send("record", seed=42)
    rig.new_session()

    response = await rig.send("verify", seed=42)

    assert seedtape_headers(response) == {
        "x-seedtape-mode": "verify",
        "x-seedtape-cache": "verified",
        "x-seedtape-key": rig.key(seed=42),
        "x-seedtape-episode": "1",
        "x-seedtape-drift": "none",
    }
    assert text(response) == text(recorded)
    [entry] = drift_entries(rig)
    assert (entry["class"], entry["key"], entry["episode"]) == ("identical", rig.key(seed=42), 1)
    assert rig.sim.calls == 2, "verify always asks upstream"
    assert (rig.stats()["verified"], rig.stats()["drifted"]) == (1, 0)


@pytest.mark.anyio
async def test_drifted_content_answers_live_and_writes_no_cassette(rig: Rig) -> None:
    recorded = await rig.send("record", seed=42)
    [path] = rig.files()
    before = path.read_bytes()
    rig.new_session()
    rig.sim.config.seed_drift = 1.0  # the "almost always" case: same seed, same fingerprint, other text

    response = await rig.send("verify", seed=42)

    assert cache(response) == ("verified", "1")
    assert response.headers["x-seedtape-drift"] == "content"
    assert text(response) != text(recorded), "the live answer"
    [entry] = drift_entries(rig)
    assert entry["class"] == "content-same-fingerprint"
    assert entry["diff"]["removed"] or entry["diff"]["added"]
    assert path.read_bytes() == before and rig.files() == [path]
    assert (rig.stats()["verified"], rig.stats()["drifted"]) == (1, 1)


@pytest.mark.anyio
async def test_unrecorded(rig: Rig) -> None:
    response = await rig.send("verify", seed=42)

    assert response.status_code == 200
    assert response.headers["x-seedtape-drift"] == "unrecorded"
    assert cache(response) == ("verified", None), "no episode to name"
    assert [e["class"] for e in drift_entries(rig)] == ["unrecorded"]
    assert rig.files() == [] and rig.sim.calls == 1


@pytest.mark.anyio
async def test_verify_serve_recorded_answers_the_recording(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(verify_serve="recorded")
    recorded = await rig.send("record", seed=42)
    rig.new_session()
    rig.sim.config.seed_drift = 1.0

    response = await rig.send("verify", seed=42)

    assert response.headers["x-seedtape-drift"] == "content", "still measured"
    assert text(response) == text(recorded), "but the suite sees the recording"
    assert rig.sim.calls == 2


@pytest.mark.anyio
async def test_update_re_records_only_the_drifted(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(update=True)
    await rig.send("record", seed=42)  # seeded: drifts once seed_drift is on
    await rig.send("record", temperature=0)  # unseeded greedy: seed_drift never touches it
    greedy = rig.engine.store.path_for("default", rig.key(temperature=0))
    greedy_before = greedy.read_bytes()
    rig.new_run()
    rig.sim.config.seed_drift = 1.0

    drifted = await rig.send("verify", seed=42)
    steady = await rig.send("verify", temperature=0)

    assert (cache(drifted), drifted.headers["x-seedtape-drift"]) == (("recorded", "1"), "content")
    assert (cache(steady), steady.headers["x-seedtape-drift"]) == (("verified", "1"), "none")
    [episode] = rig.recording(rig.key(seed=42))["episodes"]
    assert episode_text(episode) == text(drifted), "episode 1 rewritten with the live answer"
    assert greedy.read_bytes() == greedy_before, "the identical one is untouched"
    assert rig.stats()["recorded"] == 3 and len(rig.files()) == 2


@pytest.mark.anyio
@pytest.mark.parametrize("stream", [False, True])
async def test_update_of_a_big_answer_saves_it_off_the_loop_and_still_answers_with_it_whole(
    make_rig: Callable[..., Rig], stream: bool
) -> None:
    """An answer over 256 KiB is saved in a worker thread, which empties what it built
    in slices; the live answer verify then sends must not be among what it empties."""
    rig = make_rig(update=True)
    await rig.send("record", seed=42, stream=stream)
    rig.new_run()
    rig.sim.config.seed_drift = 1.0
    # Big: 3,000 more events in the stream, half a megabyte of padding in the JSON.
    rig.sim.inject({"kind": "flood", "events": 3000} if stream else {"kind": "gzip_bomb", "mb": 0.5})

    response = await rig.send("verify", seed=42, stream=stream)

    assert cache(response) == ("recorded", "1")
    [episode] = rig.recording(rig.key(seed=42, stream=stream))["episodes"]
    sent = bytes(response.body)
    assert len(sent) > 256 * 1024
    if stream:
        assert sent.endswith(b"data: [DONE]\n\n") and sent.count(b"\n\n") == len(episode["events"]) > 3000
    else:
        assert text(response) == episode_text(episode) and len(json.loads(sent)["padding"]) == 512 * 1024
