"""Shared fixtures: the simulator as upstream and proxies in front of it, on real sockets."""

from __future__ import annotations

import gc
import logging
import ssl
import threading
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
from seedtape.sim.simulator import SimConfig, Simulator, create_simulator

# Distinctive fake credentials: every test that writes files scans for them (rule 4).
AZURE_KEY = "azkey-0123456789abcdef0123456789abcdef"
OPENAI_KEY = "sk-seedtape-test-SECRET-abcdefghijklmnopqrstuvwxyz"
SECRETS = (AZURE_KEY, OPENAI_KEY)


@pytest.fixture(scope="session", autouse=True)
def one_tls_context_per_settings() -> Iterator[None]:
    """Every httpx/httpx2 client loads certifi's CA bundle into a new SSL context: 16 ms
    each, measured, several per test (each ``httpx.post``, SDK client and proxy), all
    for http://127.0.0.1; it was most of a typical test's time. Within the run, clients
    with the same TLS settings share one context; other settings get their own as before."""
    import httpx._transports.default as httpx_transports
    import httpx2._transports.default as httpx2_transports

    with pytest.MonkeyPatch.context() as patch:
        for module in (httpx_transports, httpx2_transports):
            create = getattr(module, "create_ssl_context", None)
            if create is not None:  # a release that moved it: slower tests, nothing else
                patch.setattr(module, "create_ssl_context", _shared_ssl_context(create))
        yield


def _shared_ssl_context(create: Callable[..., ssl.SSLContext]) -> Callable[..., ssl.SSLContext]:
    made: dict[tuple[bool, bool], ssl.SSLContext] = {}
    lock = threading.Lock()

    def shared(verify: Any = True, cert: Any = None, trust_env: bool = True) -> ssl.SSLContext:
        if not isinstance(verify, bool) or cert is not None:
            return create(verify=verify, cert=cert, trust_env=trust_env)
        with lock:
            if (verify, trust_env) not in made:
                made[verify, trust_env] = create(verify=verify, cert=cert, trust_env=trust_env)
            return made[verify, trust_env]

    return shared


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def shared_sim() -> Iterator[tuple[Simulator, str]]:
    """One simulator on one socket for the whole run (a server per test cost its stop every time)."""
    simulator = create_simulator()
    with serve_in_thread(simulator.app) as url:
        yield simulator, url


def pytest_collection_finish(session: pytest.Session) -> None:
    """Move everything imported and collected so far out of the collector's way.

    ``gc.freeze()`` puts every object alive now (modules, the SDK's types, thousands
    of collected test items) in a generation no collection scans, so the collection
    before each async test below looks only at what tests allocated since: ~0.17 s
    each over the whole heap, a few milliseconds after the freeze.
    """
    gc.collect()
    gc.freeze()


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
def sim(shared_sim: tuple[Simulator, str]) -> Simulator:
    """The shared simulator as if new: default config, no counters, faults or request logs."""
    simulator, _ = shared_sim
    simulator.reset()
    simulator.config = SimConfig()
    simulator.reseed(None)  # a test that fixed the draws leaves none fixed for the next
    return simulator


@pytest.fixture
def sim_url(sim: Simulator, shared_sim: tuple[Simulator, str]) -> str:
    return shared_sim[1]


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
