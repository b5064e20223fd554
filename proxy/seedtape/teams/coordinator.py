"""The ``Coordinator`` protocol over Redis, for a fleet of proxies.

What must agree fleet-wide, and where it lives:

* **key locks** (single-flight, and the read-modify-write of a recording): a fleet lock
  in Redis (``locks``) behind the local coordinator's own lock, so one request per
  process waits on Redis and ``--workers`` keep their file locks when Redis is away;
* **occurrence counters and episode claims of a shared session** (a session named by
  ``x-seedtape-session``, which any proxy of the fleet may serve): Redis counters with
  a day's expiry. The proxy's own session (no header) can only reach this proxy, so it
  stays on the local coordinator and costs no round trip;
* **statistics**: counted locally as before; ``stats.FleetStats`` adds them up in Redis.

Redis is reached with async calls, the protocol's methods are sync: the engine awaits
:meth:`FleetCoordinator.occurrence` and :meth:`FleetCoordinator.claim` (its hooks), and
the sync methods answer from the local coordinator, which is also what everything falls
back to while the store is degraded. A local floor keeps numbers moving forward across
an outage: a counter Redis lost (restarted empty) resumes above what this proxy handed out.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio import Redis

from seedtape.coordination.base import Coordinator
from seedtape.teams.health import StoreHealth, StoreUnavailable
from seedtape.teams.keys import Keys
from seedtape.teams.locks import FleetLocks
from seedtape.teams.stats import FleetStats

COUNTER_TTL = 24 * 3600  # seconds; like the workers' counters, an idle session is forgotten after a day
_FLOORS_MAX = 100_000

# INCR, but never below the floor this proxy has already seen; refresh the expiry.
_NEXT = """
local v = redis.call('INCR', KEYS[1])
local floor = tonumber(ARGV[1])
if v < floor then redis.call('SET', KEYS[1], floor) v = floor end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return v
"""
# Give back the latest occurrence only (see Coordinator.release_occurrence).
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DECR', KEYS[1]) end return -1"


class FleetCoordinator:
    def __init__(self, client: Redis, keys: Keys, health: StoreHealth, fallback: Coordinator, own_session: str, locks: FleetLocks) -> None:
        self.client = client
        self.keys = keys
        self.health = health
        self.fallback = fallback
        self.own_session = own_session
        self.locks = locks
        self.fleet_stats = FleetStats(client, keys, health)
        self._floors: dict[tuple[str, str, str], int] = {}
        self._next = client.register_script(_NEXT)
        self._release = client.register_script(_RELEASE)
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- the engine's async hooks -------------------------------------------------------

    async def occurrence(self, session: str, cassette: str, key: str) -> int:
        if session == self.own_session:
            return self.fallback.next_occurrence(session, cassette, key)
        slot = (session, cassette, key)
        floor = self._floors.get(slot, 0) + 1
        try:
            value = int(await self.health.call(lambda: self._next(keys=[self.keys.occurrences(*slot)], args=[floor, COUNTER_TTL])))
        except StoreUnavailable:
            value = floor
        self._remember(slot, value)
        return value

    async def claim(self, session: str, cassette: str, key: str, episode: int) -> bool:
        if session == self.own_session:
            return self.fallback.claim_episode(session, cassette, key, episode)
        name = self.keys.claims(session, cassette, key)

        async def add() -> bool:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.sadd(name, str(episode))
                pipe.expire(name, COUNTER_TTL)
                added, _ = await pipe.execute()
            return bool(added)

        try:
            claimed = await self.health.call(add)
        except StoreUnavailable:
            return self.fallback.claim_episode(session, cassette, key, episode)
        self.fallback.claim_episode(session, cassette, key, episode)  # remembered for an outage
        return claimed

    # --- the Coordinator protocol -------------------------------------------------------

    def next_occurrence(self, session: str, cassette: str, key: str) -> int:
        """Sync callers only (the engine awaits ``occurrence``): this proxy's own view."""
        if session == self.own_session:
            return self.fallback.next_occurrence(session, cassette, key)
        slot = (session, cassette, key)
        value = self._floors.get(slot, 0) + 1
        self._remember(slot, value)
        return value

    def release_occurrence(self, session: str, cassette: str, key: str, occurrence: int) -> None:
        if session == self.own_session:
            self.fallback.release_occurrence(session, cassette, key, occurrence)
            return
        slot = (session, cassette, key)
        if self._floors.get(slot) == occurrence:
            self._floors[slot] = occurrence - 1
        # Sync callers (error paths, a stream's finally): the Redis side runs as a task,
        # long done before a client's retry (the SDK waits at least half a second).
        self._spawn(self._release_shared(slot, occurrence))

    async def _release_shared(self, slot: tuple[str, str, str], occurrence: int) -> None:
        with contextlib.suppress(StoreUnavailable):
            await self.health.call(lambda: self._release(keys=[self.keys.occurrences(*slot)], args=[occurrence]))

    def claim_episode(self, session: str, cassette: str, key: str, episode: int) -> bool:
        return self.fallback.claim_episode(session, cassette, key, episode)

    @contextlib.asynccontextmanager
    async def key_lock(self, cassette: str, key: str) -> AsyncIterator[None]:
        async with self.fallback.key_lock(cassette, key), self.locks.hold(cassette, key):
            yield

    def incr(self, stat: str, amount: int = 1) -> None:
        self.fallback.incr(stat, amount)
        self.fleet_stats.add(stat, amount)

    def stats(self) -> dict[str, int]:
        return self.fallback.stats()

    def close(self) -> None:
        close = getattr(self.fallback, "close", None)
        if close is not None:
            close()

    async def aclose(self) -> None:
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.fleet_stats.aclose()

    # --- helpers --------------------------------------------------------------------------

    def _remember(self, slot: tuple[str, str, str], value: int) -> None:
        if len(self._floors) >= _FLOORS_MAX:
            self._floors.clear()  # bounded; a forgotten floor only matters across an outage
        self._floors[slot] = max(value, self._floors.get(slot, 0))

    def _spawn(self, coroutine: Any) -> None:
        try:
            task = asyncio.get_running_loop().create_task(coroutine)
        except RuntimeError:
            coroutine.close()
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
