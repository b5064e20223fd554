"""The coordinator of one process and one event loop: no I/O on the hot path."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from seedtape.coordination.base import STAT_NAMES


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
