"""Issue 13, item 3: independent proxies on one cassettes folder never lose an
acknowledged recording.

No ``--workers``: N separate ``seedtape serve`` processes, each with a cache
directory of its own (two terminals, a test run beside a notebook), and the pytest
plugin's in-process proxy, all recording into the same cassettes folder at once.
Every answer a client was told is ``recorded`` must be in the files afterwards, at
the episode its header named; in auto mode, identical seeded requests cost one
upstream call across all the processes (single-flight). Before, 16 threads over two
processes lost 21-23 of ~321 unseeded recordings, seeded ones 2 of 212 (and paid 2
upstream calls twice), and record mode 100 of 400.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from seedtape.cassette import read_recording
from seedtape.client.inprocess import InProcessProxy
from tests.conftest import AZURE_KEY
from tests.faults._helpers import cassette_files, serving

CHAT = "/openai/deployments/gpt-4/chat/completions?api-version=2024-02-01"
AUTH = {"api-key": AZURE_KEY}
REQUESTS_EACH = 220
THREADS_EACH = 6
SEEDED = [{"model": "gpt-4", "seed": s, "messages": [{"role": "user", "content": f"Story {s} about a red panda."}]} for s in range(8)]
UNSEEDED = [{"model": "gpt-4", "temperature": 0.9, "messages": [{"role": "user", "content": f"Surprise me, {i}."}]} for i in range(4)]


@dataclass(frozen=True)
class Answer:
    proxy: str
    seeded: bool
    status: int
    cache: str
    key: str
    episode: int | None
    id: str


def drive(name: str, send: Callable[[dict[str, Any], dict[str, str]], httpx.Response], seed: int) -> list[Answer]:
    """REQUESTS_EACH requests from THREADS_EACH threads, drawn from a few seeded and
    unseeded bodies so that keys collide across proxies. Half the threads share the
    proxy's own session (so each proxy's n-th unseeded request races the others' to
    record episode n), the other half are sessions of their own."""
    rng = random.Random(seed)
    plan = [(rng.random() < 0.5, rng.randrange(8)) for _ in range(REQUESTS_EACH)]
    lock = threading.Lock()
    answers: list[Answer] = []

    def worker(thread: int) -> None:
        session = {"x-seedtape-session": f"{name}-{thread}"} if thread % 2 else {}
        for seeded, index in plan[thread::THREADS_EACH]:
            body = SEEDED[index] if seeded else UNSEEDED[index % len(UNSEEDED)]
            response = send(body, {**AUTH, **session})
            answer = Answer(
                name,
                seeded,
                response.status_code,
                response.headers.get("x-seedtape-cache", ""),
                response.headers.get("x-seedtape-key", ""),
                int(response.headers["x-seedtape-episode"]) if "x-seedtape-episode" in response.headers else None,
                response.json().get("id", "") if response.status_code == 200 else response.text[:200],
            )
            with lock:
                answers.append(answer)

    with ThreadPoolExecutor(THREADS_EACH) as pool:
        list(pool.map(worker, range(THREADS_EACH)))
    return answers


def lost_recordings(answers: list[Answer], cassettes: Path) -> list[Answer]:
    """Answers marked recorded whose id is not at their episode in their key's file."""
    files = {rec.key: [e["body"].get("id") for e in rec.episodes] for rec in map(read_recording, cassette_files(cassettes))}
    lost = []
    for answer in answers:
        if answer.cache != "recorded":
            continue
        ids = files.get(answer.key, [])
        if answer.episode is None or answer.episode > len(ids) or ids[answer.episode - 1] != answer.id:
            lost.append(answer)
    return lost


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["auto", "record"])
@pytest.mark.parametrize("processes", [2, 4])
def test_independent_proxies_on_one_folder_never_lose_an_acknowledged_recording(
    processes: int, mode: str, tmp_path: Path, sim: Any, sim_url: str
) -> None:
    cassettes = tmp_path / "cassettes"
    sim.update_config({"first_byte_delay_ms": 20.0})  # answers overlap: the window a lost update needs
    with ExitStack() as stack:
        servers = [
            stack.enter_context(
                serving(
                    ["--mode", mode, "--upstream", sim_url, "--cassettes", str(cassettes), "--cache-dir", str(tmp_path / f"cache-{i}")],
                    tmp_path,
                    tmp_path / "logs" / f"serve-{i}.log",
                )
            )
            for i in range(processes)
        ]
        inprocess = stack.enter_context(
            InProcessProxy(mode=mode, upstream=sim_url, cassettes_dir=cassettes, cache_dir=tmp_path / "cache-inprocess", http="httpx")
        )
        clients = [stack.enter_context(httpx.Client(base_url=s.url, timeout=60)) for s in servers]
        local = inprocess.http_client()
        senders: list[tuple[str, Callable[[dict[str, Any], dict[str, str]], httpx.Response]]] = [
            (f"serve{i}", lambda body, headers, c=c: c.post(CHAT, json=body, headers=headers)) for i, c in enumerate(clients)
        ]
        senders.append(("inprocess", lambda body, headers: local.post(CHAT, json=body, headers=headers)))
        with ThreadPoolExecutor(len(senders)) as pool:
            results = list(pool.map(lambda item: drive(item[1][0], item[1][1], item[0]), enumerate(senders)))
    answers = [a for result in results for a in result]

    assert len(answers) == (processes + 1) * REQUESTS_EACH
    assert Counter(a.status for a in answers) == {200: len(answers)}, [a for a in answers if a.status != 200][:3]
    recorded = [a for a in answers if a.cache == "recorded"]
    lost = lost_recordings(answers, cassettes)
    print(f"\n{processes} serve + 1 in-process, {mode}: {len(answers)} answers, {len(recorded)} recorded, {len(lost)} lost")
    assert lost == [], f"{len(lost)} of {len(recorded)} acknowledged recordings are not in the files: {lost[:3]}"
    if mode == "record":
        assert len(recorded) == len(answers) and sim.calls == len(answers)
    else:
        seeded_recorded = Counter(a.key for a in recorded if a.seeded)
        assert set(seeded_recorded.values()) <= {1}, "single-flight across processes: one upstream call per seeded key"
        assert sim.calls == len(recorded), "every upstream call was recorded, none paid twice"
    assert not list(cassettes.rglob(".tmp-*")), "no temporary file left"
    assert not list((cassettes / ".seedtape-locks").glob("*.lock")), "no lock file left"
