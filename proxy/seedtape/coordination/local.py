"""The coordinator of one process and one event loop: no I/O on the hot path."""

from __future__ import annotations

import asyncio
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from seedtape.coordination.base import STAT_NAMES

# Sessions whose counters are remembered; the least recently used beyond this are
# forgotten (``--max-sessions``). Session ids come from a request header, so without
# a bound 30,000 distinct ones grow memory for ever. A forgotten session that comes
# back starts again at episode 1, as a new session would.
MAX_SESSIONS = 10_000


class _Session:
    __slots__ = ("occurrences", "written")

    def __init__(self) -> None:
        self.occurrences: Counter[tuple[str, str]] = Counter()
        self.written: set[tuple[str, str, int]] = set()


class SessionTable:
    """Per-session occurrence counters and written episodes, least recently used first out."""

    def __init__(self, max_sessions: int = MAX_SESSIONS) -> None:
        self.max_sessions = max(1, max_sessions)
        self._sessions: OrderedDict[str, _Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def _get(self, session: str, create: bool = True) -> _Session | None:
        found = self._sessions.get(session)
        if found is not None:
            self._sessions.move_to_end(session)
            return found
        if not create:
            return None
        found = self._sessions[session] = _Session()
        if len(self._sessions) > self.max_sessions:
            self._sessions.popitem(last=False)
        return found

    def next_occurrence(self, session: str, cassette: str, key: str) -> int:
        counts = self._get(session).occurrences  # type: ignore[union-attr]
        counts[(cassette, key)] += 1
        return counts[(cassette, key)]

    def release_occurrence(self, session: str, cassette: str, key: str, occurrence: int) -> None:
        found = self._get(session, create=False)
        if found is not None and occurrence > 0 and found.occurrences.get((cassette, key)) == occurrence:
            found.occurrences[(cassette, key)] -= 1

    def claim_episode(self, session: str, cassette: str, key: str, episode: int) -> bool:
        written = self._get(session).written  # type: ignore[union-attr]
        slot = (cassette, key, episode)
        if slot in written:
            return False
        written.add(slot)
        return True


class LocalCoordinator:
    """Counters and locks for one process."""

    def __init__(self, max_sessions: int = MAX_SESSIONS) -> None:
        self._sessions = SessionTable(max_sessions)
        self._locks: dict[tuple[str, str], tuple[asyncio.Lock, int]] = {}
        self._stats: Counter[str] = Counter({name: 0 for name in STAT_NAMES})

    def next_occurrence(self, session: str, cassette: str, key: str) -> int:
        return self._sessions.next_occurrence(session, cassette, key)

    def release_occurrence(self, session: str, cassette: str, key: str, occurrence: int) -> None:
        self._sessions.release_occurrence(session, cassette, key, occurrence)

    def claim_episode(self, session: str, cassette: str, key: str, episode: int) -> bool:
        return self._sessions.claim_episode(session, cassette, key, episode)

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
