"""passthrough against the engine: always upstream, nothing written, recordings ignored."""

from __future__ import annotations

import pytest

from tests.modes._engine import Rig, seedtape_headers, text


@pytest.mark.anyio
async def test_forwards_and_writes_nothing(rig: Rig) -> None:
    responses = [await rig.send("passthrough", seed=42) for _ in range(2)]

    assert [r.status_code for r in responses] == [200, 200]
    assert seedtape_headers(responses[0]) == {
        "x-seedtape-mode": "passthrough",
        "x-seedtape-cache": "bypass",
        "x-seedtape-key": rig.key(seed=42),
    }, "no episode: nothing was served or recorded"
    assert text(responses[0]) == text(responses[1])
    assert rig.sim.calls == 2
    assert rig.files() == []
    assert rig.stats()["upstream_calls"] == 2 and rig.stats()["recorded"] == rig.stats()["hits"] == 0


@pytest.mark.anyio
async def test_a_recording_is_neither_served_nor_touched(rig: Rig) -> None:
    await rig.send("record")
    [path] = rig.files()
    before = path.read_bytes()
    rig.new_session()

    response = await rig.send("passthrough")

    assert response.headers["x-seedtape-cache"] == "bypass"
    assert rig.sim.calls == 2
    assert rig.files() == [path] and path.read_bytes() == before
