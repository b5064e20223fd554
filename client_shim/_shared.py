"""What the several apps of one in-process proxy share: counters, and the misses seen.

An in-process proxy runs one app on its background loop (for sync clients) and one
per async client (each bound to the loop it runs on). Without a shared coordinator
each app would count occurrences on its own, and the second of two async clients
would be served episode 1 again where a real proxy serves episode 2.
"""

from __future__ import annotations

import asyncio
import json
import threading
import weakref
from collections import Counter
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

from seedtape.coordination import STAT_NAMES, AsyncLockContext, LocalCoordinator

# The error types a replay answers with when it has nothing to serve.
MISS_TYPES = frozenset({"seedtape_cassette_miss", "seedtape_unrecorded_route", "seedtape_episodes_exhausted"})


class SharedCoordinator:
    """Occurrence counters and stats shared by apps on different threads and loops.

    Counters are guarded by a thread lock (they are touched from the sync clients'
    loop thread and from the test's own loop). Single-flight locks are asyncio locks,
    which belong to one loop, so each loop gets its own table of them.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._occurrences: Counter[tuple[str, str, str]] = Counter()
        self._stats: Counter[str] = Counter({name: 0 for name in STAT_NAMES})
        self._per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LocalCoordinator] = weakref.WeakKeyDictionary()
        self._written: set[tuple[str, str, str, int]] = set()

    def next_occurrence(self, session: str, cassette: str, key: str) -> int:
        with self._lock:
            self._occurrences[(session, cassette, key)] += 1
            return self._occurrences[(session, cassette, key)]

    def release_occurrence(self, session: str, cassette: str, key: str, occurrence: int) -> None:
        with self._lock:
            slot = (session, cassette, key)
            if occurrence > 0 and self._occurrences.get(slot) == occurrence:
                self._occurrences[slot] -= 1

    def claim_episode(self, session: str, cassette: str, key: str, episode: int) -> bool:
        with self._lock:
            slot = (session, cassette, key, episode)
            if slot in self._written:
                return False
            self._written.add(slot)
            return True

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


@dataclass(frozen=True, slots=True)
class Miss:
    """A request the replay could not serve, with the proxy's explanation."""

    type: str
    message: str


Message = MutableMapping[str, Any]


class MissRecorder:
    """ASGI middleware that notes every replay miss the app answers.

    The SDK turns a miss into ``openai.NotFoundError``, which a test may catch and
    swallow; noting the miss where it is answered lets the pytest plugin fail the test
    with the proxy's message whatever the test did with the exception.
    """

    def __init__(self, app: Any, sink: list[Miss]) -> None:
        self.app = app
        self.sink = sink

    async def __call__(self, scope: Message, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        watching = False
        parts: list[bytes] = []

        async def watch(message: Message) -> None:
            nonlocal watching
            if message["type"] == "http.response.start":
                # Only 404s marked as a cache miss can be one; everything else is passed on untouched.
                watching = message["status"] == 404 and (b"x-seedtape-cache", b"miss") in [
                    (k.lower(), v) for k, v in message.get("headers", [])
                ]
            elif watching and message["type"] == "http.response.body":
                parts.append(message.get("body", b""))
                if not message.get("more_body", False):
                    self._note(b"".join(parts))
            await send(message)

        await self.app(scope, receive, watch)

    def _note(self, body: bytes) -> None:
        try:
            error = json.loads(body)["error"]
        except (ValueError, KeyError, TypeError):
            return
        if isinstance(error, dict) and error.get("type") in MISS_TYPES:
            self.sink.append(Miss(str(error["type"]), str(error.get("message", ""))))
