"""Issue 13, item 6 (command line): every error is one clear line, never a traceback,
and a cassette name is checked the same way on the command line and in the header.

The commands run as a user runs them (a real ``seedtape`` process): ``show '*'``,
``show /etc/passwd`` and ``ls --cassette ../..`` printed Python tracebacks, and
``--cassette $'x\\n'`` made a folder with a newline in its name.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from seedtape.serving import serve_in_thread
from tests.conftest import AZURE_KEY
from tests.faults._helpers import PANDA, TRACEBACK_MARKERS

pytestmark = pytest.mark.slow  # each runs the command line in a subprocess

BAD_NAMES = ["../..", "x\n", "a/../b", "/abs", "a\\b", "a\x00b", "x" * 201, "a b", ".seedtape-locks", "a//b", "\u00e9t\u00e9"]


def seedtape(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "seedtape.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=60, env=_env())


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("SEEDTAPE_", "AZURE_OPENAI", "OPENAI_"))}


def assert_one_clear_line(result: subprocess.CompletedProcess[str], *says: str) -> None:
    output = (result.stdout + result.stderr).strip()
    assert result.returncode != 0, output
    assert not any(marker in output for marker in TRACEBACK_MARKERS), output
    assert len(output.splitlines()) == 1, output
    for words in says:
        assert words in output, output


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "cassettes" / "default").mkdir(parents=True)
    (tmp_path / "cassettes" / "default" / "0123456789abcdef.json").write_text("{broken\n")
    (tmp_path / "a-folder").mkdir()
    (tmp_path / "report.json").write_text('{"format": "something-else"}')
    return tmp_path


CASES = {
    "show-star": (["show", "*"], "not a key"),
    "show-path": (["show", "/etc/passwd"], "not a key"),
    "show-dotdot": (["show", "../../x"], "not a key"),
    "ls-dotdot": (["ls", "--cassette", "../.."], "invalid cassette name"),
    "ls-newline": (["ls", "--cassette", "x\n"], "invalid cassette name"),
    "serve-newline": (["serve", "--cassette", "x\n", "--upstream", "sim"], "invalid cassette name"),
    "serve-keep-length": (["serve", "--keep-header", "content-length", "--upstream", "sim"], "--keep-header"),
    "serve-bad-limit": (["serve", "--max-response", "0", "--upstream", "sim"], "--max-response"),
    "import-bad-cassette": (["import-vcr", "a-folder", "--cassette", "../x"], "invalid cassette name"),
    "report-folder": (["report", "--log", "a-folder"], "a-folder"),
    "prune-folder": (["prune", "--unused", "--report", "a-folder"], "a-folder"),
    "prune-not-a-report": (["prune", "--unused", "--report", "report.json"], "report"),
    "unknown-command": (["nope"], "No such command"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_command_line_error_is_one_clear_line(case: str, project: Path) -> None:
    args, says = CASES[case]
    assert_one_clear_line(seedtape(*args, cwd=project), "Error", says)
    assert not [p for p in project.rglob("*") if "\n" in p.name], "no file or folder with a newline in its name"


def test_show_of_a_broken_file_says_so_in_a_line(project: Path) -> None:
    result = seedtape("show", "0123456789abcdef", cwd=project)
    assert not any(marker in result.stdout + result.stderr for marker in TRACEBACK_MARKERS)
    assert "broken JSON" in result.stdout


@pytest.mark.parametrize("name", BAD_NAMES, ids=lambda n: repr(n)[:20])
def test_a_cassette_name_is_refused_alike_on_the_command_line_and_in_the_header(name: str, tmp_path: Path) -> None:
    from seedtape.app import create_app
    from seedtape.config import Settings

    if "\x00" not in name:  # a NUL cannot travel in an argv
        assert_one_clear_line(seedtape("ls", "--cassette", name, cwd=tmp_path), "invalid cassette name")
    with pytest.raises(ValueError, match="invalid cassette name"):
        Settings(cassette=name)
    app = create_app(Settings(upstream="http://127.0.0.1:9", cassettes_dir=tmp_path / "c", cache_dir=tmp_path / "k"))
    with serve_in_thread(app) as url:
        if any(ord(c) < 32 or ord(c) > 126 for c in name):
            return  # a header cannot carry it at all: httpx refuses to send it
        response = httpx.post(
            url + "/v1/chat/completions",
            json={"model": "gpt-4", "seed": 1, "messages": PANDA},
            headers={"authorization": f"Bearer {AZURE_KEY}", "x-seedtape-cassette": name},
        )
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_cassette"
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").iterdir())
