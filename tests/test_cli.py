"""The command line as a user runs it: demo, ls, show, import-vcr, serve's refusals."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from seedtape.cli import main
from tests.commands.test_vcr_import import CORPUS


def test_demo_records_then_replays_offline(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["demo", "--keep", str(tmp_path / "kept")])
    assert result.exit_code == 0, result.output
    assert "11/11 replayed answers are identical" in result.output
    assert "With seed=42 they are identical." in result.output
    assert "Without a seed the two panda stories differ" in result.output
    files = list((tmp_path / "kept" / "demo").glob("*.json"))
    assert len(files) == 5
    panda = [json.loads(p.read_text()) for p in files]
    assert sorted(len(r["episodes"]) for r in panda) == [1, 1, 1, 2, 3]  # unseeded repeats are episodes


def test_import_vcr_then_ls_and_show(tmp_path: Path) -> None:
    runner = CliRunner()
    cassettes = tmp_path / "cassettes"
    imported = runner.invoke(main, ["import-vcr", str(CORPUS), "--cassettes", str(cassettes)])
    assert imported.exit_code == 0, imported.output
    assert "45 interaction(s): 45 imported" in imported.output and "0 skipped" in imported.output

    listing = runner.invoke(main, ["ls", "--cassettes", str(cassettes)])
    assert listing.exit_code == 0
    assert "39 recording(s) in 34 cassette(s)" in listing.output
    routes = {line.split()[3] for line in listing.output.splitlines()[1:-1] if len(line.split()) > 3}
    assert {"responses", "responses/{id}", "audio/transcriptions", "images/generations", "embeddings"} <= routes
    assert "The capital of France is **Paris**." in listing.output
    row = next(line for line in listing.output.splitlines() if "Southern Ocean." in line)
    assert row.split()[-3:] == ["100", "Southern", "Ocean."]  # the seed column shows seed 100

    limited = runner.invoke(main, ["ls", "--cassettes", str(cassettes), "--limit", "3"])
    assert "(36 not shown" in limited.output

    key = next(cassettes.glob("pydantic__pydantic-ai__test_azure_provider_call/*.json")).stem
    shown = runner.invoke(main, ["show", key[:8], "--cassettes", str(cassettes)])
    assert shown.exit_code == 0
    assert "deployment=gpt-4o" in shown.output and "api-version=2024-12-01-preview" in shown.output
    assert "episode 1  status 200" in shown.output

    missing = runner.invoke(main, ["show", "ffffffff", "--cassettes", str(cassettes)])
    assert missing.exit_code == 1 and "no recording" in missing.output


def test_import_vcr_bad_file_is_reported_and_exit_code_says_so(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("interactions: [ {", encoding="utf-8")
    result = CliRunner().invoke(main, ["import-vcr", str(bad), "--cassettes", str(tmp_path / "c")])
    assert result.exit_code == 1 and "bad.yaml" in result.output
