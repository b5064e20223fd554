"""What the engine asks of the shared store: one object, one method per hook.

The engine calls these only when ``--store`` is set (``Engine.team``); each is a
short decision over the modules beside it. The rule they share: Redis is an addition.
Whatever it cannot do (unreachable, slow, out of memory) falls back to exactly what
the proxy does without a store -- local cassettes, local counters and locks -- unless
``--store-required`` asks for a 503 instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seedtape.cassette import Recording
from seedtape.coordination.base import Coordinator
from seedtape.errors import ProxyError
from seedtape.prepared import Prepared
from seedtape.teams import codec, drift
from seedtape.teams.client import connect
from seedtape.teams.coordinator import FleetCoordinator
from seedtape.teams.health import StoreHealth, StoreUnavailable
from seedtape.teams.keys import Keys
from seedtape.teams.locks import LOCK_TTL, FleetLocks
from seedtape.teams.recordings import SharedRecordings
from seedtape.teams.url import masked, password_of

if TYPE_CHECKING:
    from seedtape.config import Settings
    from seedtape.exchange import Exchange

log = logging.getLogger("seedtape")


class Team:
    def __init__(self, settings: Settings, fallback: Coordinator) -> None:
        self.required = settings.store_required
        self.url = masked(settings.store)
        self.namespace = settings.namespace
        self.client = connect(settings.store, settings.store_timeout)
        self.keys = Keys(settings.namespace)
        consequence = (
            "answering 503 to recorded routes (--store-required) until it is back"
            if self.required
            else "serving from local cassettes and recording locally until it is back"
        )
        label = f"{self.url} (namespace {settings.namespace})"
        self.health = StoreHealth(label, settings.store_timeout, self.client.ping, password_of(settings.store), consequence)
        self.health.on_recover = self._on_recover
        ttl = int(settings.store_ttl_days * 86400) if settings.store_ttl_days else None
        self.recordings = SharedRecordings(self.client, self.keys, self.health, ttl)
        wait = settings.upstream_timeout + LOCK_TTL + 5  # as long as a holder may take for its answer
        self.locks = FleetLocks(self.client, self.keys, self.health, wait_limit=wait, max_hold=wait)
        self.coordinator = FleetCoordinator(self.client, self.keys, self.health, fallback, settings.session, self.locks)
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Say once at start-up whether the store answers (a failure is logged by health)."""
        with contextlib.suppress(StoreUnavailable):
            await self.health.call(self.client.ping)
            log.info("seedtape: sharing recordings through %s (namespace %s)", self.url, self.namespace)

    # --- request path -------------------------------------------------------------------

    def require(self) -> None:
        """--store-required: a recorded route is refused while the store is away."""
        if self.required and self.health.degraded:
            self.health.probe_soon()
            raise ProxyError(
                503,
                f"the shared store {self.url} (namespace {self.namespace}) is unreachable ({self.health.last_error}) "
                "and this proxy runs with --store-required",
                "seedtape_store_unavailable",
                "store_unavailable",
                headers={"retry-after": "1"},
            )

    async def next_occurrence(self, exchange: Exchange) -> int:
        self.require()
        return await self.coordinator.occurrence(exchange.session, exchange.cassette, exchange.key)

    async def claim(self, session: str, cassette: str, key: str, episode: int) -> bool:
        return await self.coordinator.claim(session, cassette, key, episode)

    async def lookup(
        self, exchange: Exchange, local: Prepared | None, cache_past_end: bool, read_local: Callable[[], Recording | None]
    ) -> Prepared | None:
        """Ask Redis when the local file cannot answer this occurrence itself.

        ``cache_past_end``: the engine would serve the last local episode to an
        occurrence past the end (a deterministic request: the cache), so the local
        file answers and no round trip is made.
        """
        episodes = local.episodes if local is not None else ()
        if episodes and (exchange.occurrence <= len(episodes) or cache_past_end):
            return local
        try:
            return await self.recordings.lookup(exchange.cassette, exchange.key, local, read_local)
        except StoreUnavailable:
            self.require()
            return local

    async def recorded(self, cassette: str, key: str, local: Recording | None) -> Recording | None:
        """The local recording completed by the team's episodes (what verify compares with)."""

        return codec.merge(local, await self.recordings.recording(cassette, key))

    async def before_save(self, path: Path, cassette: str, key: str) -> None:
        with contextlib.suppress(StoreUnavailable):
            await self.recordings.merge_into_file(path, cassette, key)

    async def after_save(self, path: Path, cassette: str, key: str) -> None:
        await self.recordings.publish(path, cassette, key)

    async def log_drift(self, entry: Mapping[str, Any]) -> None:
        with contextlib.suppress(StoreUnavailable):
            await self.health.call(lambda: drift.append(self.client, self.keys, entry))

    # --- recovery ---------------------------------------------------------------------

    def _on_recover(self) -> None:
        if self.recordings.pending:
            task = asyncio.get_running_loop().create_task(self._publish_pending())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _publish_pending(self) -> None:
        """Recordings made while Redis was away reach the team (bounded by PENDING_MAX)."""
        items = self.recordings.take_pending()
        for cassette, key, path in items:
            if self.health.degraded:  # away again: what is left waits for the next recovery
                self.recordings.pending[(cassette, key)] = path
                continue
            async with self.locks.hold(cassette, "write:" + key):
                await self.recordings.publish(path, cassette, key, merge=True)
        log.warning("seedtape: published %d recording(s) made while the shared store was away", len(items))

    # --- admin --------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """This proxy's view of the store, for /_seedtape/stats and /health (no password)."""
        health = self.health
        if health.degraded:
            health.probe_soon()  # someone is watching: find out whether it is back
        return {
            "url": self.url,
            "namespace": self.namespace,
            "state": "degraded" if health.degraded else "ok",
            "required": self.required,
            "degraded_since": round(health.since, 3) if health.degraded else None,
            "last_error": health.last_error or None,
            "outages": health.outages,
            "errors": health.errors,
            "hits": self.recordings.hits,
            "writes": self.recordings.writes,
            "pending": len(self.recordings.pending),
            "pending_dropped": self.recordings.dropped,
        }

    async def fleet_stats(self) -> tuple[int, dict[str, Any]]:
        """(HTTP status, body) for ``/_seedtape/stats?scope=fleet``."""
        try:
            totals = await self.coordinator.fleet_stats.totals()
        except StoreUnavailable:
            return 503, {"scope": "fleet", "store": self.describe(), "error": "the shared store is unreachable"}
        return 200, {**totals, "scope": "fleet", "namespace": self.namespace, "store": self.describe(), "at": time.time()}

    async def aclose(self) -> None:
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.coordinator.aclose()
        await self.health.wait_probe()
        await self.client.aclose()
