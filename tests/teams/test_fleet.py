"""The fleet as the issue asks to show it: three independent ``seedtape serve``
processes, three empty cassette folders, one real Redis, the simulator upstream."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import AZURE_KEY
from tests.faults._helpers import ServeProcess, cassette_files, serving
from tests.faults.test_concurrency import wait_for_workers
from tests.teams._redis import RedisServer

CHAT = "/openai/deployments/gpt-4/chat/completions?api-version=2024-02-01"
AUTH = {"api-key": AZURE_KEY}
N = 200
UNSEEDED = {"model": "gpt-4", "temperature": 0.9, "messages": [{"role": "user", "content": "Surprise me."}]}


def seeded(i: int) -> dict[str, Any]:
    return {"model": "gpt-4", "seed": 42, "messages": [{"role": "user", "content": f"Fleet story {i} about a red panda."}]}


@contextmanager
def fleet(tmp_path: Path, redis_url: str, upstream: str, workers: tuple[int, ...] = (1, 1, 1)) -> Iterator[list[ServeProcess]]:
    """One ``seedtape serve`` per entry of ``workers`` (its --workers), each with its own folders."""
    with ExitStack() as stack:
        proxies = []
        for i, n in enumerate(workers):
            args = ["--upstream", upstream, "--store", redis_url, "--cassettes", str(tmp_path / f"cassettes-{i}")]
            args += ["--cache-dir", str(tmp_path / f"cache-{i}"), "--log-level", "info", "--workers", str(n)]
            proxy = stack.enter_context(serving(args, tmp_path, tmp_path / "logs" / f"proxy-{i}.log"))
            wait_for_workers(proxy.log, n)
            proxies.append(proxy)
        yield proxies


async def spread(proxies: list[ServeProcess], bodies: list[dict[str, Any]], headers: dict[str, str] | None = None) -> list[httpx.Response]:
    """All at once, request i to proxy i mod 3, each on its own connection."""
    limits = httpx.Limits(max_connections=len(bodies), max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def one(i: int, body: dict[str, Any]) -> httpx.Response:
            response = await client.post(proxies[i % len(proxies)].url + CHAT, json=body, headers={**AUTH, **(headers or {})})
            await response.aread()
            return response

        return list(await asyncio.gather(*(one(i, b) for i, b in enumerate(bodies))))


def post(proxy: ServeProcess, body: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.post(proxy.url + CHAT, json=body, headers={**AUTH, **headers}, timeout=30)


def content(response: httpx.Response) -> str:
    return str(response.json()["choices"][0]["message"]["content"])


def stats(proxy: ServeProcess, scope: str = "") -> dict[str, Any]:
    return dict(httpx.get(proxy.url + "/_seedtape/stats" + (f"?scope={scope}" if scope else ""), timeout=10).json())


@pytest.mark.slow
def test_three_proxies_share_recordings_single_flight_and_episode_numbers(
    tmp_path: Path, redis_server: RedisServer, sim: Any, sim_url: str
) -> None:
    # C runs two worker processes: they take part in the fleet like any proxy.
    with fleet(tmp_path, redis_server.url, sim_url, workers=(1, 1, 2)) as (a, b, c):
        # A recording made through A is a hit on B and C, with no upstream call.
        recorded = post(a, seeded(0))
        assert recorded.headers["x-seedtape-cache"] == "recorded" and sim.calls == 1
        for other in (b, c):
            hit = post(other, seeded(0))
            assert hit.headers["x-seedtape-cache"] == "hit" and hit.json() == recorded.json()
        assert sim.calls == 1
        assert [len(cassette_files(tmp_path / f"cassettes-{i}")) for i in range(3)] == [1, 0, 0]

        # 200 concurrent identical misses spread over the three: exactly one upstream call.
        sim.update_config({"first_byte_delay_ms": 300.0})  # all arrive while the first is in flight
        burst = asyncio.run(spread([a, b, c], [seeded(1)] * N))
        sim.update_config({"first_byte_delay_ms": 0.0})
        assert Counter(r.status_code for r in burst) == {200: N}
        assert sim.calls == 2, f"{sim.calls - 1} upstream calls for {N} identical concurrent misses"
        assert Counter(r.headers["x-seedtape-cache"] for r in burst) == {"recorded": 1, "hit": N - 1}
        assert len({json.dumps(r.json(), sort_keys=True) for r in burst}) == 1

        # A shared session numbers episodes 1..n across them, in order...
        session = {"x-seedtape-session": "fleet-run-1"}
        sequence = [post((a, b, c)[i % 3], UNSEEDED, **session) for i in range(9)]
        assert [r.headers["x-seedtape-episode"] for r in sequence] == [str(n) for n in range(1, 10)]
        assert [r.headers["x-seedtape-cache"] for r in sequence] == ["recorded"] * 9 and sim.calls == 11
        # ...and another session replays them across the fleet, at once, each exactly once.
        again = asyncio.run(spread([c, b, a], [UNSEEDED] * 9, {"x-seedtape-session": "fleet-run-2"}))
        assert sorted(int(r.headers["x-seedtape-episode"]) for r in again) == list(range(1, 10))
        assert all(r.headers["x-seedtape-cache"] == "hit" for r in again) and sim.calls == 11
        texts = [content(r) for r in sequence]
        assert all(content(r) == texts[int(r.headers["x-seedtape-episode"]) - 1] for r in again)

        # The fleet's statistics add up the three (each flushes within half a second).
        deadline = time.monotonic() + 10
        while (fleet_stats := stats(a, "fleet"))["requests"] < 3 + N + 18 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert (fleet_stats["requests"], fleet_stats["upstream_calls"]) == (3 + N + 18, 11)
        assert fleet_stats["proxies"] in (3, 4), "A, B and C's worker(s) that served requests"
        assert sum(stats(p)["requests"] for p in (a, b, c)) == 3 + N + 18


@pytest.mark.slow
def test_redis_killed_under_a_running_fleet_then_restarted(tmp_path: Path, redis_server: RedisServer, sim: Any, sim_url: str) -> None:
    with fleet(tmp_path, redis_server.url, sim_url) as proxies:
        a, _, c = proxies
        for i in range(6):
            post(proxies[i % 3], seeded(i))  # six keys, each in one proxy's folder and in the store
        assert sim.calls == 6
        redis_server.kill()

        # Every proxy asked for all six keys plus six new ones, concurrently.
        bodies = [seeded(j) for j in range(12) for _ in range(3)]  # request i goes to proxy i mod 3
        during = asyncio.run(spread(proxies, bodies))
        assert not [r.status_code for r in during if r.status_code >= 500], "no 5xx with Redis gone"
        by_proxy: dict[str, Counter[str]] = {p.url: Counter() for p in proxies}
        for i, response in enumerate(during):
            by_proxy[proxies[i % 3].url][response.headers["x-seedtape-cache"]] += 1
        for proxy in proxies:
            # its own two keys are local hits; the ten others were recorded locally
            assert by_proxy[proxy.url] == {"hit": 2, "recorded": 10}, by_proxy
            assert stats(proxy)["store"]["state"] == "degraded"
        assert all(len(cassette_files(tmp_path / f"cassettes-{i}")) == 12 for i in range(3))

        redis_server.start()  # same port, empty; the proxies keep running
        deadline = time.monotonic() + 20
        while any(stats(p)["store"]["state"] != "ok" for p in proxies) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [stats(p)["store"]["state"] for p in proxies] == ["ok"] * 3
        calls = sim.calls
        fresh = post(a, seeded(100))
        assert fresh.headers["x-seedtape-cache"] == "recorded" and sim.calls == calls + 1
        assert post(c, seeded(100)).headers["x-seedtape-cache"] == "hit" and sim.calls == calls + 1, "sharing again"

    for i in range(3):
        log = (tmp_path / "logs" / f"proxy-{i}.log").read_text()
        assert log.count("is unreachable") == 1 and log.count("is back after") == 1, log[-3000:]
