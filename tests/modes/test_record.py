"""record against the engine: always upstream; the n-th request rewrites episode n."""

from __future__ import annotations

import pytest

from tests.modes._engine import Rig, cache, episode_text, seedtape_headers, text


@pytest.mark.anyio
async def test_a_new_request_is_forwarded_and_written(rig: Rig) -> None:
    response = await rig.send("record", seed=42)

    key = rig.key(seed=42)
    assert response.status_code == 200
    assert seedtape_headers(response) == {
        "x-seedtape-mode": "record",
        "x-seedtape-cache": "recorded",
        "x-seedtape-key": key,
        "x-seedtape-episode": "1",
    }
    [path] = rig.files()
    assert path.name == key[:16] + ".json" and path.parent.name == "default"
    recording = rig.recording(key)
    assert recording["request"]["body"]["seed"] == 42
    assert [episode_text(e) for e in recording["episodes"]] == [text(response)]
    assert rig.sim.calls == 1
    assert (rig.stats()["upstream_calls"], rig.stats()["recorded"]) == (1, 1)


@pytest.mark.anyio
async def test_a_recorded_request_still_goes_upstream(rig: Rig) -> None:
    await rig.send("record", seed=42)
    rig.new_run()

    response = await rig.send("record", seed=42)

    assert cache(response) == ("recorded", "1")
    assert rig.sim.calls == 2 and rig.stats()["hits"] == 0
    assert len(rig.recording(rig.key(seed=42))["episodes"]) == 1


@pytest.mark.anyio
async def test_re_recording_rewrites_episode_n_and_never_grows_the_file(rig: Rig) -> None:
    first_run = [text(await rig.send("record")) for _ in range(2)]
    rig.new_run()

    second_run = [await rig.send("record") for _ in range(2)]

    assert [cache(r) for r in second_run] == [("recorded", "1"), ("recorded", "2")]
    episodes = rig.recording(rig.key())["episodes"]
    assert [episode_text(e) for e in episodes] == [text(r) for r in second_run], "the second run's answers, in order"
    assert [episode_text(e) for e in episodes] != first_run
    assert len(rig.files()) == 1 and rig.sim.calls == 4


@pytest.mark.anyio
async def test_a_longer_run_appends_the_extra_episodes(rig: Rig) -> None:
    await rig.send("record")
    rig.new_run()

    responses = [await rig.send("record") for _ in range(3)]

    assert [cache(r) for r in responses] == [("recorded", "1"), ("recorded", "2"), ("recorded", "3")]
    assert len(rig.recording(rig.key())["episodes"]) == 3


@pytest.mark.anyio
async def test_a_stream_is_recorded_as_its_events(rig: Rig) -> None:
    response = await rig.send("record", seed=42, stream=True)

    assert cache(response) == ("recorded", "1")
    assert bytes(response.body).endswith(b"data: [DONE]\n\n")
    [episode] = rig.recording(rig.key(seed=42, stream=True))["episodes"]
    assert "body" not in episode and episode["events"][-1]["data"] == "[DONE]"
