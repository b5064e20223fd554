"""Shared fixtures: the simulator as upstream and proxies in front of it, on real sockets."""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from seedtape.app import create_app
from seedtape.config import Settings
from seedtape.engine import Engine
from seedtape.serving import serve_in_thread
from seedtape.sim.simulator import Simulator, create_simulator

# Distinctive fake credentials: every test that writes files scans for them (rule 4).
AZURE_KEY = "azkey-0123456789abcdef0123456789abcdef"
OPENAI_KEY = "sk-seedtape-test-SECRET-abcdefghijklmnopqrstuvwxyz"
SECRETS = (AZURE_KEY, OPENAI_KEY)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _collect_leaked_async_clients(request: pytest.FixtureRequest) -> None:
    """Before an async test, collect what earlier tests left unreachable.

    ``openai.AsyncOpenAI`` closes itself in ``__del__`` by starting a task on whatever
    event loop is running. A client an earlier test did not close, collected while a
    later async test runs, starts that task on the later test's loop, and it fails
    there ("Event loop is closed"), failing a test that did nothing wrong. Collected
    here, with no loop running, it is closed quietly. (When the collector runs is
    arbitrary; any change in allocations can move it into the wrong test.)
    """
    if request.node.get_closest_marker("anyio") is not None:
        gc.collect()


@pytest.fixture
def sim() -> Simulator:
    return create_simulator()


@pytest.fixture
def sim_url(sim: Simulator) -> Iterator[str]:
    with serve_in_thread(sim.app) as url:
        yield url


@dataclass
class RunningProxy:
    url: str
    settings: Settings
    app: Any

    @property
    def engine(self) -> Engine:
        return self.app.state.engine

    def stats(self) -> dict[str, Any]:
        return httpx.get(self.url + "/_seedtape/stats").json()


@pytest.fixture
def proxy_factory(tmp_path: Path, sim_url: str) -> Iterator[Callable[..., RunningProxy]]:
    """Start proxies (real uvicorn on 127.0.0.1) in front of the simulator."""
    with ExitStack() as stack:

        def start(**options: Any) -> RunningProxy:
            options.setdefault("upstream", sim_url)
            options.setdefault("cassettes_dir", tmp_path / "cassettes")
            options.setdefault("cache_dir", tmp_path / "cache")
            settings = Settings(**options)
            app = create_app(settings)
            url = stack.enter_context(serve_in_thread(app))
            return RunningProxy(url, settings, app)

        yield start


@pytest.fixture
def proxy(proxy_factory: Callable[..., RunningProxy]) -> RunningProxy:
    return proxy_factory(mode="auto")


@contextmanager
def quiet_logger(name: str = "uvicorn.error") -> Iterator[None]:
    """Silence a logger for a block (e.g. uvicorn's traceback for a deliberate reset)."""
    logger = logging.getLogger(name)
    previous = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = previous


def scan_for_secrets(root: Path, secrets: tuple[str, ...] = SECRETS) -> list[str]:
    """Every file under root that contains one of the secrets (should be none)."""
    hits = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            hits += [f"{path}: {secret[:8]}..." for secret in secrets if secret.encode() in data]
    return hits
