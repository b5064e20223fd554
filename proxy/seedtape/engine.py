"""The parts one running proxy shares: settings, store, coordinator, upstream.

Modes are written against this object; it offers the few operations they combine
(look up, serve, forward and record) so each mode file stays a short decision.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections import Counter
from collections.abc import AsyncIterable, AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import httpx
from starlette.responses import Response, StreamingResponse

from seedtape.cassette import CassetteError
from seedtape.config import Settings
from seedtape.coordination import AsyncLockContext, Coordinator, coordinator_for
from seedtape.drift import log as drift_log
from seedtape.drift.compare import DriftResult
from seedtape.errors import ProxyError
from seedtape.exchange import Exchange
from seedtape.prepared import Prepared, PreparedEpisode
from seedtape.recorder import forward
from seedtape.redaction import Redactor
from seedtape.replayer import episode_response, seedtape_headers
from seedtape.store import CassetteStore
from seedtape.upstream import Upstream

if TYPE_CHECKING:
    from seedtape.teams.team import Team

log = logging.getLogger("seedtape")
MAX_BYPASSED_PATHS = 256  # paths named in stats (ids in paths must not grow it without bound)
APPEND = sys.maxsize  # an occurrence past any end: CassetteStore.save_episode appends it


class Engine:
    def __init__(
        self,
        settings: Settings,
        upstream_transport: httpx.AsyncBaseTransport | None = None,
        coordinator: Coordinator | None = None,
    ) -> None:
        self.settings = settings
        self.store = CassetteStore(settings.cassettes_dir, settings.cache_dir, fsync=settings.fsync)
        self.coordinator: Coordinator = coordinator or coordinator_for(settings)
        self.upstream = Upstream(settings.upstream, settings.upstream_timeout, upstream_transport)
        self.keep_headers = frozenset(h.lower() for h in settings.keep_headers)
        # (cassette, key) of every recording this engine served or wrote: what the
        # pytest plugin's unused-recordings report subtracts from the cassette folder.
        # A set add per request, nothing more on the hot path.
        self.used: set[tuple[str, str]] = set()
        self.redactor = Redactor.from_lists(settings.redact_patterns, settings.redact_paths)
        # Requests on paths no family owns, by "METHOD path": forwarded untouched, never
        # recorded, so they are counted and named once in the log rather than hidden.
        self.bypassed: Counter[str] = Counter()
        # Teams (--store): a shared store beside the cassettes, and fleet-wide coordination
        # wrapping the local coordinator. None without a store: no hook below does anything.
        self.team: Team | None = None
        if settings.store and coordinator is None:
            from seedtape.teams.team import Team

            self.team = Team(settings, self.coordinator)
            self.coordinator = self.team.coordinator

    async def start(self) -> None:
        if self.team is not None:
            await self.team.start()

    async def aclose(self) -> None:
        if self.team is not None:
            await self.team.aclose()
        await self.upstream.aclose()
        self.store.close()
        close = getattr(self.coordinator, "close", None)  # only coordinators holding resources have one
        if close is not None:
            close()

    def load(self, exchange: Exchange) -> Prepared | None:
        """The recording, or None; a file that cannot be used is an error naming it.

        Any failure counts (broken JSON, a hand edit that left an episode without its
        body, unreadable bytes): the request gets a 500 that says which file to fix,
        marked not worth retrying, and every other key keeps being served.
        """
        try:
            return self.store.load(exchange.cassette, exchange.key)
        except Exception as exc:
            if isinstance(exc, CassetteError):
                detail = str(exc)
            else:
                detail = f"{self.store.path_for(exchange.cassette, exchange.key)}: {type(exc).__name__}: {exc}"
            log.error("seedtape: cassette file cannot be used: %s", detail)
            raise ProxyError(
                500,
                f"cassette file cannot be used: {detail}. Fix or delete the file; other recordings are not affected",
                "seedtape_cassette_error",
                "cassette_unreadable",
                headers={"x-should-retry": "false"},
            ) from exc

    async def lookup(self, exchange: Exchange) -> Prepared | None:
        """``load``, then (Teams hook) the shared store when the local file cannot answer."""
        prepared = self.load(exchange)
        if self.team is not None:
            prepared = await self.team.lookup(exchange, prepared, self.wants_cache(exchange))
        return prepared

    async def next_occurrence(self, exchange: Exchange) -> int:
        if self.team is not None:  # a shared session is numbered fleet-wide
            return await self.team.next_occurrence(exchange)
        return self.coordinator.next_occurrence(exchange.session, exchange.cassette, exchange.key)

    async def claim_episode(self, session: str, cassette: str, key: str, episode: int) -> bool:
        if self.team is not None:
            return await self.team.claim(session, cassette, key, episode)
        return self.coordinator.claim_episode(session, cassette, key, episode)

    def note_bypass(self, method: str, path: str) -> None:
        """Count a request forwarded untouched; the first one on a path is logged."""
        self.coordinator.incr("bypassed")
        name = f"{method} {path[:200]}"
        if name not in self.bypassed and len(self.bypassed) < MAX_BYPASSED_PATHS:
            log.warning("seedtape: %s is not recorded: forwarded untouched", name)
        if name in self.bypassed or len(self.bypassed) < MAX_BYPASSED_PATHS:
            self.bypassed[name] += 1

    def give_back(self, exchange: Exchange) -> None:
        """The request failed before anything was recorded or served: its occurrence
        number goes back, so the client's retry gets the same episode number."""
        if exchange.occurrence:
            self.coordinator.release_occurrence(exchange.session, exchange.cassette, exchange.key, exchange.occurrence)

    def wants_cache(self, exchange: Exchange) -> bool:
        """Should an identical request past the last episode get the last one again?"""
        repeats = self.settings.repeats
        return repeats == "cache" or (repeats == "auto" and exchange.deterministic)

    def serve(self, exchange: Exchange, episode: PreparedEpisode, cache: str = "hit") -> Response:
        self.coordinator.incr("hits")
        self.used.add((exchange.cassette, exchange.key))
        headers = seedtape_headers(exchange.mode, cache, exchange.key, episode.number)
        return episode_response(episode, headers, self.settings.pace)

    async def serve_recorded(self, exchange: Exchange, prepared: Prepared) -> Response:
        """Serve the occurrence's episode, unless ``--max-age`` says it is too old."""
        episode = pick(prepared, exchange.occurrence)
        max_age = self.settings.max_age_days
        if max_age is None or not episode.recorded_epoch:
            return self.serve(exchange, episode)
        age_days = (time.time() - episode.recorded_epoch) / 86400
        if age_days <= max_age:
            return self.serve(exchange, episode)
        policy = self.settings.on_expired
        if policy == "warn":
            log.warning(
                "seedtape: episode %d of %s in %s is %.1f days old (max %s)",
                episode.number,
                exchange.key[:16],
                exchange.cassette,
                age_days,
                max_age,
            )
            response = self.serve(exchange, episode)
            response.headers["x-seedtape-expired"] = f"{age_days:.1f}"
            return response
        if policy == "rerecord" and not exchange.offline:
            exchange.occurrence = episode.number
            return await self.record(exchange)
        raise ProxyError(
            410,
            f"recording {exchange.key[:16]} episode {episode.number} in cassette {exchange.cassette!r} is {age_days:.1f} days old, "
            f"over --max-age {max_age}" + ("; re-record it with --mode auto or record" if policy == "rerecord" else ""),
            "seedtape_recording_expired",
            "recording_expired",
        )

    async def record(self, exchange: Exchange) -> Response:
        """Forward upstream and save the answer as the exchange's occurrence."""
        headers = seedtape_headers(exchange.mode, "recorded", exchange.key, exchange.occurrence)
        self.coordinator.incr("upstream_calls")
        saved = False

        async def save(episode: dict[str, Any]) -> int:
            nonlocal saved
            number = await self.save(exchange, episode)
            saved = True
            return number

        response = await forward(self.upstream, exchange, headers, save, self.settings.record_errors, self.keep_headers)
        if isinstance(response, StreamingResponse):
            response.body_iterator = self._give_back_unless_saved(exchange, response.body_iterator, lambda: saved)
        return response

    async def _give_back_unless_saved(
        self, exchange: Exchange, iterator: AsyncIterable[Any], saved: Callable[[], bool]
    ) -> AsyncIterator[Any]:
        """A stream that broke (or whose client left) before it was saved gives its occurrence back."""
        try:
            async for chunk in iterator:
                yield chunk
        finally:
            if not saved():
                self.give_back(exchange)

    async def passthrough(self, exchange: Exchange, cache: str = "bypass") -> Response:
        headers = seedtape_headers(exchange.mode, cache, exchange.key)
        self.coordinator.incr("upstream_calls")
        return await forward(self.upstream, exchange, headers)

    async def save(self, exchange: Exchange, episode: dict[str, Any]) -> int:
        request = exchange.stored_request()
        if self.redactor:  # after the key was made from the request as sent: matching is unaffected
            request, episode = self.redactor.request(request), self.redactor.episode(episode)
        session, cassette, key = exchange.session, exchange.cassette, exchange.key
        async with self.coordinator.key_lock(cassette, "write:" + key):
            # Episode n is rewritten only if this session has not written it already
            # (see Coordinator.claim_episode); otherwise the answer is appended.
            target = exchange.occurrence if await self.claim_episode(session, cassette, key, exchange.occurrence) else APPEND
            if self.team is not None:  # the fleet's episodes first, so this one lands after them
                await self.team.before_save(self.store.path_for(cassette, key), cassette, key)
            if self.store.fsyncs_on_save:  # waits for the disk: off the event loop
                number = await anyio.to_thread.run_sync(self.store.save_episode, cassette, key, request, target, episode)
            else:  # CPU and a file creation, cheaper here than a thread hop (durability.py)
                number = self.store.save_episode(cassette, key, request, target, episode)
            if number != target:
                await self.claim_episode(session, cassette, key, number)
            if self.team is not None:  # write-through, before the key's lock is let go
                await self.team.after_save(self.store.path_for(cassette, key), cassette, key)
        self.coordinator.incr("recorded")
        self.used.add((exchange.cassette, exchange.key))
        return number

    @property
    def drift_log(self) -> Path:
        return self.settings.cache_dir / "drift.jsonl"

    async def log_drift(self, exchange: Exchange, result: DriftResult, episode: int | None) -> None:
        """One drift-log line per verified request (no headers: no credential can get in)."""
        body = exchange.body
        determinism = exchange.determinism
        request = {
            **exchange.target.as_dict(),
            "model": body.get("model"),
            "seed": body.get("seed"),
            "temperature": body.get("temperature"),
            "deterministic": determinism.deterministic,
            "determinism": determinism.reason,
            "stream": exchange.stream,
        }
        context = {"cassette": exchange.cassette, "key": exchange.key, "episode": episode, "mode": exchange.mode, "request": request}
        entry = result.to_log_entry(context)
        await anyio.to_thread.run_sync(drift_log.append, self.drift_log, entry)
        if self.team is not None:
            await self.team.log_drift(entry)
        self.coordinator.incr("verified")
        if result.drifted:  # meant to repeat and did not; variety and unrecorded have their own counts
            self.coordinator.incr("drifted")
        elif result.unrecorded:
            self.coordinator.incr("unrecorded")
        elif "variety" in result.flags:
            self.coordinator.incr("variety")

    async def record_once(self, exchange: Exchange) -> Response:
        """Single-flight: N identical cacheable requests in flight cost one upstream call.

        The first holds the key's lock until its answer is saved (for a stream: until
        the stream ends, while it is passed on live); the others wait, then find the
        recording and are served from it.
        """
        held = _HeldLock(self.coordinator.key_lock(exchange.cassette, exchange.key))
        await held.acquire()
        try:
            prepared = await self.lookup(exchange)
            if prepared is not None and prepared.episodes:
                return await self.serve_recorded(exchange, prepared)
            response = await self.record(exchange)
        except BaseException:
            await held.release()
            raise
        if isinstance(response, StreamingResponse):
            response.body_iterator = held.release_after(response.body_iterator, self.settings.upstream_timeout)
        else:
            await held.release()
        return response


def pick(prepared: Prepared, occurrence: int) -> PreparedEpisode:
    """Episode n for the n-th occurrence; past the end, the last one."""
    episodes = prepared.episodes
    return episodes[min(occurrence, len(episodes)) - 1]


class _HeldLock:
    """A key lock whose release may happen in the task that streams the answer."""

    def __init__(self, context: AsyncLockContext) -> None:
        self._context = context
        self._released = False

    async def acquire(self) -> None:
        await self._context.__aenter__()

    async def release(self) -> None:
        if not self._released:
            self._released = True
            await self._context.__aexit__(None, None, None)

    async def release_after(self, iterator: AsyncIterable[Any], limit: float) -> AsyncIterator[Any]:
        # If the server drops the response before iterating it, nothing below runs:
        # the timer makes sure waiting requests are not blocked for ever.
        timer = asyncio.get_running_loop().call_later(limit + 5, lambda: asyncio.ensure_future(self.release()))
        try:
            async for chunk in iterator:
                yield chunk
        finally:
            timer.cancel()
            await self.release()
