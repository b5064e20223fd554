"""Is the shared store usable? Degraded and recovered, each said once in the log.

Every Redis operation of a running proxy goes through :meth:`StoreHealth.call`, bounded
by the store timeout. A connection error or a timeout marks the store degraded: the
log says so once, and from then on operations are not even attempted (a request
never waits on a Redis that is known to be away) until a background probe, at most
one per ``probe_interval``, finds it answering again; then the log says so once, and
whoever registered ``on_recover`` (pending recordings to publish) is told.

Errors Redis answers with (out of memory under ``noeviction``, a wrong type) are not
an outage: they are counted, logged at most once a minute, and the caller falls back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger("seedtape")
T = TypeVar("T")
PROBE_INTERVAL = 1.0
_ERROR_LOG_INTERVAL = 60.0
OUTAGE_ERRORS = (RedisConnectionError, RedisTimeoutError, TimeoutError, OSError)


class StoreUnavailable(Exception):
    """The store could not be used for this operation; the caller falls back."""


class StoreHealth:
    def __init__(
        self,
        label: str,
        timeout: float,
        ping: Callable[[], Awaitable[object]],
        secret: str = "",
        consequence: str = "serving from local cassettes and recording locally until it is back",
    ) -> None:
        self.label = label  # the masked URL and namespace, for log lines
        self.timeout = timeout
        self._ping = ping
        self._secret = secret
        self.consequence = consequence
        self.degraded = False
        self.since = 0.0
        self.last_error = ""
        self.outages = 0
        self.errors = 0
        self._next_probe = 0.0
        self._probe: asyncio.Task[None] | None = None
        self._error_logged_at = -_ERROR_LOG_INTERVAL
        self.on_recover: Callable[[], None] | None = None

    async def call(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Run one Redis operation within the timeout, or raise StoreUnavailable at once."""
        if self.degraded:
            self.probe_soon()
            raise StoreUnavailable(self.last_error)
        try:
            async with asyncio.timeout(self.timeout):
                return await operation()
        except OUTAGE_ERRORS as exc:
            self.fail(exc)
            raise StoreUnavailable(self.last_error) from exc
        except RedisError as exc:
            self.errors += 1
            text = self.last_error = self._describe(exc)
            now = time.monotonic()
            if now - self._error_logged_at >= _ERROR_LOG_INTERVAL:
                self._error_logged_at = now
                log.warning("seedtape: shared store %s answered an error (%s); falling back to local cassettes", self.label, text)
            raise StoreUnavailable(text) from exc

    def fail(self, exc: BaseException) -> None:
        self.last_error = self._describe(exc)
        if self.degraded:
            return
        self.degraded = True
        self.outages += 1
        self.since = time.time()
        self._next_probe = time.monotonic() + PROBE_INTERVAL
        log.warning("seedtape: shared store %s is unreachable (%s); %s", self.label, self.last_error, self.consequence)

    def probe_soon(self) -> None:
        """Start one background probe if none is running and its time has come."""
        if self._probe is not None or time.monotonic() < self._next_probe:
            return
        try:
            self._probe = asyncio.get_running_loop().create_task(self._run_probe())
        except RuntimeError:  # no loop (a sync caller): the next async operation probes
            return

    async def _run_probe(self) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                await self._ping()
        except (*OUTAGE_ERRORS, RedisError) as exc:
            self.last_error = self._describe(exc)
            self._next_probe = time.monotonic() + PROBE_INTERVAL
            return
        finally:
            self._probe = None
        self.degraded = False
        log.warning("seedtape: shared store %s is back after %.1f s; sharing again", self.label, time.time() - self.since)
        if self.on_recover is not None:
            self.on_recover()

    async def wait_probe(self) -> None:
        """For shutdown: let a running probe finish rather than leave it pending."""
        if self._probe is not None:
            self._probe.cancel()
            await asyncio.gather(self._probe, return_exceptions=True)

    def _describe(self, exc: BaseException) -> str:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if self._secret:
            text = text.replace(self._secret, "***")
        return text[:300]
