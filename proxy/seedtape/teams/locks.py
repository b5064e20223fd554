"""Fleet-wide key locks: one Redis key per (namespace, cassette, key), owned by a token.

Taking a lock is ``SET name token NX PX ttl``; releasing and extending are Lua scripts
that act only while the key still holds the caller's token, so a holder whose lock
expired can never release (or extend) the next holder's. The expiry is short
(``LOCK_TTL``) so a proxy that dies holding a lock blocks the key for seconds, not
for an upstream timeout; a live holder keeps extending it (a watchdog task, bounded by
``max_hold``) for as long as its upstream answer or stream takes.

Waiters poll with a backoff from 2 ms to 50 ms. The coordinator puts an in-process lock
in front, so only one request per proxy polls for a given key.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from redis.asyncio import Redis

from seedtape.teams.health import StoreHealth, StoreUnavailable
from seedtape.teams.keys import Keys

log = logging.getLogger("seedtape")
LOCK_TTL = 10.0
_EXTEND_EVERY = LOCK_TTL / 3
_POLL_FIRST = 0.002
_POLL_MAX = 0.05

_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
_EXTEND = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0"


@dataclass
class _Held:
    name: str
    token: str
    watchdog: asyncio.Task[None]


class FleetLocks:
    def __init__(self, client: Redis, keys: Keys, health: StoreHealth, wait_limit: float, max_hold: float) -> None:
        self.client = client
        self.keys = keys
        self.health = health
        self.wait_limit = wait_limit  # a waiter gives up on the fleet lock (not the local one) after this
        self.max_hold = max_hold  # the watchdog stops extending after this
        self._release = client.register_script(_RELEASE)
        self._extend = client.register_script(_EXTEND)

    @contextlib.asynccontextmanager
    async def hold(self, cassette: str, key: str) -> AsyncIterator[bool]:
        """Hold the fleet lock of a key; yields False if Redis could not be asked (local lock only)."""
        held = await self._acquire(self.keys.lock(cassette, key))
        try:
            yield held is not None
        finally:
            if held is not None:
                await self._let_go(held)

    async def _acquire(self, name: str) -> _Held | None:
        token = uuid.uuid4().hex
        deadline = time.monotonic() + self.wait_limit
        delay = _POLL_FIRST
        while True:
            try:
                taken = await self.health.call(lambda: self.client.set(name, token, nx=True, px=int(LOCK_TTL * 1000)))
            except StoreUnavailable:
                return None
            if taken:
                watchdog = asyncio.get_running_loop().create_task(self._keep(name, token))
                return _Held(name, token, watchdog)
            if time.monotonic() >= deadline:
                log.warning("seedtape: waited %.0f s for the fleet lock %s; going on without it", self.wait_limit, name)
                return None
            await asyncio.sleep(delay)
            delay = min(delay * 2, _POLL_MAX)

    async def _keep(self, name: str, token: str) -> None:
        """Extend the lock while it is held (the holder cancels this), for at most max_hold."""
        end = time.monotonic() + self.max_hold
        while time.monotonic() < end:
            await asyncio.sleep(_EXTEND_EVERY)
            with contextlib.suppress(StoreUnavailable):
                if not await self.health.call(lambda: self._extend(keys=[name], args=[token, int(LOCK_TTL * 1000)])):
                    return  # expired and maybe taken by another: nothing left to extend

    async def _let_go(self, held: _Held) -> None:
        held.watchdog.cancel()
        await asyncio.gather(held.watchdog, return_exceptions=True)
        # Not released (Redis away): the key expires by itself within LOCK_TTL.
        with contextlib.suppress(StoreUnavailable):
            await self.health.call(lambda: self._release(keys=[held.name], args=[held.token]))
