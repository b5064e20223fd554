"""``seedtape serve``: settings into the environment, uvicorn (and its workers) up.

uvicorn's ``--workers`` re-imports the app in each worker process, so the settings
travel as JSON in ``SEEDTAPE_SETTINGS_JSON`` and every worker builds its app with
:func:`app_from_env`. This is also where ``--upstream sim`` becomes the simulator's
transport: the request path never imports the simulator.
"""

from __future__ import annotations

import os

from starlette.applications import Starlette

from seedtape.app import create_app
from seedtape.config import Settings
from seedtape.serving import run_server
from seedtape.sim import transport_for

SETTINGS_ENV = "SEEDTAPE_SETTINGS_JSON"
APP_FACTORY = "seedtape.commands.serve:app_from_env"


def app_from_env() -> Starlette:
    """Factory for ``uvicorn --factory`` and worker processes: settings come from the env."""
    settings = Settings.from_env(os.environ[SETTINGS_ENV])
    return create_app(settings, upstream_transport=transport_for(settings.upstream))


def serve(settings: Settings, *, host: str, port: int, log_level: str, access_log: bool) -> None:
    """Run the proxy until interrupted (one process, or ``settings.workers`` workers)."""
    if settings.workers > 1:
        prepare_shared_cache(settings)
    os.environ[SETTINGS_ENV] = settings.to_env()
    run_server(
        APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=settings.workers,
        log_level=log_level,
        access_log=access_log,
        max_header_size=settings.max_header_size,
        max_headers=settings.max_headers,
    )


def prepare_shared_cache(settings: Settings) -> None:
    """Open (and, if corrupted, rebuild) the cache's databases once, in the parent,
    so that N workers starting together do not race to repair the same directory."""
    from seedtape.coordination.workers import WorkerCoordinator
    from seedtape.store import CassetteStore

    CassetteStore(settings.cassettes_dir, settings.cache_dir).close()
    WorkerCoordinator.prepare(settings.cache_dir)
