"""seedtape.commands.prune: finding unused recordings and removing exactly what a report lists (issue 5, item 5)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from seedtape.cassette import Recording, file_name, write_recording
from seedtape.cli import main as seedtape_cli
from seedtape.commands.prune import find_unused, prune_unused, read_report, write_report


def key(n: int) -> str:
    return f"{n:016x}".ljust(64, "a")


def record(root: Path, cassette: str, n: int) -> Path:
    path = root / cassette / file_name(key(n))
    recording = Recording(
        key=key(n),
        request={"api": "openai", "route": "chat/completions", "body": {"model": f"m{n}"}},
        episodes=[{"status": 200, "body": {"n": n}}],
    )
    write_recording(path, recording)
    return path


@pytest.fixture
def cassettes(tmp_path: Path) -> Path:
    root = tmp_path / "cassettes"
    record(root, "mod/test_a", 1)
    record(root, "mod/test_a", 2)
    record(root, "mod/test_b", 3)
    record(root, "shared", 4)
    (root / "mod" / "test_b" / "broken.json").write_text("{not json")
    return root


def test_find_unused_lists_what_is_not_used_and_never_a_broken_file(cassettes: Path) -> None:
    unused = find_unused(cassettes, {("mod/test_a", key(1)), ("shared", key(4))})
    assert [(u.cassette, u.key, u.model) for u in unused] == [("mod/test_a", key(2), "m2"), ("mod/test_b", key(3), "m3")]
    assert [u.file for u in find_unused(cassettes, set(), ["shared"])] == [f"shared/{file_name(key(4))}"]


def test_prune_with_a_used_set_and_dry_run(cassettes: Path) -> None:
    used = {("mod/test_a", key(1)), ("mod/test_a", key(2)), ("shared", key(4))}
    dry = prune_unused(cassettes, used, dry_run=True)
    assert [p.name for p in dry.removed] == [file_name(key(3))] and (cassettes / "mod/test_b" / file_name(key(3))).exists()
    done = prune_unused(cassettes, used)
    assert [p.name for p in done.removed] == [file_name(key(3))]
    assert not (cassettes / "mod/test_b" / file_name(key(3))).exists()
    assert (cassettes / "mod/test_b" / "broken.json").exists()  # broken is not unused: left for `seedtape ls` to show


def test_prune_from_a_report_removes_only_listed_files_still_holding_their_key(cassettes: Path, tmp_path: Path) -> None:
    report = tmp_path / "unused.json"
    write_report(report, cassettes, find_unused(cassettes, {("mod/test_b", key(3))}))
    assert read_report(report)["cassettes_dir"] == str(cassettes.resolve())
    # Since the report: one listed file was deleted by hand, another now holds another key.
    (cassettes / "mod/test_a" / file_name(key(1))).unlink()
    clash = cassettes / "shared" / file_name(key(4))
    data = json.loads(clash.read_text())
    clash.write_text(json.dumps({**data, "key": key(4)[:16] + "f" * 48}))
    result = prune_unused(cassettes, report)
    assert [p.name for p in result.removed] == [file_name(key(2))]
    assert result.missing == [f"mod/test_a/{file_name(key(1))}"]
    assert result.changed == [f"shared/{file_name(key(4))}"]
    assert not (cassettes / "mod/test_a").exists()  # emptied folders go with their last file
    assert (cassettes / "mod/test_b").exists() and clash.exists()


def test_prune_command(cassettes: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    missing = runner.invoke(seedtape_cli, ["prune", "--unused"])
    assert missing.exit_code != 0 and "run pytest with --seedtape-report-unused first" in missing.output
    assert "say what to prune" in runner.invoke(seedtape_cli, ["prune"]).output

    write_report(tmp_path / ".seedtape-cache" / "unused.json", cassettes, find_unused(cassettes, {("mod/test_a", key(1))}, ["mod/test_a"]))
    dry = runner.invoke(seedtape_cli, ["prune", "--unused", "--dry-run"])
    assert dry.exit_code == 0 and "would remove 1 unused recording(s)" in dry.output
    done = runner.invoke(seedtape_cli, ["prune", "--unused"])
    assert done.exit_code == 0 and "removed 1 unused recording(s)" in done.output
    assert not (cassettes / "mod/test_a" / file_name(key(2))).exists()
    (tmp_path / "bad.json").write_text("[]")
    bad = runner.invoke(seedtape_cli, ["prune", "--unused", "--report", "bad.json"])
    assert bad.exit_code != 0 and "not a seedtape-unused/1 report" in bad.output
