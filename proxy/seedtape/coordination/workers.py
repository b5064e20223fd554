"""Coordination shared by the worker processes of one run, through the cache directory.

``seedtape serve --workers N`` runs N processes behind one socket. They must agree on
three things a single process keeps in memory (see ``coordination``):

* **occurrence counters** -- the n-th identical request of a session gets episode n,
  whichever worker answers it. A diskcache ``incr`` is one SQLite transaction, atomic
  across processes, and takes well under a millisecond, so it runs inline.
* **key locks** -- single-flight (N identical requests, one upstream call) and the
  read-modify-write of a cassette file. These are ``flock`` locks on small files under
  ``<cache-dir>/coordination/locks``: the kernel releases them when a holder dies, even
  by SIGKILL, so a crashed worker never leaves a key locked (a lease in the database
  would need a timeout as long as the slowest upstream answer). Waiting never blocks
  the event loop: the lock is polled without blocking, and an in-process asyncio lock
  in front of it means only one request per process polls for a given key.
* **stats** -- each worker keeps its own counts and writes them to the shared table at
  most every ``flush_interval`` seconds; ``stats()`` adds up every worker of the run.

Everything lives under one run id (the session id the CLI parent sets once for all
workers), so a second proxy run sharing the cache directory starts its counters at 1.
The state is disposable like the rest of the cache: counters expire a day after their
last use, and a database that cannot be opened is removed and created again.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shutil
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import diskcache

from seedtape.coordination.base import STAT_NAMES
from seedtape.coordination.filelocks import acquire_file_lock, release_file_lock
from seedtape.coordination.local import LocalCoordinator

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("seedtape")
T = TypeVar("T")

COUNTER_TTL = 24 * 3600.0  # an idle session's counters are forgotten after a day
STATS_TTL = 7 * 24 * 3600.0


def open_cache(directory: Path, **options: Any) -> diskcache.Cache:
    """Open a diskcache directory; one that cannot be opened (corrupted) is rebuilt.

    Only derived data lives there, so removing a broken one loses nothing.
    """
    try:
        return diskcache.Cache(str(directory), **options)
    except Exception as exc:
        log.warning("seedtape: cache %s cannot be opened (%s: %s); rebuilding it", directory, type(exc).__name__, exc)
        shutil.rmtree(directory, ignore_errors=True)
        return diskcache.Cache(str(directory), **options)


class WorkerCoordinator:
    """The ``Coordinator`` for several worker processes sharing one cache directory."""

    def __init__(self, cache_dir: Path, run: str, flush_interval: float = 0.25) -> None:
        if fcntl is None:  # pragma: no cover
            raise RuntimeError("--workers above 1 needs POSIX file locks (fcntl); run one worker on this system")
        self.directory = Path(cache_dir) / "coordination"
        self.locks_dir = self.directory / "locks"
        self.run = run
        self.flush_interval = flush_interval
        self._cache = open_cache(self.directory, eviction_policy="none")
        self._local = LocalCoordinator()  # asyncio locks in front of the file locks; fallback counters
        self._mine: Counter[str] = Counter({name: 0 for name in STAT_NAMES})
        self._flushed_at = 0.0
        self._flush_timer: asyncio.TimerHandle | None = None
        self._degraded = False

    @staticmethod
    def prepare(cache_dir: Path) -> None:
        """Open the database once (rebuilding it if corrupted) before workers start."""
        open_cache(Path(cache_dir) / "coordination", eviction_policy="none").close()

    def close(self) -> None:
        self._flush()
        self._cache.close()

    # --- occurrence counters ----------------------------------------------------------

    def next_occurrence(self, session: str, cassette: str, key: str) -> int:
        slot = ("occurrence", self.run, session, cassette, key)

        def incr() -> int:
            with self._cache.transact():
                value = int(self._cache.incr(slot, 1, default=0))
                self._cache.touch(slot, expire=COUNTER_TTL)
            return value

        return self._shared(incr, lambda: self._local.next_occurrence(session, cassette, key))

    def release_occurrence(self, session: str, cassette: str, key: str, occurrence: int) -> None:
        slot = ("occurrence", self.run, session, cassette, key)

        def release() -> None:
            with self._cache.transact():
                if occurrence > 0 and self._cache.get(slot) == occurrence:
                    self._cache.decr(slot, 1)

        self._shared(release, lambda: self._local.release_occurrence(session, cassette, key, occurrence))

    def _shared(self, operation: Callable[[], T], fallback: Callable[[], T]) -> T:
        """Run a database operation; if the cache broke under us, keep serving on local state.

        A cache directory deleted or damaged while the proxy runs must not take the
        proxy down with it: requests keep working, only cross-worker agreement weakens
        until the next start rebuilds the directory. Said once in the log.
        """
        try:
            return operation()
        except Exception as exc:
            if not self._degraded:
                self._degraded = True
                log.warning(
                    "seedtape: shared coordination in %s failed (%s: %s); this worker continues with its own counters",
                    self.directory,
                    type(exc).__name__,
                    exc,
                )
            return fallback()

    def claim_episode(self, session: str, cassette: str, key: str, episode: int) -> bool:
        slot = ("written", self.run, session, cassette, key, episode)
        return self._shared(
            lambda: bool(self._cache.add(slot, True, expire=COUNTER_TTL)),
            lambda: self._local.claim_episode(session, cassette, key, episode),
        )

    # --- key locks --------------------------------------------------------------------

    @asynccontextmanager
    async def key_lock(self, cassette: str, key: str) -> AsyncIterator[None]:
        async with self._local.key_lock(cassette, key):
            path = self.locks_dir / (hashlib.sha256(f"{cassette}\0{key}".encode()).hexdigest()[:40] + ".lock")
            fd = await acquire_file_lock(path)
            try:
                yield
            finally:
                release_file_lock(fd, path)

    # --- stats ------------------------------------------------------------------------

    def incr(self, stat: str, amount: int = 1) -> None:
        self._mine[stat] += amount
        if time.monotonic() - self._flushed_at >= self.flush_interval:
            self._flush()
        elif self._flush_timer is None:
            # A worker that goes quiet still reports its last counts.
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
            self._flush_timer = loop.call_later(self.flush_interval, self._flush)

    def stats(self) -> dict[str, int]:
        self._flush()

        def read() -> dict[Any, dict[str, int]]:
            return self._cache.get(("stats", self.run)) or {}

        table = self._shared(read, lambda: {os.getpid(): dict(self._mine)})
        totals: Counter[str] = Counter({name: 0 for name in STAT_NAMES})
        for counts in table.values():
            totals.update(counts)
        result = dict(totals)
        result["workers"] = sum(1 for counts in table.values() if counts.get("requests"))
        return result

    def _flush(self) -> None:
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        self._flushed_at = time.monotonic()
        slot = ("stats", self.run)
        mine = dict(self._mine)

        def write() -> None:
            with self._cache.transact():
                table = self._cache.get(slot) or {}
                table[os.getpid()] = mine
                self._cache.set(slot, table, expire=STATS_TTL)

        self._shared(write, lambda: None)
