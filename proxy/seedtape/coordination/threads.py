"""The coordinator of an in-process proxy: several apps on different threads and loops.

An in-process proxy runs one app on its background loop (for sync clients) and one
per async client (each bound to the loop it runs on). Without one coordinator shared
by all of them each app would count occurrences on its own, and the second of two
async clients would be served episode 1 again where a real proxy serves episode 2.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections import Counter

from seedtape.coordination.base import STAT_NAMES, AsyncLockContext
from seedtape.coordination.local import MAX_SESSIONS, LocalCoordinator, SessionTable


class ThreadCoordinator:
    """Occurrence counters and stats shared by apps on different threads and loops.

    Counters are guarded by a thread lock (they are touched from the sync clients'
    loop thread and from the test's own loop). Single-flight locks are asyncio locks,
    which belong to one loop, so each loop gets its own table of them.
    """

    def __init__(self, max_sessions: int = MAX_SESSIONS) -> None:
        self._lock = threading.Lock()
        self._sessions = SessionTable(max_sessions)
        self._stats: Counter[str] = Counter({name: 0 for name in STAT_NAMES})
        self._per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LocalCoordinator] = weakref.WeakKeyDictionary()

    def next_occurrence(self, session: str, cassette: str, key: str) -> int:
        with self._lock:
            return self._sessions.next_occurrence(session, cassette, key)

    def release_occurrence(self, session: str, cassette: str, key: str, occurrence: int) -> None:
        with self._lock:
            self._sessions.release_occurrence(session, cassette, key, occurrence)

    def claim_episode(self, session: str, cassette: str, key: str, episode: int) -> bool:
        with self._lock:
            return self._sessions.claim_episode(session, cassette, key, episode)

    def key_lock(self, cassette: str, key: str) -> AsyncLockContext:
        loop = asyncio.get_running_loop()
        with self._lock:
            local = self._per_loop.get(loop)
            if local is None:
                local = self._per_loop[loop] = LocalCoordinator()
        return local.key_lock(cassette, key)

    def incr(self, stat: str, amount: int = 1) -> None:
        with self._lock:
            self._stats[stat] += amount

    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self._stats)
