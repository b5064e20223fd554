"""In-process sync clients: replays run in the caller's thread, everything else on the
background loop; both paths share one app (counters, cassettes) and give the same
answers. Upstream is the built-in simulator, in-process: no network."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from client_shim import InProcessProxy

MESSAGES = [{"role": "user", "content": "Create a story about red panda."}]


def _record(tmp_path: Path, http: str) -> None:
    with InProcessProxy(mode="auto", upstream="sim", cassettes_dir=tmp_path / "c", cache_dir=tmp_path / "k", http=http) as proxy:
        client = proxy.openai()
        client.chat.completions.create(model="gpt-4", messages=MESSAGES, seed=42)
        client.chat.completions.create(model="gpt-4", messages=MESSAGES, temperature=0.7)  # unseeded: two episodes
        client.chat.completions.create(model="gpt-4", messages=MESSAGES, temperature=0.7)
        list(client.chat.completions.create(model="gpt-4", messages=MESSAGES, seed=7, stream=True))


@pytest.mark.parametrize("http", ["httpx2", "httpx"])
def test_replays_in_the_callers_thread_match_the_recording(tmp_path: Path, http: str) -> None:
    _record(tmp_path, http)
    with InProcessProxy(mode="replay", cassettes_dir=tmp_path / "c", cache_dir=tmp_path / "k", http=http) as proxy:
        client = proxy.openai()
        raw = client.chat.completions.with_raw_response.create(model="gpt-4", messages=MESSAGES, seed=42)
        assert raw.headers["x-seedtape-cache"] == "hit" and raw.headers["x-seedtape-mode"] == "replay"
        first = client.chat.completions.create(model="gpt-4", messages=MESSAGES, temperature=0.7).choices[0].message.content
        second = client.chat.completions.create(model="gpt-4", messages=MESSAGES, temperature=0.7).choices[0].message.content
        assert first != second  # episode 1, then episode 2
        chunks = list(client.chat.completions.create(model="gpt-4", messages=MESSAGES, seed=7, stream=True))
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert proxy._loop is not None and proxy._loop._portal is None  # no background thread was needed


def test_threads_share_episode_counters(tmp_path: Path) -> None:
    _record(tmp_path, "httpx2")
    with InProcessProxy(mode="replay", cassettes_dir=tmp_path / "c", cache_dir=tmp_path / "k") as proxy:
        client = proxy.openai()
        episodes: list[str] = []

        def one() -> None:
            raw = client.chat.completions.with_raw_response.create(model="gpt-4", messages=MESSAGES, temperature=0.7)
            episodes.append(raw.headers["x-seedtape-episode"])

        threads = [threading.Thread(target=one) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(episodes) == ["1", "2"]


def test_other_modes_and_running_loops_use_the_background_loop(tmp_path: Path) -> None:
    with InProcessProxy(mode="replay", upstream="sim", cassettes_dir=tmp_path / "c", cache_dir=tmp_path / "k") as proxy:
        client = proxy.openai()
        auto = client.chat.completions.with_raw_response.create(
            model="gpt-4", messages=MESSAGES, seed=1, extra_headers={"x-seedtape-mode": "auto"}
        )
        assert auto.headers["x-seedtape-cache"] == "recorded"  # went upstream: on the background loop
        assert proxy._loop._portal is not None

        async def inside_a_loop() -> str:  # a sync client called from async code
            raw = client.chat.completions.with_raw_response.create(model="gpt-4", messages=MESSAGES, seed=1)
            return raw.headers["x-seedtape-cache"]

        assert asyncio.run(inside_a_loop()) == "hit"
