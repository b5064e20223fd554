"""The cassette file: names that stay inside the folder, atomic and reviewable files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from seedtape.cassette import CassetteError, InvalidCassetteName, Recording, read_recording, validate_name, write_recording


@pytest.mark.parametrize("name", ["default", "tests/test_chat", "test_x[param-1]", "a.b-c_d"])
def test_plain_names_are_accepted(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize("name", ["", "..", "../x", "a/../../b", "/etc", "a//b", "a\x00b", "a\\b", "x" * 300, "a/./b", "sp ace"])
def test_names_that_leave_the_folder_are_refused(name: str) -> None:
    with pytest.raises(InvalidCassetteName):
        validate_name(name)


def test_file_is_sorted_indented_with_trailing_newline(tmp_path: Path) -> None:
    recording = Recording(
        key="ab" * 32, request={"api": "openai", "body": {"z": 1, "a": "panda 🐼"}}, episodes=[{"status": 200, "body": {}}]
    )
    path = tmp_path / "c" / "x.json"
    write_recording(path, recording)
    text = path.read_text(encoding="utf-8")
    assert text.endswith("}\n") and "🐼" in text and '\n  "episodes"' in text
    assert list(json.loads(text)) == sorted(json.loads(text))
    assert read_recording(path).request == recording.request
    assert [p.name for p in path.parent.iterdir()] == ["x.json"]  # no temp file left


def test_set_episode_rewrites_instead_of_growing() -> None:
    recording = Recording(key="k", request={})
    assert recording.set_episode(1, {"status": 200, "n": 1}) == 1
    assert recording.set_episode(2, {"status": 200, "n": 2}) == 2
    assert recording.set_episode(1, {"status": 200, "n": 3}) == 1
    assert [e["n"] for e in recording.episodes] == [3, 2]


def test_broken_file_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"format": "seedtape/1", "key": ', encoding="utf-8")
    with pytest.raises(CassetteError, match=r"broken\.json.*broken JSON"):
        read_recording(path)


def test_failed_write_leaves_old_file_and_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "k.json"
    write_recording(path, Recording(key="k", request={}, episodes=[{"status": 200}]))
    before = path.read_bytes()

    def boom(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        write_recording(path, Recording(key="k", request={}, episodes=[]))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["k.json"]
