"""The store's index tiers: small files straight from the folder, big ones via diskcache,
every tier validated against the file's size and mtime."""

from __future__ import annotations

import os
from pathlib import Path

from seedtape.cassette import Recording, write_recording
from seedtape.store import DISK_TIER_MIN_BYTES, CassetteStore

KEY = "ab" * 32


def _recording(content: str, key: str = KEY) -> Recording:
    episode = {
        "status": 200,
        "headers": {"content-type": "application/json"},
        "body": {"object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]},
    }
    return Recording(
        key=key, request={"api": "openai", "route": "chat/completions", "deployment": "", "api_version": "", "body": {}}, episodes=[episode]
    )


def _write(store: CassetteStore, content: str, key: str = KEY) -> Path:
    path = store.path_for("c", key)
    write_recording(path, _recording(content, key))
    return path


def _bump_mtime(path: Path) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_small_recordings_skip_the_disk_tier_and_see_edits(tmp_path: Path) -> None:
    store = CassetteStore(tmp_path / "cassettes", tmp_path / "cache")
    path = _write(store, "first")
    assert b'"content":"first"' in store.load("c", KEY).episodes[0].body
    assert len(store._disk) == 0  # a 1 KB file is cheaper to read than to index
    _write(store, "second")
    _bump_mtime(path)
    assert b'"second"' in store.load("c", KEY).episodes[0].body
    store.close()


def test_big_recordings_are_indexed_on_disk_and_validated(tmp_path: Path) -> None:
    big = "word " * (DISK_TIER_MIN_BYTES // 4)
    store = CassetteStore(tmp_path / "cassettes", tmp_path / "cache")
    path = _write(store, big)
    assert store.load("c", KEY) is not None
    assert len(store._disk) == 1
    store.close()

    again = CassetteStore(tmp_path / "cassettes", tmp_path / "cache")  # a restart, or another worker
    assert again._disk_get(str(path), (path.stat().st_size, path.stat().st_mtime_ns)) is not None
    _write(again, big.upper())
    _bump_mtime(path)
    assert b"WORD" in again.load("c", KEY).episodes[0].body  # the stale disk entry is not served
    again.close()


def test_missing_cassette_or_key_is_none(tmp_path: Path) -> None:
    store = CassetteStore(tmp_path / "cassettes", None)
    assert store.load("nope", KEY) is None
    _write(store, "x")
    assert store.load("c", "cd" * 32) is None
    # a key sharing the first 16 hex digits is never served the other's recording
    assert store.load("c", KEY[:16] + "0" * 48) is None


def test_recordings_limit_reads_only_what_it_yields(tmp_path: Path) -> None:
    store = CassetteStore(tmp_path / "cassettes", None)
    keys = [f"{i:02x}" * 32 for i in range(30)]
    for key in keys:
        _write(store, "x", key)
    assert store.count("c") == 30
    assert [r.key for _, r in store.recordings("c", limit=5)] == sorted(keys)[:5]
    assert len(list(store.recordings("c", ordered=False, limit=7))) == 7
    assert store.cassettes() == ["c"]


def test_ls_summarises_big_cassettes(tmp_path: Path, monkeypatch) -> None:
    import io

    from rich.console import Console

    from seedtape.commands import listing

    store = CassetteStore(tmp_path / "cassettes", None)
    for i in range(12):
        path = store.path_for("big" if i < 10 else "small", f"{i:02x}" * 32)
        write_recording(path, _recording(f"answer {i}", f"{i:02x}" * 32))
    (tmp_path / "cassettes" / "big" / ("ff" * 8 + ".json")).write_text("{broken")
    monkeypatch.setattr(listing, "FULL_SCAN_MAX", 5)
    out = io.StringIO()
    listing.print_listing(tmp_path / "cassettes", None, 3, Console(file=out, width=160))
    text = out.getvalue()
    assert "13 recording(s) in 2 cassette(s) (10 not shown" in text
    assert "big" in text and " 11" in text  # counts per cassette, from the folder listing
    assert sum(f"{i:02x}" * 8 in text for i in range(12)) == 3  # only the rows shown were read
    assert "broken" not in text  # the broken file was counted, not read
