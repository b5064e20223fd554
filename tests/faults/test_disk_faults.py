"""Issue 13, item 6 (first part): a disk fault never throws away a paid answer.

When the cassette cannot be written (its folder is a file, a read-only folder, a
full disk), the client still gets the answer upstream gave, marked
``x-seedtape-cache: unsaved`` with no episode number; nothing claims ``recorded``;
the log names the file and the OS error. Before, the answer was replaced by a 500
``seedtape internal error: OSError`` naming no path.

The tests run as any user (root included: permission bits would not stop root), so
the faults are ones no user can write through: a cassette folder that is a regular
file (ENOTDIR), and a real ``seedtape serve`` whose file size limit (RLIMIT_FSIZE)
makes every write past 16 KiB fail with EFBIG, as a full disk fails with ENOSPC.
"""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import AZURE_KEY, RunningProxy
from tests.faults._helpers import PANDA, cassette_files, free_port

CHAT = "/openai/deployments/gpt-4/chat/completions?api-version=2024-02-01"
EMBEDDINGS = "/openai/deployments/emb/embeddings?api-version=2024-02-01"
AUTH = {"api-key": AZURE_KEY}
SEEDED = {"model": "gpt-4", "messages": PANDA, "seed": 42}


@pytest.fixture
def blocked(proxy_factory: Callable[..., RunningProxy], caplog: pytest.LogCaptureFixture) -> Iterator[tuple[RunningProxy, Path]]:
    """A proxy whose default cassette folder is a regular file: every write fails."""
    proxy = proxy_factory(mode="auto")
    folder = proxy.settings.cassettes_dir / "default"
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.write_text("not a folder\n")
    caplog.set_level(logging.ERROR, logger="seedtape")
    yield proxy, folder


def test_an_unwritable_cassette_still_answers_with_the_paid_answer_marked_unsaved(
    blocked: tuple[RunningProxy, Path], sim: Any, caplog: pytest.LogCaptureFixture
) -> None:
    proxy, folder = blocked
    response = httpx.post(proxy.url + CHAT, json=SEEDED, headers=AUTH)
    assert response.status_code == 200 and response.json()["choices"][0]["message"]["content"]
    assert response.headers["x-seedtape-cache"] == "unsaved"
    assert "x-seedtape-episode" not in response.headers
    assert sim.calls == 1
    [line] = [r.getMessage() for r in caplog.records if "could not save" in r.getMessage()]
    assert str(folder / response.headers["x-seedtape-key"][:16]) in line and "Not a directory" in line
    assert proxy.stats()["unsaved"] == 1 and proxy.stats()["recorded"] == 0
    assert folder.read_text() == "not a folder\n" and cassette_files(proxy.settings.cassettes_dir) == []


def test_an_unwritable_cassette_still_streams_the_whole_answer_and_never_claims_recorded(
    blocked: tuple[RunningProxy, Path], caplog: pytest.LogCaptureFixture
) -> None:
    proxy, folder = blocked
    with httpx.stream("POST", proxy.url + CHAT, json={**SEEDED, "stream": True}, headers=AUTH) as response:
        text = response.read().decode()
        assert response.headers["x-seedtape-cache"] == "unsaved"
    assert text.rstrip().endswith("data: [DONE]")
    assert ": seedtape: this stream was not saved" in text  # an SSE comment: parsers skip it
    assert any("could not save" in r.getMessage() and str(folder) in r.getMessage() for r in caplog.records)


def _serve_with_file_size_limit(tmp_path: Path, sim_url: str, limit: int) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    code = (
        f"import resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit})); "
        "from seedtape.cli import main; sys.argv = ['seedtape', *sys.argv[1:]]; main()"
    )
    args = ["serve", "--host", "127.0.0.1", "--port", str(port), "--upstream", sim_url]
    args += ["--cassettes", str(tmp_path / "cassettes"), "--cache-dir", str(tmp_path / "cache")]
    process = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(150):
        try:
            if httpx.get(url + "/_seedtape/health", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"seedtape serve did not start: {process.communicate()[0][-2000:]}")


@pytest.mark.slow
def test_a_full_disk_still_answers_and_the_log_names_the_file_and_the_os_error(tmp_path: Path, sim_url: str) -> None:
    process, url = _serve_with_file_size_limit(tmp_path, sim_url, 16 * 1024)
    try:
        small = httpx.post(url + CHAT, json=SEEDED, headers=AUTH, timeout=30)
        big_body = {"model": "text-embedding-3-small", "input": [f"red panda {i}" for i in range(200)]}
        big = httpx.post(url + EMBEDDINGS, json=big_body, headers=AUTH, timeout=30)
        stats = httpx.get(url + "/_seedtape/stats").json()
    finally:
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=20)[0]
    assert small.headers["x-seedtape-cache"] == "recorded", "what fits is recorded as usual"
    assert big.status_code == 200 and len(big.json()["data"]) == 200, "the paid answer reaches the client whole"
    assert big.headers["x-seedtape-cache"] == "unsaved" and "x-seedtape-episode" not in big.headers
    assert (stats["recorded"], stats["unsaved"]) == (1, 1)
    [line] = [line for line in output.splitlines() if "could not save" in line]
    assert "File too large" in line and str(tmp_path / "cassettes" / "default") in line, line
    files = sorted(p.name for p in (tmp_path / "cassettes" / "default").iterdir())
    assert files == [small.headers["x-seedtape-key"][:16] + ".json"], "no half-written file, no temporary file left"
    assert json.loads((tmp_path / "cassettes" / "default" / files[0]).read_text())["episodes"]
