"""auto against the engine: serve what is recorded, record what is not, cache seeded repeats."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.modes._engine import Rig, cache, episode_text, seedtape_headers, text


@pytest.mark.anyio
async def test_serves_what_is_recorded(rig: Rig) -> None:
    recorded = await rig.send("record", seed=42)
    rig.new_session()

    response = await rig.send("auto", seed=42)

    assert seedtape_headers(response) == {
        "x-seedtape-mode": "auto",
        "x-seedtape-cache": "hit",
        "x-seedtape-key": rig.key(seed=42),
        "x-seedtape-episode": "1",
    }
    assert text(response) == text(recorded)
    assert rig.sim.calls == 1


@pytest.mark.anyio
async def test_records_a_miss(rig: Rig) -> None:
    response = await rig.send("auto", seed=42)

    assert response.status_code == 200
    assert cache(response) == ("recorded", "1")
    assert [episode_text(e) for e in rig.recording(rig.key(seed=42))["episodes"]] == [text(response)]
    assert rig.sim.calls == 1
    assert (rig.stats()["misses"], rig.stats()["recorded"]) == (1, 1)


@pytest.mark.anyio
async def test_a_seeded_repeat_is_served_from_the_cache(rig: Rig) -> None:
    """The notebook re-running the same seeded cell pays once."""
    first = await rig.send("auto", seed=42)
    second = await rig.send("auto", seed=42)

    assert (cache(first), cache(second)) == (("recorded", "1"), ("hit", "1"))
    assert text(second) == text(first)
    assert rig.sim.calls == 1
    assert len(rig.recording(rig.key(seed=42))["episodes"]) == 1


@pytest.mark.anyio
async def test_an_unseeded_repeat_is_recorded_as_the_next_episode(rig: Rig) -> None:
    """The caller asked for variety: two stories, both kept."""
    first = await rig.send("auto")
    second = await rig.send("auto")

    assert (cache(first), cache(second)) == (("recorded", "1"), ("recorded", "2"))
    assert text(first) != text(second)
    assert rig.sim.calls == 2
    assert [episode_text(e) for e in rig.recording(rig.key())["episodes"]] == [text(first), text(second)]


@pytest.mark.parametrize(
    ("repeats", "params", "second"),
    [
        ("auto", {"seed": 42}, ("hit", "1")),
        ("auto", {"temperature": 0}, ("hit", "1")),  # temperature 0 asks for determinism too
        ("auto", {}, ("recorded", "2")),
        ("cache", {}, ("hit", "1")),  # --repeats cache: even an unseeded repeat is served
        ("sequence", {"seed": 42}, ("recorded", "2")),  # --repeats sequence: even a seeded one goes upstream
    ],
)
@pytest.mark.anyio
async def test_repeats_option(make_rig: Callable[..., Rig], repeats: str, params: dict[str, Any], second: tuple[str, str]) -> None:
    rig = make_rig(repeats=repeats)
    await rig.send("auto", **params)

    response = await rig.send("auto", **params)

    assert cache(response) == second
    assert rig.sim.calls == (1 if second[0] == "hit" else 2)


@pytest.mark.anyio
async def test_a_new_session_replays_the_recorded_sequence(rig: Rig) -> None:
    stories = [text(await rig.send("auto")) for _ in range(2)]
    rig.new_session()

    replayed = [await rig.send("auto") for _ in range(2)]

    assert [cache(r) for r in replayed] == [("hit", "1"), ("hit", "2")]
    assert [text(r) for r in replayed] == stories
    assert rig.sim.calls == 2
