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
    assert "What is the capital of France?" in listing.output  # what was asked, not the answer
    row = next(line for line in listing.output.splitlines() if "Which ocean" in line)
    # api, deployment/model, route, seed, temperature, episodes, age, then the question
    cells = row.split()
    assert cells[2:7] == ["openai", "gpt-4o-mini", "chat/completions", "(stream)", "100"]
    assert cells[7:9] == ["1", "1"] and cells[9].endswith("d")  # temperature 1, one episode, recorded days ago
    azure_v1 = next(line for line in listing.output.splitlines() if "Say hello in one sentence." in line)
    assert azure_v1.split()[2:5] == ["azure-v1", "gpt-5.2-chat", "responses"]
    words = set(listing.output.split())
    assert {"responses", "responses/{id}", "audio/transcriptions", "images/generations", "embeddings"} <= words

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
