"""When recordings reach the disk: --fsync background (default) and --fsync always.

A power cut cannot be staged in a test, so these watch the calls that make data
durable (``os.fsync``, ``os.sync``: the operating system's, not seedtape's) and check
what a user relies on: the file is whole and readable the moment the answer says
``recorded``, and it is synced before the answer (always) or soon after it and at the
latest at shutdown (background).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from client_shim import azure_client
from seedtape.cassette import Recording
from seedtape.config import Settings
from seedtape.durability import SYNC_ALL_FROM, BackgroundSync
from seedtape.store import CassetteStore
from tests.conftest import AZURE_KEY, RunningProxy

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="names synced descriptors through /proc")


class SyncWatch:
    """Every fsync (by the path it synced) and every sync(), with the time it ended."""

    def __init__(self) -> None:
        self.fsynced: list[tuple[str, float]] = []
        self.syncs: list[float] = []
        self._lock = threading.Lock()

    def paths(self) -> list[str]:
        with self._lock:
            return [p for p, _ in self.fsynced]

    def synced_at(self, path: Path) -> float | None:
        """When ``path`` was last made durable: its own fsync, or a sync() of everything."""
        with self._lock:
            times = [t for p, t in self.fsynced if p == str(path)] + list(self.syncs)
        return max(times) if times else None


@pytest.fixture
def watch(monkeypatch: pytest.MonkeyPatch) -> Iterator[SyncWatch]:
    seen = SyncWatch()
    real_fsync, real_sync = os.fsync, os.sync

    def fsync(fd: int) -> None:
        path = os.readlink(f"/proc/self/fd/{fd}")
        real_fsync(fd)
        with seen._lock:
            seen.fsynced.append((path, time.monotonic()))

    def sync() -> None:
        real_sync()
        with seen._lock:
            seen.syncs.append(time.monotonic())

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "sync", sync)
    yield seen


def _files(folder: Path, n: int) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"{i}.json"
        path.write_text("{}\n")
        paths.append(str(path))
    return paths


def test_a_few_files_are_fsynced_each_and_their_folder_once(tmp_path: Path, watch: SyncWatch) -> None:
    sync = BackgroundSync()
    paths = _files(tmp_path / "c", SYNC_ALL_FROM - 1)
    for path in paths:
        sync.submit(path)
    assert sync.flush(timeout=30)
    assert sync.pending == 0
    assert sorted(watch.paths()) == sorted([*paths, str(tmp_path / "c")])
    assert watch.syncs == []
    sync.close()


def test_a_burst_is_synced_with_one_sync_not_one_commit_per_file(tmp_path: Path, watch: SyncWatch) -> None:
    sync = BackgroundSync(gather_seconds=5.0)  # everything below lands in one batch
    for path in _files(tmp_path / "c", 3 * SYNC_ALL_FROM):
        sync.submit(path)
    assert sync.flush(timeout=30)  # a flush does not wait out the gathering window
    assert len(watch.syncs) == 1 and watch.paths() == []
    sync.close()


def test_close_syncs_what_is_pending_and_a_late_submit_is_synced_at_once(tmp_path: Path, watch: SyncWatch) -> None:
    sync = BackgroundSync(gather_seconds=5.0)
    first, late = _files(tmp_path / "c", 2)
    sync.submit(first)
    sync.close()
    assert sync.pending == 0 and first in watch.paths()
    sync.submit(late)  # a save racing shutdown
    assert late in watch.paths()


def test_a_file_gone_before_its_sync_is_skipped_and_the_rest_are_synced(tmp_path: Path, watch: SyncWatch) -> None:
    sync = BackgroundSync(gather_seconds=5.0)
    gone, kept = _files(tmp_path / "c", 2)
    sync.submit(gone)
    sync.submit(kept)
    os.unlink(gone)
    assert sync.flush(timeout=30)
    assert kept in watch.paths() and gone not in watch.paths()
    sync.close()


def _save(store: CassetteStore, n: int) -> Path:
    key = f"{n:02x}" * 32
    store.save_episode("c", key, {"api": "openai", "body": {"n": n}}, 1, {"status": 200, "body": {"answer": n}})
    return store.path_for("c", key)


def test_store_background_policy_writes_a_whole_file_at_once_and_syncs_it_after(tmp_path: Path, watch: SyncWatch) -> None:
    store = CassetteStore(tmp_path, None, fsync="background")
    assert not store.fsyncs_on_save
    path = _save(store, 1)
    # Readable, whole, before anything was synced.
    assert json.loads(path.read_text())["episodes"][0]["body"] == {"answer": 1}
    assert store.background_sync is not None and store.background_sync.pending == 1
    store.close()  # shutdown waits for the sync
    assert watch.synced_at(path) is not None and store.background_sync.pending == 0


def test_store_always_policy_syncs_file_and_folder_before_save_returns(tmp_path: Path, watch: SyncWatch) -> None:
    store = CassetteStore(tmp_path, None, fsync="always")
    assert store.fsyncs_on_save and store.background_sync is None
    path = _save(store, 2)
    synced = watch.paths()
    # The data is synced under its temp name (before the rename), then the folder.
    assert synced[-1] == str(path.parent) and len(synced) == 2 and synced[0].endswith(".json.part")
    store.close()


def test_unknown_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="fsync"):
        Settings(fsync="sometimes")
    with pytest.raises(ValueError, match="fsync"):
        CassetteStore(Path("."), None, fsync="sometimes")


def _record(proxy: RunningProxy, seed: int) -> tuple[Path, float]:
    client = azure_client(proxy.url, api_key=AZURE_KEY, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4", messages=[{"role": "user", "content": "a red panda story"}], seed=seed
    )
    answered = time.monotonic()
    assert raw.headers["x-seedtape-cache"] == "recorded"
    path = proxy.settings.cassettes_dir / proxy.settings.cassette / (raw.headers["x-seedtape-key"][:16] + ".json")
    # Whatever the policy: the moment the client has its answer, the file is whole.
    recorded = json.loads(path.read_text())
    assert recorded["episodes"][0]["body"]["choices"][0]["message"]["content"] == raw.parse().choices[0].message.content
    return path, answered


def test_proxy_with_fsync_always_answers_only_after_the_recording_is_synced(
    proxy_factory: Callable[..., RunningProxy], watch: SyncWatch
) -> None:
    proxy = proxy_factory(mode="record", fsync="always")
    path, answered = _record(proxy, seed=1)
    synced = [t for p, t in watch.fsynced if p == str(path.parent)]
    assert synced and min(synced) <= answered


def test_proxy_default_syncs_the_recording_soon_after_answering(proxy_factory: Callable[..., RunningProxy], watch: SyncWatch) -> None:
    proxy = proxy_factory(mode="record")
    assert proxy.settings.fsync == "background"
    path, answered = _record(proxy, seed=2)
    sync = proxy.engine.store.background_sync
    assert sync is not None and sync.flush(timeout=30)
    synced_at = watch.synced_at(path)
    assert synced_at is not None and synced_at >= answered - 0.001  # after the answer, not before it
    assert httpx.get(proxy.url + "/_seedtape/health").status_code == 200


def test_values_survive_the_writer_whatever_orjson_refuses(tmp_path: Path) -> None:
    """Cassette text comes from orjson; what it cannot write goes to the standard library."""
    store = CassetteStore(tmp_path, None)
    key = "ab" * 32
    episode: dict[str, Any] = {"status": 200, "body": {"big": 2**70, "small": 1e-05, "text": "panda 🐼"}}
    store.save_episode("c", key, {"body": {}}, 1, episode)
    text = store.path_for("c", key).read_text(encoding="utf-8")
    assert json.loads(text)["episodes"][0]["body"] == episode["body"]
    assert "🐼" in text and text.endswith("}\n")
    assert Recording.from_json(json.loads(text)).episodes == [episode]


def test_a_failing_sync_is_logged_and_never_leaves_flush_waiting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken_sync() -> None:
        raise OSError("I/O error")

    monkeypatch.setattr(os, "sync", broken_sync)
    sync = BackgroundSync(gather_seconds=5.0)
    paths = _files(tmp_path / "c", SYNC_ALL_FROM)
    for path in paths:
        sync.submit(path)
    assert sync.flush(timeout=30)
    assert f"background fsync of {SYNC_ALL_FROM} recordings failed" in caplog.text
    sync.submit(paths[0])  # the thread is still there for the next batch
    assert sync.flush(timeout=30) and sync.pending == 0
    sync.close()
