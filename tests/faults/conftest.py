"""Fixtures of the fault-injection suite (the shared ones come from tests/conftest.py)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from seedtape.cli import main
from seedtape.commands.serve import SETTINGS_ENV
from seedtape.sim.simulator import Simulator


@pytest.fixture
def serve_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., tuple[Result, dict[str, Any] | None]]:
    """``seedtape serve ARGS`` with the server start replaced: what it would have listened on.

    Run in a temporary folder: the default cassettes and cache folders are relative.
    """
    monkeypatch.chdir(tmp_path)
    for name in (
        "SEEDTAPE_HOST",
        "SEEDTAPE_AUTH_TOKEN",
        "SEEDTAPE_WORKERS",
        "SEEDTAPE_UPSTREAM",
        "SEEDTAPE_MODE",
        "SEEDTAPE_PORT",
        "SEEDTAPE_CASSETTE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(SETTINGS_ENV, "")  # restored after the test

    def run(*args: str, upstream: str | None = "sim") -> tuple[Result, dict[str, Any] | None]:
        calls: list[dict[str, Any]] = []

        def fake_run(app: str, **options: Any) -> None:
            calls.append({**options, "settings": json.loads(os.environ[SETTINGS_ENV])})

        monkeypatch.setattr("seedtape.commands.serve.run_server", fake_run)
        chosen = ["--upstream", upstream] if upstream else []
        result = CliRunner().invoke(main, ["serve", *chosen, *args])
        return result, calls[0] if calls else None

    return run


@pytest.fixture
def echo_sim(sim: Simulator) -> Simulator:
    """The simulator behind ``proxy_factory``, answering with the prompt and keeping
    every request it receives (``sim.received``), to check what the proxy forwarded."""
    sim.update_config({"echo": True, "keep_requests": True})
    return sim
