"""No secret on disk: record through every route and every mode with distinctive fake
credentials (and a proxy token), then scan every byte the proxy and the CLI wrote --
cassettes, the cache directory (SQLite index, coordination database, drift log),
the server's own debug log, and every report format -- for them. Zero hits.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest
from click.testing import CliRunner

from seedtape.cli import main
from tests.conftest import AZURE_KEY, OPENAI_KEY
from tests.faults._helpers import PANDA, cassette_files, scan_bytes, serving

TOKEN = "seedtape-scan-token-SECRET-5c1d0e2f7a9b"
V1_KEY = "azv1key-SECRET-00112233445566778899aabbccdd"
SECRETS = (AZURE_KEY, OPENAI_KEY, V1_KEY, TOKEN)
MODES = ("record", "auto", "replay", "verify", "passthrough")


def clients(url: str, mode: str) -> dict[str, openai.OpenAI]:
    """One client per recorded API shape, each with its own credential."""
    headers = {"x-seedtape-token": TOKEN, "x-seedtape-mode": mode}
    return {
        "azure": openai.AzureOpenAI(
            azure_endpoint=url, api_key=AZURE_KEY, api_version="2024-02-01", default_headers=headers, max_retries=0
        ),
        "azure-v1": openai.OpenAI(base_url=url + "/openai/v1", api_key=V1_KEY, default_headers=headers, max_retries=0),
        "openai": openai.OpenAI(base_url=url + "/v1", api_key=OPENAI_KEY, default_headers=headers, max_retries=0),
    }


def every_route(client: openai.OpenAI) -> list[Callable[[], Any]]:
    return [
        lambda: client.chat.completions.create(model="gpt-4", messages=PANDA, seed=42),
        lambda: list(client.chat.completions.create(model="gpt-4", messages=PANDA, seed=42, stream=True)),
        lambda: client.chat.completions.create(model="gpt-4", messages=PANDA, temperature=0.9),  # unseeded: episodes
        lambda: client.embeddings.create(model="text-embedding-3-small", input="red panda"),
        lambda: client.completions.create(model="davinci", prompt="Once upon a time", seed=5, max_tokens=20),
    ]


@pytest.mark.slow
def test_every_route_and_mode_writes_no_credential_anywhere(tmp_path: Path, sim: Any, sim_url: str) -> None:
    cassettes, cache, logs, reports = (tmp_path / d for d in ("cassettes", "cache", "logs", "reports"))
    args = [
        "--upstream",
        sim_url,
        "--cassettes",
        str(cassettes),
        "--cache-dir",
        str(cache),
        "--auth-token",
        TOKEN,
        "--partition-by-credential",
        "--record-errors",
        "--log-level",
        "debug",
        "--access-log",
        "--workers",
        "2",
    ]
    calls = 0
    with serving(args, tmp_path, logs / "serve.log", headers={"x-seedtape-token": TOKEN}) as server:
        for mode in MODES:
            for client in clients(server.url, mode).values():
                for call in every_route(client):
                    call()
                    calls += 1
                if mode != "replay":
                    assert client.models.list().data  # an untouched route, forwarded with the credential
            sim.rotate_fingerprint()  # so verify has drift to log and report
        sim.inject({"status": 429, "retry_after": 1})  # an error answer, recorded (--record-errors)
        with pytest.raises(openai.RateLimitError):
            clients(server.url, "record")["openai"].chat.completions.create(model="gpt-4", messages=PANDA, seed=99)
        with pytest.raises(openai.AuthenticationError):  # a wrong proxy token, logged as a 401
            openai.OpenAI(
                base_url=server.url + "/v1", api_key=OPENAI_KEY, max_retries=0, default_headers={"x-seedtape-token": TOKEN[::-1]}
            ).models.list()
    assert calls == len(MODES) * 3 * 5
    assert len(cassette_files(cassettes)) >= 15

    runner = CliRunner()
    reports.mkdir()
    for fmt in ("table", "json", "junit", "html"):
        result = runner.invoke(main, ["report", "--cache-dir", str(cache), "--format", fmt, "-o", str(reports / f"drift.{fmt}")])
        assert result.exit_code == 0, result.output
    listing = runner.invoke(main, ["ls", "--cassettes", str(cassettes)])
    (reports / "ls.txt").write_text(listing.output)
    for path in cassette_files(cassettes)[:5]:
        shown = runner.invoke(main, ["show", json.loads(path.read_text())["key"][:16], "--cassettes", str(cassettes)])
        (reports / f"show-{path.stem}.txt").write_text(shown.output)

    log = (logs / "serve.log").read_text()
    assert "POST /openai/deployments/gpt-4/chat/completions" in log and "401" in log, "the log is real"
    assert json.loads((reports / "drift.json").read_text()), "verify logged drift"

    hits, files, size = scan_bytes(tmp_path, SECRETS)
    assert hits == [], hits
    print(f"\nscanned {files} files, {size} bytes (cassettes, cache, logs, reports) for {len(SECRETS)} secrets in 3 spellings each: 0 hits")

    # The scanner would have seen them: the same secrets in a file of each kind it read.
    control = tmp_path / "control"
    control.mkdir()
    import base64
    import pickle
    import sqlite3

    (control / "raw.txt").write_text(AZURE_KEY)
    (control / "b64.txt").write_bytes(base64.b64encode(OPENAI_KEY.encode()))
    (control / "pickle.bin").write_bytes(pickle.dumps({"token": TOKEN}))
    with sqlite3.connect(control / "db.sqlite") as db:
        db.execute("create table t (v text)")
        db.execute("insert into t values (?)", (V1_KEY,))
    control_hits, _, _ = scan_bytes(control, SECRETS)
    assert len({hit.split(":")[0] for hit in control_hits}) == 4
