"""``seedtape sync pull|push`` and ``seedtape report --store``, through the CLI."""

from __future__ import annotations

import fcntl
import json
import os
import threading
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from seedtape.cassette import read_recording
from seedtape.cli import main
from seedtape.coordination.filelocks import LOCKS_FOLDER, lock_name, release_file_lock
from tests.conftest import RunningProxy
from tests.faults._helpers import cassette_files, closed_port_url
from tests.teams._redis import RedisServer
from tests.teams.test_shared_store import UNSEEDED, chat, seeded


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), env={"SEEDTAPE_STORE": None, "SEEDTAPE_STORE_PASSWORD": None})


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in cassette_files(root)}


def test_pull_then_push_round_trip_is_byte_identical(
    team_proxy: Callable[..., RunningProxy], redis_server: RedisServer, tmp_path: Path
) -> None:
    a, b = team_proxy(), team_proxy()
    for i in range(3):
        chat(a, seeded(i))
    chat(b, seeded(9), **{"x-seedtape-cassette": "other/nested"})
    for proxy in (a, b, a):  # one key with three episodes, recorded by two proxies
        chat(proxy, UNSEEDED, **{"x-seedtape-session": "s"})
    url = redis_server.url

    first = cli("sync", "pull", "--store", url, "--cassettes", str(tmp_path / "p1"))
    assert first.exit_code == 0, first.output
    assert "5 new file(s), 0 updated, 0 unchanged" in first.output
    pulled = files(tmp_path / "p1")
    # The files are the very bytes the proxies wrote (the last writer of the shared key).
    assert {k: v for k, v in pulled.items() if k.startswith("default/")} == {
        f"default/{k}": v for k, v in files(a.settings.cassettes_dir / "default").items()
    }
    assert {k: v for k, v in pulled.items() if k.startswith("other/")} == {
        f"other/nested/{k}": v for k, v in files(b.settings.cassettes_dir / "other" / "nested").items()
    }
    [shared] = [read_recording(tmp_path / "p1" / k) for k, v in pulled.items() if b'"temperature": 0.9' in v]
    assert len(shared.episodes) == 3

    pushed = cli("sync", "push", "--store", url, "--namespace", "copy", "--cassettes", str(tmp_path / "p1"))
    assert pushed.exit_code == 0 and "5 new, 0 updated, 0 merged with episodes only the store had, 0 unchanged" in pushed.output
    second = cli("sync", "pull", "--store", url, "--namespace", "copy", "--cassettes", str(tmp_path / "p2"))
    assert second.exit_code == 0 and "5 new file(s)" in second.output
    assert files(tmp_path / "p2") == pulled, "pull -> push -> pull: byte-identical"

    # Idempotent both ways.
    assert (
        "0 new, 0 updated, 0 merged with episodes only the store had, 5 unchanged"
        in cli("sync", "push", "--store", url, "--cassettes", str(tmp_path / "p1")).output
    )
    assert "0 new file(s), 0 updated, 5 unchanged" in cli("sync", "pull", "--store", url, "--cassettes", str(tmp_path / "p1")).output
    assert files(tmp_path / "p1") == pulled


def test_push_publishes_a_repositorys_cassettes_to_an_empty_proxy(
    proxy_factory: Callable[..., RunningProxy], team_proxy: Callable[..., RunningProxy], redis_server: RedisServer, sim: Any
) -> None:
    repo = proxy_factory(cassettes_dir=Path(str(redis_server.folder) + "-repo"))  # no store: a plain local recording run
    chat(repo, seeded(1))
    chat(repo, seeded(2))
    assert sim.calls == 2
    result = cli("sync", "push", "--store", redis_server.url, "--cassettes", str(repo.settings.cassettes_dir), "--cassette", "default")
    assert result.exit_code == 0 and "2 new" in result.output
    empty = team_proxy(mode="replay", upstream=closed_port_url())
    assert [chat(empty, seeded(i)).headers["x-seedtape-cache"] for i in (1, 2)] == ["hit", "hit"]


def test_pull_and_push_merge_episodes_local_first(
    team_proxy: Callable[..., RunningProxy], redis_server: RedisServer, tmp_path: Path
) -> None:
    a = team_proxy()
    for _ in range(3):
        chat(a, UNSEEDED, **{"x-seedtape-session": "three"})
    [path] = cassette_files(a.settings.cassettes_dir)
    # A repository holding an older file with one (different) episode of the same key.
    local = read_recording(path)
    local.episodes = [{**local.episodes[0], "latency_ms": 1}]
    repo = tmp_path / "repo" / "default"
    repo.mkdir(parents=True)
    (repo / path.name).write_text(local.dumps())

    pulled = cli("sync", "pull", "--store", redis_server.url, "--cassettes", str(tmp_path / "repo"))
    assert "0 new file(s), 1 updated" in pulled.output
    merged = read_recording(repo / path.name)
    assert len(merged.episodes) == 3 and merged.episodes[0]["latency_ms"] == 1, "local episode kept, two added"

    # The store lacks nothing now; a file with fewer episodes pushed keeps the store's extras.
    (repo / path.name).write_text(local.dumps())
    pushed = cli("sync", "push", "--store", redis_server.url, "--cassettes", str(tmp_path / "repo"))
    assert "1 merged with episodes only the store had" in pushed.output
    [name] = redis_server.client().keys("seedtape:default:rec:*")
    stored = json.loads(zlib.decompress(redis_server.client().get(name)))
    assert len(stored["episodes"]) == 3 and stored["episodes"][0]["latency_ms"] == 1


def test_pull_never_writes_outside_the_cassette_folder(redis_server: RedisServer, tmp_path: Path) -> None:
    client = redis_server.client()
    text = json.dumps({"format": "seedtape/1", "key": "0123456789abcdef" + "0" * 48, "request": {}, "episodes": []})
    for cassette in ("../escape", "/etc", "a/../../b", "ok"):
        client.set(f"seedtape:default:rec:{cassette}/0123456789abcdef.json", zlib.compress(text.encode()))
    client.set("seedtape:default:rec:ok/fedcba9876543210.json", zlib.compress(text.encode()))  # name and key disagree
    client.set("seedtape:default:rec:ok/not-a-recording.txt", b"x")
    result = cli("sync", "pull", "--store", redis_server.url, "--cassettes", str(tmp_path / "inside"))
    assert result.exit_code == 1 and "1 new file(s)" in result.output and "5 skipped" in result.output
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file() and p.parent != redis_server.folder)
    assert written == ["inside/ok/0123456789abcdef.json"]


def test_sync_says_clearly_when_the_store_is_unreachable_and_never_prints_its_password(tmp_path: Path) -> None:
    url = f"redis://teamuser:hunter2-secret-pw@{closed_port_url().removeprefix('http://')}/0"
    result = cli("sync", "pull", "--store", url, "--cassettes", str(tmp_path), "--store-timeout", "0.5")
    assert result.exit_code == 1
    assert "pull stopped: the shared store redis://teamuser:***@127.0.0.1:" in result.output
    assert "hunter2" not in result.output
    bad = cli("sync", "push", "--store", "http://nope", "--cassettes", str(tmp_path))
    assert bad.exit_code == 2 and "expected redis://" in bad.output


def test_report_renders_the_teams_drift_log(team_proxy: Callable[..., RunningProxy], redis_server: RedisServer, sim: Any) -> None:
    a, b = team_proxy(), team_proxy()
    chat(a, seeded(1))
    sim.update_config({"seed_drift": 1.0})  # every seeded answer now differs
    assert chat(a, seeded(1), **{"x-seedtape-mode": "verify"}).headers["x-seedtape-drift"] == "content"
    assert chat(b, seeded(1), **{"x-seedtape-mode": "verify"}).headers["x-seedtape-drift"] == "content"
    assert chat(b, seeded(5), **{"x-seedtape-mode": "verify"}).headers["x-seedtape-drift"] == "unrecorded"
    result = cli("report", "--store", redis_server.url, "--format", "json", "--fail-on", "content")
    assert result.exit_code == 1, result.output  # --fail-on content matched
    report = json.loads(result.output)
    summary = report["summary"]
    assert (summary["total"], summary["drifted"], summary["unrecorded"]) == (3, 2, 1), summary  # unrecorded is not drift
    assert redis_server.client().xlen("seedtape:default:drift") == 3


def test_pull_waits_for_the_key_lock_a_proxy_on_the_folder_holds(
    team_proxy: Callable[..., RunningProxy], redis_server: RedisServer, tmp_path: Path
) -> None:
    """A proxy writing a cassette file holds its key's write lock; pull merges into the
    same file only once it is let go, so neither overwrites the other's episodes."""
    a = team_proxy()
    key = chat(a, seeded(1)).headers["x-seedtape-key"]
    folder = tmp_path / "pulled"
    lock = folder / LOCKS_FOLDER / lock_name("default", "write:" + key)
    lock.parent.mkdir(parents=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    outcome: list[Result] = []
    puller = threading.Thread(target=lambda: outcome.append(cli("sync", "pull", "--store", redis_server.url, "--cassettes", str(folder))))
    try:
        puller.start()
        puller.join(timeout=1.0)
        assert puller.is_alive() and not cassette_files(folder), "pull waits while the lock is held"
    finally:
        release_file_lock(fd, lock)
    puller.join(timeout=30)
    [result] = outcome
    assert result.exit_code == 0 and "1 new file(s)" in result.output, result.output
    assert [p.name[:16] for p in cassette_files(folder)] == [key[:16]]
