"""Fleet statistics: every proxy adds its counts to one Redis hash per namespace.

Counting stays local and free on the request path; deltas are sent at most every
``FLUSH_INTERVAL`` seconds (a pipelined HINCRBY per counter), and kept for the next
flush while Redis is away, so no count is lost to an outage. Each flush also marks
the proxy as seen (a sorted set by time): ``/_seedtape/stats?scope=fleet`` reports the
namespace's totals and how many proxies sent counts in the last ``ACTIVE_WINDOW``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections import Counter
from typing import Any

from redis.asyncio import Redis

from seedtape.coordination.base import STAT_NAMES
from seedtape.teams.health import StoreHealth, StoreUnavailable
from seedtape.teams.keys import Keys

FLUSH_INTERVAL = 0.5
ACTIVE_WINDOW = 600.0
STATS_TTL = 30 * 24 * 3600  # the totals are forgotten a month after the last count


class FleetStats:
    def __init__(self, client: Redis, keys: Keys, health: StoreHealth) -> None:
        self.client = client
        self.keys = keys
        self.health = health
        self.proxy_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._pending: Counter[str] = Counter()
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: asyncio.Task[None] | None = None

    def add(self, stat: str, amount: int) -> None:
        self._pending[stat] += amount
        if self._timer is None and self._flushing is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
            self._timer = loop.call_later(FLUSH_INTERVAL, self._start_flush)

    def _start_flush(self) -> None:
        self._timer = None
        self._flushing = asyncio.get_running_loop().create_task(self.flush())
        self._flushing.add_done_callback(lambda _: setattr(self, "_flushing", None))

    async def flush(self) -> None:
        """Send what was counted since the last flush; keep it if Redis is away."""
        deltas, self._pending = self._pending, Counter()

        async def send() -> None:
            async with self.client.pipeline(transaction=True) as pipe:
                for stat, amount in deltas.items():
                    if amount:
                        pipe.hincrby(self.keys.stats, stat, amount)
                pipe.expire(self.keys.stats, STATS_TTL)
                pipe.zadd(self.keys.proxies, {self.proxy_id: time.time()})
                pipe.zremrangebyscore(self.keys.proxies, 0, time.time() - ACTIVE_WINDOW)
                pipe.expire(self.keys.proxies, STATS_TTL)
                await pipe.execute()

        try:
            await self.health.call(send)
        except StoreUnavailable:
            self._pending.update(deltas)

    async def totals(self) -> dict[str, Any]:
        """The namespace's counts over every proxy; StoreUnavailable if Redis is away."""
        await self.flush()

        async def read() -> tuple[dict[bytes, bytes], int]:
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.hgetall(self.keys.stats)
                pipe.zcount(self.keys.proxies, time.time() - ACTIVE_WINDOW, "+inf")
                table, proxies = await pipe.execute()
            return table, int(proxies)

        table, proxies = await self.health.call(read)
        counts = {name: 0 for name in STAT_NAMES}
        counts.update({k.decode(): int(v) for k, v in table.items()})
        return {**counts, "proxies": proxies}

    async def aclose(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._flushing is not None:
            await asyncio.gather(self._flushing, return_exceptions=True)
        if self._pending:
            with contextlib.suppress(StoreUnavailable):
                await self.flush()
