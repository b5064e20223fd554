"""Read-through and write-through between proxies on one Redis (in-process uvicorn proxies,
the simulator upstream, a real redis-server)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.conftest import AZURE_KEY, RunningProxy
from tests.faults._helpers import cassette_files, closed_port_url
from tests.teams._redis import RedisServer

CHAT = "/openai/deployments/gpt-4/chat/completions?api-version=2024-02-01"
AUTH = {"api-key": AZURE_KEY}


def seeded(i: int = 0, **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4", "seed": 42, "messages": [{"role": "user", "content": f"Tell story {i} about a red panda."}], **extra}


UNSEEDED = {"model": "gpt-4", "temperature": 0.9, "messages": [{"role": "user", "content": "Surprise me."}]}


def chat(proxy: RunningProxy, body: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.post(proxy.url + CHAT, json=body, headers={**AUTH, **headers}, timeout=30)


def text(response: httpx.Response) -> str:
    return str(response.json()["choices"][0]["message"]["content"])


def test_a_recording_made_through_one_proxy_is_a_hit_on_another(team_proxy: Callable[..., RunningProxy], sim: Any) -> None:
    a, b = team_proxy(), team_proxy()
    first = chat(a, seeded())
    assert first.headers["x-seedtape-cache"] == "recorded" and sim.calls == 1
    second = chat(b, seeded())
    assert second.status_code == 200 and second.headers["x-seedtape-cache"] == "hit"
    assert second.json() == first.json() and sim.calls == 1, "served from the store, no upstream call"
    assert cassette_files(b.settings.cassettes_dir) == [], "a store hit does not write into this proxy's cassettes"
    assert b.stats()["store"]["hits"] == 1 and a.stats()["store"]["writes"] == 1


def test_the_stored_value_is_the_cassette_file_text(team_proxy: Callable[..., RunningProxy], redis_server: RedisServer) -> None:
    import zlib

    a = team_proxy(namespace="team-a")
    chat(a, seeded())
    [path] = cassette_files(a.settings.cassettes_dir)
    [name] = redis_server.client().keys("seedtape:team-a:rec:*")
    assert name.decode() == f"seedtape:team-a:rec:default/{path.name}"
    assert zlib.decompress(redis_server.client().get(name)) == path.read_bytes()


def test_a_shared_session_numbers_episodes_across_proxies(team_proxy: Callable[..., RunningProxy], sim: Any) -> None:
    a, b = team_proxy(), team_proxy()
    session = {"x-seedtape-session": "shared-1"}
    answers = [chat(p, UNSEEDED, **session) for p in (a, b, a, b, b)]
    assert [r.headers["x-seedtape-episode"] for r in answers] == ["1", "2", "3", "4", "5"]
    assert [r.headers["x-seedtape-cache"] for r in answers] == ["recorded"] * 5 and sim.calls == 5
    # Another shared session replays the five in order, whichever proxy answers.
    replayed = [chat(p, UNSEEDED, **{"x-seedtape-session": "shared-2"}) for p in (b, a, b, a, a)]
    assert [r.headers["x-seedtape-cache"] for r in replayed] == ["hit"] * 5 and sim.calls == 5
    assert [text(r) for r in replayed] == [text(r) for r in answers]


def test_replay_mode_reads_the_store_and_never_calls_upstream(team_proxy: Callable[..., RunningProxy], sim: Any) -> None:
    chat(team_proxy(), seeded())
    replay = team_proxy(mode="replay", upstream=closed_port_url())
    assert chat(replay, seeded()).headers["x-seedtape-cache"] == "hit"
    miss = chat(replay, seeded(1))
    assert miss.status_code == 404 and miss.json()["error"]["type"] == "seedtape_cassette_miss"


def test_local_cassettes_win_and_the_team_adds_episodes_after_them(team_proxy: Callable[..., RunningProxy], sim: Any) -> None:
    """A proxy with a one-episode file asks the store only past its end."""
    a, b = team_proxy(), team_proxy()
    chat(a, UNSEEDED, **{"x-seedtape-session": "s"})  # episode 1, in a's file and the store
    chat(b, UNSEEDED, **{"x-seedtape-session": "s"})  # episode 2: b's file gets 1 and 2
    third = chat(a, UNSEEDED, **{"x-seedtape-session": "t"})
    fourth = chat(a, UNSEEDED, **{"x-seedtape-session": "t"})  # a's file has 1 episode; the store has 2
    assert (third.headers["x-seedtape-cache"], fourth.headers["x-seedtape-cache"]) == ("hit", "hit") and sim.calls == 2
    assert fourth.headers["x-seedtape-episode"] == "2"


def test_partition_by_credential_keeps_callers_apart_in_the_store(team_proxy: Callable[..., RunningProxy], sim: Any) -> None:
    a, b = team_proxy(partition_by_credential=True), team_proxy(partition_by_credential=True)
    chat(a, seeded())
    other = httpx.post(b.url + CHAT, json=seeded(), headers={"api-key": "another-callers-key-0000"}, timeout=30)
    assert other.headers["x-seedtape-cache"] == "recorded" and sim.calls == 2
    assert chat(b, seeded()).headers["x-seedtape-cache"] == "hit" and sim.calls == 2


def test_namespaces_on_one_redis_never_see_each_other(
    team_proxy: Callable[..., RunningProxy], redis_server: RedisServer, sim: Any, tmp_path: Any
) -> None:
    from seedtape.commands.sync import run_sync

    a1, a2, b = team_proxy(namespace="team-a"), team_proxy(namespace="team-a"), team_proxy(namespace="team-b")
    recorded = chat(a1, seeded())
    assert chat(a2, seeded()).headers["x-seedtape-cache"] == "hit" and sim.calls == 1
    other = chat(b, seeded())
    assert other.headers["x-seedtape-cache"] == "recorded" and sim.calls == 2, "team-b does not see team-a's recording"
    assert chat(b, UNSEEDED, **{"x-seedtape-session": "same-name"}).headers["x-seedtape-episode"] == "1"
    assert chat(a1, UNSEEDED, **{"x-seedtape-session": "same-name"}).headers["x-seedtape-episode"] == "1", "counters too"
    names = [n.decode() for n in redis_server.client().keys("*")]
    assert names and all(n.startswith(("seedtape:team-a:", "seedtape:team-b:")) for n in names)
    # And sync sees one namespace only.
    pulled = run_sync("pull", redis_server.url, "team-b", tmp_path / "pulled-b", None)
    assert pulled.new == 2
    pulled_files = {p.name: p.read_bytes() for p in cassette_files(tmp_path / "pulled-b")}
    assert pulled_files == {p.name: p.read_bytes() for p in cassette_files(b.settings.cassettes_dir)}
    assert recorded.headers["x-seedtape-key"] == other.headers["x-seedtape-key"], "same key, two namespaces"


@pytest.mark.slow
def test_fleet_stats_add_up_every_proxy(team_proxy: Callable[..., RunningProxy]) -> None:
    a, b = team_proxy(namespace="stats"), team_proxy(namespace="stats")
    chat(a, seeded())
    chat(b, seeded())
    chat(b, seeded())
    deadline = time.monotonic() + 10
    while True:
        fleet = httpx.get(a.url + "/_seedtape/stats?scope=fleet").json()
        if fleet["requests"] == 3 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert (fleet["scope"], fleet["requests"], fleet["hits"], fleet["upstream_calls"], fleet["proxies"]) == ("fleet", 3, 2, 1, 2)
    assert a.stats()["requests"] == 1, "without scope: this proxy only"


def test_fleet_stats_without_a_store_is_a_clear_error(proxy: RunningProxy) -> None:
    response = httpx.get(proxy.url + "/_seedtape/stats?scope=fleet")
    assert response.status_code == 400 and "--store" in response.json()["error"]["message"]


def test_a_stream_recorded_on_one_proxy_replays_event_for_event_on_another(team_proxy: Callable[..., RunningProxy], sim: Any) -> None:
    a, b = team_proxy(), team_proxy()
    first = chat(a, seeded(stream=True))
    second = chat(b, seeded(stream=True))
    assert (first.headers["x-seedtape-cache"], second.headers["x-seedtape-cache"]) == ("recorded", "hit") and sim.calls == 1

    def events(response: httpx.Response) -> list[Any]:
        return [json.loads(e[6:]) if e != "data: [DONE]" else e for e in response.text.split("\n\n") if e]

    assert events(second)[-1] == "data: [DONE]" and len(events(second)) > 3
    assert events(first) == events(second), "the same events, in order"


def test_store_ttl_expires_unused_recordings_and_a_hit_restarts_the_clock(
    team_proxy: Callable[..., RunningProxy], redis_server: RedisServer
) -> None:
    a, b = team_proxy(store_ttl_days=2), team_proxy(store_ttl_days=2)
    chat(a, seeded())
    client = redis_server.client()
    [name] = client.keys("seedtape:default:rec:*")
    assert 2 * 86400 - 60 < client.ttl(name) <= 2 * 86400
    client.expire(name, 100)
    assert chat(b, seeded()).headers["x-seedtape-cache"] == "hit"
    assert client.ttl(name) > 2 * 86400 - 60, "read: the expiry starts again"


def test_verify_update_rerecords_through_the_store(team_proxy: Callable[..., RunningProxy], sim: Any) -> None:
    a = team_proxy()
    original = chat(a, seeded())
    # The verify run starts after the recording: an episode recorded during a run (by
    # any process) is never overwritten by that run, so a verifier started earlier
    # would append its answer instead (docs/design.md, "Episodes").
    b = team_proxy(update=True, mode="verify")
    sim.update_config({"seed_drift": 1.0})
    updated = chat(b, seeded())
    assert (updated.headers["x-seedtape-drift"], updated.headers["x-seedtape-cache"]) == ("content", "recorded")
    replay = team_proxy(mode="replay")
    served = chat(replay, seeded())
    assert served.headers["x-seedtape-cache"] == "hit" and text(served) == text(updated) != text(original)


def test_a_redis_acl_user_per_team_keeps_teams_out_of_each_others_keys(
    team_proxy: Callable[..., RunningProxy], redis_server: RedisServer, sim: Any
) -> None:
    """The README's ACL advice works: a user limited to ``~seedtape:team-a:*`` shares
    recordings in team-a, and in any other namespace it is refused -- counted and logged
    as store errors, never a failed request. A wrong password is an outage like any other."""
    redis_server.client().execute_command("ACL", "SETUSER", "team-a", "on", ">pw-team-a", "~seedtape:team-a:*", "+@all", "-@dangerous")
    url = f"redis://team-a:pw-team-a@127.0.0.1:{redis_server.port}/0"
    a1, a2 = team_proxy(store=url, namespace="team-a"), team_proxy(store=url, namespace="team-a")
    chat(a1, seeded())
    assert chat(a2, seeded()).headers["x-seedtape-cache"] == "hit" and sim.calls == 1
    assert chat(a1, UNSEEDED, **{"x-seedtape-session": "acl"}).headers["x-seedtape-episode"] == "1"
    intruder = team_proxy(store=url, namespace="team-b")
    answer = chat(intruder, seeded())
    assert answer.status_code == 200 and answer.headers["x-seedtape-cache"] == "recorded" and sim.calls == 3
    store = intruder.stats()["store"]
    assert store["errors"] >= 1 and "NoPermission" in store["last_error"] and store["writes"] == 0
    wrong = team_proxy(store=f"redis://team-a:wrong@127.0.0.1:{redis_server.port}/0", namespace="team-a")
    assert chat(wrong, seeded(7)).status_code == 200
    assert wrong.stats()["store"]["state"] == "degraded" and "password" in wrong.stats()["store"]["last_error"]
