"""Crashes and damage: SIGKILL mid-burst, a corrupted or deleted cache, a broken
cassette file, temporary files left behind. Nothing a client was told is recorded
may be lost, and the next start must work.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from click.testing import CliRunner

from client_shim import azure_client
from seedtape.cassette import read_recording
from seedtape.cli import main
from seedtape.store import DISK_TIER_MIN_BYTES
from tests.conftest import AZURE_KEY, RunningProxy
from tests.faults._helpers import PANDA, assert_openai_error, cassette_files, closed_port_url, serving, start_serve

CHAT = "/openai/deployments/gpt-4/chat/completions?api-version=2024-02-01"
AUTH = {"api-key": AZURE_KEY}


def events_of(raw: bytes) -> list[Any]:
    data = [line[6:] for line in raw.decode().split("\n") if line.startswith("data: ")]
    return [item if item == "[DONE]" else json.loads(item) for item in data]


def episode_payload(episode: dict[str, Any]) -> Any:
    return [e["data"] for e in episode["events"]] if "events" in episode else episode["body"]


async def burst(
    url: str, kill: Callable[[], None], kill_after: int, total: int = 400, concurrency: int = 48
) -> tuple[list[dict[str, Any]], int]:
    """Recordings in flight from many clients; SIGKILL the server after ``kill_after``
    of them were acknowledged. Returns what clients were told was recorded."""
    acknowledged: list[dict[str, Any]] = []
    failed = 0
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def one(client: httpx.AsyncClient, i: int) -> None:
        nonlocal failed
        # A third distinct seeded prompts (new files), the rest unseeded repeats of 12
        # prompts: auto mode appends them as episodes, rewriting the same files again and again.
        body: dict[str, Any] = {
            "model": "gpt-4",
            "stream": i % 4 == 0,
            "messages": [{"role": "user", "content": f"Story number {i % 12} about a red panda."}],
        }
        if i % 3 == 0:
            body.update(seed=i, messages=[{"role": "user", "content": f"Seeded story {i}."}])
        async with gate:
            try:
                async with client.stream("POST", url + CHAT, json=body, headers=AUTH) as response:
                    raw = await response.aread()
            except httpx.HTTPError:
                failed += 1
                return
        if response.headers.get("x-seedtape-cache") == "recorded":
            payload = events_of(raw) if body["stream"] else json.loads(raw)
            acknowledged.append(
                {
                    "key": response.headers["x-seedtape-key"],
                    "episode": int(response.headers["x-seedtape-episode"]),
                    "body": body,
                    "payload": payload,
                }
            )

    async def killer() -> None:
        deadline = time.monotonic() + 30
        while len(acknowledged) < kill_after and time.monotonic() < deadline:
            await asyncio.sleep(0.002)
        kill()

    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        await asyncio.gather(killer(), *(one(client, i) for i in range(total)))
    return acknowledged, failed


@pytest.mark.slow
def test_sigkill_during_a_burst_of_recordings_loses_nothing_acknowledged(tmp_path: Path, sim: Any, sim_url: str) -> None:
    sim.update_config({"first_byte_delay_ms": 5.0, "stream_delay_ms": 2.0})
    cassettes, cache = tmp_path / "cassettes", tmp_path / "cache"
    args = ["--upstream", sim_url, "--cassettes", str(cassettes), "--cache-dir", str(cache), "--log-level", "warning"]
    everything: list[dict[str, Any]] = []
    leftovers = 0
    for round_, kill_after in enumerate((30, 90, 150)):
        server = start_serve(args, tmp_path, tmp_path / "logs" / f"serve-{round_}.log")
        acknowledged, failed = asyncio.run(burst(server.url, server.kill, kill_after))
        assert server.process.returncode == -9, "killed, not shut down"
        assert len(acknowledged) >= kill_after and failed > 0, (len(acknowledged), failed)
        everything += acknowledged

        # Every cassette file is a whole, valid recording ...
        files = cassette_files(cassettes)
        recordings = {read_recording(path).key: read_recording(path) for path in files}
        # ... and everything a client was told is recorded is there, as the client saw it.
        for ack in acknowledged:
            episodes = [episode_payload(e) for e in recordings[ack["key"]].episodes]
            if ack["body"]["stream"]:
                # A stream's x-seedtape-episode went out with its headers, before it was
                # saved; one that completed out of order was appended elsewhere.
                assert ack["payload"] in episodes
            else:
                assert episodes[ack["episode"] - 1] == ack["payload"]
        leftovers += len(list(cassettes.rglob(".tmp-*.json.part")))

    # The next start works whatever the crashes left, and serves every acknowledged answer.
    replay_args = ["--mode", "replay", "--upstream", closed_port_url(), "--cassettes", str(cassettes), "--cache-dir", str(cache)]
    with serving(replay_args, tmp_path, tmp_path / "logs" / "replay.log") as replay:
        for ack in everything[:: max(1, len(everything) // 60)]:
            response = httpx.post(
                replay.url + CHAT, json=ack["body"], headers={**AUTH, "x-seedtape-session": f"check-{ack['key']}-{ack['episode']}"}
            )
            assert response.status_code == 200
    assert CliRunner().invoke(main, ["ls", "--cassettes", str(cassettes)]).exit_code == 0
    print(
        f"\n3 SIGKILLs: {len(everything)} acknowledged recordings all on disk, {len(files)} files valid, "
        f"{leftovers} temp file(s) left behind by the kills"
    )


def test_leftover_temp_files_do_not_break_the_next_start_and_stale_ones_are_removed(
    proxy_factory: Callable[..., RunningProxy], tmp_path: Path
) -> None:
    recorder = proxy_factory(mode="auto")
    seeded = {"model": "gpt-4", "messages": PANDA, "seed": 4}
    assert httpx.post(recorder.url + CHAT, json=seeded, headers=AUTH).status_code == 200
    folder = recorder.settings.cassettes_dir / "default"
    stale, fresh = folder / ".tmp-crashed.json.part", folder / ".tmp-writing-now.json.part"
    stale.write_text('{"format": "seedtape/1", "key": "trunc')  # what a kill mid-write leaves
    fresh.write_text('{"format": "seedt')
    an_hour_ago = time.time() - 3600
    os.utime(stale, (an_hour_ago, an_hour_ago))

    replay = proxy_factory(mode="replay", upstream=closed_port_url())  # a start: the lifespan runs
    assert not stale.exists(), "a temp file older than a minute is removed at start-up"
    assert fresh.exists(), "a fresh one may belong to another proxy writing right now"
    response = httpx.post(replay.url + CHAT, json=seeded, headers=AUTH)
    assert response.status_code == 200 and response.headers["x-seedtape-cache"] == "hit"
    listing = CliRunner().invoke(main, ["ls", "--cassettes", str(recorder.settings.cassettes_dir)])
    assert listing.exit_code == 0 and "tmp" not in listing.output and "broken" not in listing.output.lower()


# --------------------------------------------------------------------------- the cache directory


def record_two(proxy_factory: Callable[..., RunningProxy]) -> tuple[RunningProxy, list[dict[str, Any]], list[Any]]:
    recorder = proxy_factory(mode="auto")
    # Long prompts: the diskcache tier only indexes recordings of DISK_TIER_MIN_BYTES or more.
    long_prompt = [*PANDA, {"role": "user", "content": "Remember this: " + "bamboo " * (DISK_TIER_MIN_BYTES // 6)}]
    bodies = [{"model": "gpt-4", "messages": long_prompt, "seed": seed} for seed in (1, 2)]
    answers = [httpx.post(recorder.url + CHAT, json=b, headers=AUTH).json() for b in bodies]
    return recorder, bodies, answers


def replayed(proxy: RunningProxy, bodies: list[dict[str, Any]]) -> list[Any]:
    responses = [httpx.post(proxy.url + CHAT, json=b, headers=AUTH) for b in bodies]
    assert all(r.status_code == 200 for r in responses), [r.text[:200] for r in responses]
    return [r.json() for r in responses]


def test_corrupted_cache_directory_is_rebuilt_from_the_cassettes(proxy_factory: Callable[..., RunningProxy]) -> None:
    recorder, bodies, answers = record_two(proxy_factory)
    cache = recorder.settings.cache_dir
    assert replayed(proxy_factory(mode="replay", upstream=closed_port_url(), cache_dir=cache), bodies) == answers  # indexed
    damaged = [p for p in cache.rglob("*") if p.is_file()]
    assert damaged
    for path in damaged:
        path.write_bytes(b"\x00garbage, not a database\xff" * 64)
    fresh = proxy_factory(mode="replay", upstream=closed_port_url(), cache_dir=cache)
    assert replayed(fresh, bodies) == answers
    import diskcache

    with diskcache.Cache(str(cache / "index")) as index:
        assert len(index) == 2, "the index was rebuilt and filled again"


def test_deleted_cache_directory_while_running_keeps_serving_and_recording(proxy_factory: Callable[..., RunningProxy], sim: Any) -> None:
    recorder, bodies, answers = record_two(proxy_factory)
    proxy = proxy_factory(mode="auto", cache_dir=recorder.settings.cache_dir)
    assert replayed(proxy, bodies) == answers
    shutil.rmtree(recorder.settings.cache_dir)
    assert replayed(proxy, bodies) == answers
    new = httpx.post(proxy.url + CHAT, json={"model": "gpt-4", "messages": PANDA, "seed": 3}, headers=AUTH)
    assert new.status_code == 200 and new.headers["x-seedtape-cache"] == "recorded"
    assert len(cassette_files(recorder.settings.cassettes_dir)) == 3


def test_cache_path_that_is_not_a_directory_only_slows_lookups(proxy_factory: Callable[..., RunningProxy], tmp_path: Path) -> None:
    _recorder, bodies, answers = record_two(proxy_factory)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache should be")
    assert replayed(proxy_factory(mode="replay", upstream=closed_port_url(), cache_dir=blocker), bodies) == answers


# --------------------------------------------------------------------------- a broken cassette file

BROKEN: dict[str, Callable[[str], str]] = {
    "broken-json": lambda text: text[: len(text) // 2],
    "trailing-comma": lambda text: text.replace('"status": 200', '"status": 200,,'),
    "not-utf8": lambda text: text.replace("gpt-4", "gpt-\udcff"),
    "wrong-format": lambda text: text.replace("seedtape/1", "seedtape/9"),
    "episodes-not-a-list": lambda text: json.dumps({**json.loads(text), "episodes": {"0": 1}}),
    "episode-without-status": lambda text: json.dumps({**json.loads(text), "episodes": [{"body": {}}]}),
    "events-not-a-list": lambda text: json.dumps({**json.loads(text), "episodes": [{"status": 200, "events": 7}]}),
    "event-not-an-object": lambda text: json.dumps({**json.loads(text), "episodes": [{"status": 200, "events": ["x"]}]}),
}


@pytest.mark.parametrize("damage", sorted(BROKEN))
@pytest.mark.parametrize("mode", ["replay", "auto"])
def test_hand_edited_broken_cassette_is_a_clear_error_naming_the_file(
    damage: str, mode: str, proxy_factory: Callable[..., RunningProxy], sim: Any
) -> None:
    recorder, bodies, answers = record_two(proxy_factory)
    key = httpx.post(recorder.url + CHAT, json=bodies[0], headers=AUTH).headers["x-seedtape-key"]
    path = recorder.settings.cassettes_dir / "default" / f"{key[:16]}.json"
    text = BROKEN[damage](path.read_text())
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    calls_before = sim.calls

    proxy = proxy_factory(mode=mode)
    response = httpx.post(proxy.url + CHAT, json=bodies[0], headers=AUTH)
    error = assert_openai_error(response, 500, "seedtape_cassette_error")
    assert str(path) in error["message"] and "Fix or delete the file" in error["message"]
    assert response.headers["x-should-retry"] == "false"
    with pytest.raises(openai.InternalServerError):
        azure_client(proxy.url, api_key=AZURE_KEY, max_retries=2).chat.completions.create(**bodies[0])
    assert proxy.stats()["requests"] == 2, "the SDK did not retry a broken file"
    assert sim.calls == calls_before, "and nothing was sent upstream in its place"
    assert replayed(proxy, bodies[1:]) == answers[1:], "other keys keep working"


def test_record_mode_over_a_broken_cassette_keeps_the_broken_copy(proxy_factory: Callable[..., RunningProxy]) -> None:
    recorder, bodies, _ = record_two(proxy_factory)
    folder = recorder.settings.cassettes_dir / "default"
    key = httpx.post(recorder.url + CHAT, json=bodies[0], headers=AUTH).headers["x-seedtape-key"]
    path = folder / f"{key[:16]}.json"
    broken = path.read_text()[:100]
    path.write_text(broken)
    proxy = proxy_factory(mode="record")
    assert httpx.post(proxy.url + CHAT, json=bodies[0], headers=AUTH).headers["x-seedtape-cache"] == "recorded"
    assert read_recording(path).key == key
    [aside] = folder.glob(f"{path.name}.broken-*")
    assert aside.read_text() == broken, "a hand edit gone wrong is kept, not lost"
    assert len(cassette_files(recorder.settings.cassettes_dir)) == 2
