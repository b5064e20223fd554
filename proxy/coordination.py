"""What concurrent requests must agree on: occurrence counters, single-flight, stats.

The in-process coordinator serves a single worker with no I/O on the hot path. With
several workers the same interface is backed by the diskcache directory (see
``shared_coordination``), so counters and locks hold across processes.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .config import Settings

STAT_NAMES = ("requests", "hits", "misses", "recorded", "upstream_calls", "verified", "drifted", "errors")


class Coordinator(Protocol):
    def next_occurrence(self, session: str, cassette: str, key: str) -> int: ...

    def release_occurrence(self, session: str, cassette: str, key: str, occurrence: int) -> None:
        """Give back an occurrence whose request failed (nothing recorded or served).

        A client retrying after a 429 or a reset must get the same episode number
        again, as if the failed attempt never happened. Only the latest occurrence can
        be given back; an older one (others came after it) is kept.
        """
        ...

    def claim_episode(self, session: str, cassette: str, key: str, episode: int) -> bool:
        """True the first time this session writes episode ``episode`` of the key.

        Re-recording rewrites episode n with the n-th request, but an episode this
        session already wrote (an answer that completed out of order and was appended
        there) is another client's answer: it must not be overwritten. Called under
        the key's write lock.
        """
        ...

    def key_lock(self, cassette: str, key: str) -> AsyncLockContext: ...

    def incr(self, stat: str, amount: int = 1) -> None: ...

    def stats(self) -> dict[str, int]: ...


class AsyncLockContext(Protocol):
    async def __aenter__(self) -> object: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None: ...


class LocalCoordinator:
    """Counters and locks for one process."""

    def __init__(self) -> None:
        self._occurrences: Counter[tuple[str, str, str]] = Counter()
        self._locks: dict[tuple[str, str], tuple[asyncio.Lock, int]] = {}
        self._stats: Counter[str] = Counter({name: 0 for name in STAT_NAMES})
        self._written: set[tuple[str, str, str, int]] = set()

    def next_occurrence(self, session: str, cassette: str, key: str) -> int:
        slot = (session, cassette, key)
        self._occurrences[slot] += 1
        return self._occurrences[slot]

    def release_occurrence(self, session: str, cassette: str, key: str, occurrence: int) -> None:
        slot = (session, cassette, key)
        if occurrence > 0 and self._occurrences.get(slot) == occurrence:
            self._occurrences[slot] -= 1

    def claim_episode(self, session: str, cassette: str, key: str, episode: int) -> bool:
        slot = (session, cassette, key, episode)
        if slot in self._written:
            return False
        self._written.add(slot)
        return True

    @asynccontextmanager
    async def key_lock(self, cassette: str, key: str) -> AsyncIterator[None]:
        slot = (cassette, key)
        lock, users = self._locks.get(slot, (asyncio.Lock(), 0))
        self._locks[slot] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[slot]
            if users <= 1:
                del self._locks[slot]  # keep the table as small as the set of keys in flight
            else:
                self._locks[slot] = (lock, users - 1)

    def incr(self, stat: str, amount: int = 1) -> None:
        self._stats[stat] += amount

    def stats(self) -> dict[str, int]:
        return dict(self._stats)


def coordinator_for(settings: Settings) -> Coordinator:
    """One worker: in memory. Several: shared through the cache directory, under the
    run's session id (set once by the CLI parent, so every worker has the same)."""
    if settings.workers > 1:
        from .shared_coordination import DiskCoordinator

        return DiskCoordinator(settings.cache_dir, settings.session)
    return LocalCoordinator()
