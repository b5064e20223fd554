"""The store away: killed mid-run, slow (stopped), or required. Nothing that works
without ``--store`` may fail because of it, and the proxies recover by themselves."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.conftest import RunningProxy
from tests.faults._helpers import assert_openai_error, cassette_files
from tests.teams._redis import RedisServer
from tests.teams.test_shared_store import UNSEEDED, chat, seeded


def wait_for_state(proxy: RunningProxy, state: str, timeout: float = 15.0) -> dict[str, Any]:
    """Poll /_seedtape/stats (which also starts the recovery probe) until the store is in ``state``."""
    deadline = time.monotonic() + timeout
    while True:
        store = proxy.stats()["store"]
        if store["state"] == state or time.monotonic() > deadline:
            return dict(store)
        time.sleep(0.1)


@pytest.mark.slow
def test_redis_killed_mid_run_then_restarted(
    team_proxy: Callable[..., RunningProxy], redis_server: RedisServer, sim: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="seedtape")
    a, b = team_proxy(), team_proxy()
    session = {"x-seedtape-session": "across-the-outage"}
    assert chat(a, seeded(1)).headers["x-seedtape-cache"] == "recorded"
    assert chat(b, seeded(1)).headers["x-seedtape-cache"] == "hit"
    assert [chat(a, UNSEEDED, **session).headers["x-seedtape-episode"] for _ in range(2)] == ["1", "2"]

    redis_server.kill()
    during = [chat(a, seeded(1)), chat(a, seeded(2)), chat(b, seeded(1)), chat(b, seeded(3)), chat(a, UNSEEDED, **session)]
    assert [r.status_code for r in during] == [200] * 5, "no 5xx: local cassettes answer, misses are recorded"
    assert [r.headers["x-seedtape-cache"] for r in during] == ["hit", "recorded", "recorded", "recorded", "recorded"]
    assert during[4].headers["x-seedtape-episode"] == "3", "the session's numbers go on locally"
    assert len(cassette_files(a.settings.cassettes_dir)) == 3 and len(cassette_files(b.settings.cassettes_dir)) == 2
    for proxy in (a, b):
        store = proxy.stats()["store"]
        assert store["state"] == "degraded" and store["outages"] == 1 and "Connection" in store["last_error"]
    health = httpx.get(a.url + "/_seedtape/health")
    assert health.status_code == 200 and health.json()["store"] == "degraded"
    assert sum("is unreachable" in r.getMessage() for r in caplog.records) == 2, "said once per proxy"

    redis_server.start()  # same port, empty (no persistence): the proxies were not restarted
    for proxy in (a, b):
        assert wait_for_state(proxy, "ok")["state"] == "ok"
    assert sum("is back after" in r.getMessage() for r in caplog.records) == 2, "recovery said once per proxy"
    deadline = time.monotonic() + 10
    while (a.stats()["store"]["pending"] or b.stats()["store"]["pending"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    # What was recorded during the outage reached the store: a third proxy gets it all without upstream.
    calls = sim.calls
    c = team_proxy()
    assert [chat(c, seeded(i)).headers["x-seedtape-cache"] for i in (1, 2, 3)] == ["hit"] * 3 and sim.calls == calls
    assert chat(a, UNSEEDED, **session).headers["x-seedtape-episode"] == "4", "the counter resumes above the outage"
    assert sum("is unreachable" in r.getMessage() for r in caplog.records) == 2


@pytest.mark.slow
def test_a_slow_redis_costs_one_timeout_then_nothing(team_proxy: Callable[..., RunningProxy], redis_server: RedisServer) -> None:
    a = team_proxy(store_timeout=0.3)
    assert chat(a, seeded(1)).status_code == 200
    redis_server.pause()  # accepts nothing, answers nothing
    try:
        started = time.monotonic()
        first = chat(a, seeded(2))
        first_took = time.monotonic() - started
        started = time.monotonic()
        second = chat(a, seeded(3))
        second_took = time.monotonic() - started
        assert (first.status_code, second.status_code) == (200, 200)
        assert first_took < 3.0, f"bounded by --store-timeout: {first_took:.2f} s"
        assert second_took < first_took, "degraded: Redis is not even asked"
        assert a.stats()["store"]["state"] == "degraded"
    finally:
        redis_server.resume()
    assert wait_for_state(a, "ok")["state"] == "ok"


@pytest.mark.slow
def test_store_required_answers_a_clear_503_while_redis_is_away(team_proxy: Callable[..., RunningProxy], redis_server: RedisServer) -> None:
    a = team_proxy(store_required=True)
    assert chat(a, seeded(1)).status_code == 200
    redis_server.kill()
    chat(a, seeded(2))  # the first request finds out (or gets the 503 itself)
    refused = chat(a, seeded(1))
    error = assert_openai_error(refused, 503, "seedtape_store_unavailable")
    assert "--store-required" in error["message"] and refused.headers["retry-after"] == "1"
    assert httpx.get(a.url + "/_seedtape/health").status_code == 503
    redis_server.start()
    assert wait_for_state(a, "ok")["state"] == "ok"
    assert chat(a, seeded(1)).status_code == 200
