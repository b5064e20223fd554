"""replay against the engine: serve episode n, explain a miss, never call upstream."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from seedtape.errors import ProxyError
from tests.modes._engine import Rig, cache, seedtape_headers, text


@pytest.mark.anyio
async def test_hit_serves_the_recording_without_upstream(rig: Rig) -> None:
    recorded = await rig.send("record", seed=42)
    rig.new_session()

    replayed = await rig.send("replay", seed=42)

    assert replayed.status_code == 200
    assert seedtape_headers(replayed) == {
        "x-seedtape-mode": "replay",
        "x-seedtape-cache": "hit",
        "x-seedtape-key": rig.key(seed=42),
        "x-seedtape-episode": "1",
    }
    assert text(replayed) == text(recorded)
    assert rig.sim.calls == 1, "only the recording went upstream"
    assert rig.stats()["hits"] == 1


@pytest.mark.anyio
async def test_nth_request_gets_episode_n(rig: Rig) -> None:
    """Two unseeded stories recorded, two replayed, in the same order."""
    stories = [text(await rig.send("record")) for _ in range(2)]
    assert stories[0] != stories[1]
    rig.new_session()

    replayed = [await rig.send("replay") for _ in range(2)]

    assert [cache(r) for r in replayed] == [("hit", "1"), ("hit", "2")]
    assert [text(r) for r in replayed] == stories


@pytest.mark.anyio
async def test_miss_names_the_closest_recording_and_what_differs(rig: Rig) -> None:
    await rig.send("record", seed=42)
    rig.new_session()
    files = rig.files()

    with pytest.raises(ProxyError) as caught:
        await rig.send("replay", seed=7)

    response = caught.value.response()
    error = json.loads(bytes(response.body))["error"]
    assert response.status_code == 404
    assert (error["type"], error["code"]) == ("seedtape_cassette_miss", "cassette_miss")
    assert f"Closest recorded request: key {rig.key(seed=42)[:16]}" in error["message"]
    assert "seed: 7 != 42" in error["message"]
    assert rig.sim.calls == 1 and rig.stats()["misses"] == 1
    assert rig.files() == files, "replay writes nothing"


@pytest.mark.anyio
async def test_miss_on_an_empty_cassette(rig: Rig) -> None:
    with pytest.raises(ProxyError) as caught:
        await rig.send("replay", seed=42)

    assert caught.value.status == 404
    assert "the cassette is empty" in caught.value.message
    assert rig.sim.calls == 0 and rig.files() == []


@pytest.mark.anyio
async def test_past_the_last_episode_the_last_repeats(rig: Rig) -> None:
    await rig.send("record")
    rig.new_session()

    replayed = [await rig.send("replay") for _ in range(3)]

    assert [cache(r) for r in replayed] == [("hit", "1")] * 3


@pytest.mark.anyio
async def test_past_the_last_episode_is_an_error_with_replay_exhausted_error(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(replay_exhausted="error")
    await rig.send("record")
    await rig.send("record")
    rig.new_session()
    assert [cache(await rig.send("replay")) for _ in range(2)] == [("hit", "1"), ("hit", "2")]

    with pytest.raises(ProxyError) as caught:
        await rig.send("replay")

    assert (caught.value.status, caught.value.type) == (404, "seedtape_episodes_exhausted")
    assert "recorded 2 time(s)" in caught.value.message and "occurrence 3" in caught.value.message
    assert rig.sim.calls == 2
