"""The parts one running proxy shares: settings, store, coordinator, upstream.

Modes are written against this object; it offers the few operations they combine
(look up, serve, forward and record) so each mode file stays a short decision.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import AsyncIterable, AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import httpx
from starlette.responses import Response, StreamingResponse

from seedtape import bigjson
from seedtape.cassette import CassetteError, dismantle
from seedtape.config import Settings
from seedtape.coordination import AsyncLockContext, Coordinator, coordinator_for
from seedtape.coordination.filelocks import CassetteLocks
from seedtape.drift import log as drift_log
from seedtape.drift.compare import DriftResult
from seedtape.errors import ProxyError
from seedtape.exchange import Exchange
from seedtape.miss import MissIndex
from seedtape.prepared import Prepared, PreparedEpisode
from seedtape.recorder import OFF_LOOP_BYTES, UNSAVED, Build, Limits, forward
from seedtape.redaction import Redactor
from seedtape.replayer import episode_response, seedtape_headers
from seedtape.store import READ_INLINE_MAX, CassetteStore, Deferred
from seedtape.upstream import Upstream

if TYPE_CHECKING:
    from seedtape.teams.team import Team

log = logging.getLogger("seedtape")
MAX_BYPASSED_PATHS = 256  # paths named in stats (ids in paths must not grow it without bound)
APPEND = sys.maxsize  # an occurrence past any end: CassetteStore.save_episode appends it


class Recordable(Protocol):
    """What a save needs to know of what it records: an HTTP ``Exchange``, or a
    Realtime session (realtime/session.py), so both take the one write path below."""

    session: str
    cassette: str
    key: str
    occurrence: int

    def stored_request(self) -> dict[str, Any]: ...


class Engine:
    def __init__(
        self,
        settings: Settings,
        upstream_transport: httpx.AsyncBaseTransport | None = None,
        coordinator: Coordinator | None = None,
    ) -> None:
        self.settings = settings
        self.store = CassetteStore(
            settings.cassettes_dir, settings.cache_dir, fsync=settings.fsync, max_file_bytes=settings.max_cassette_size
        )
        self.coordinator: Coordinator = coordinator or coordinator_for(settings)
        self.upstream = Upstream(settings.upstream, settings.upstream_timeout, upstream_transport)
        self.limits = Limits(settings.upstream_timeout, settings.stream_idle_timeout, settings.max_response, settings.max_stream_events)
        # Key locks every process on this cassettes folder agrees on (filelocks.py), in
        # front of which the coordinator's in-process lock keeps one poller per key.
        self.file_locks = CassetteLocks(settings.cassettes_dir)
        # Episodes recorded since this moment were written during this run, by this
        # process or another one on the same folder, and acknowledged to a client:
        # they are never overwritten (Recording.set_episode). The in-process proxy
        # sets it to its own start, shared by its apps.
        self.run_started = time.time()
        self.misses = MissIndex(self.store, settings.ignore_fields)
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

    async def load(self, exchange: Exchange) -> Prepared | None:
        """The recording, or None; a file that cannot be used is an error naming it.

        Any failure counts (broken JSON, a hand edit that left an episode without its
        body or with a status HTTP cannot send, a FIFO, a file over the size limit or a
        symlink out of the cassettes folder): the request gets a 500 that says which
        file to fix, marked not worth retrying, and every other key keeps being served.
        A big file is read in a worker thread, in pieces, so the event loop keeps
        serving everyone else meanwhile.
        """
        try:
            found = self.store.load(exchange.cassette, exchange.key, inline_max=READ_INLINE_MAX)
            if isinstance(found, Deferred):
                found = await anyio.to_thread.run_sync(self._load_big, exchange.cassette, exchange.key)
            assert not isinstance(found, Deferred)
            return found
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
        prepared = await self.load(exchange)
        if self.team is not None:
            prepared = await self.team.lookup(
                exchange, prepared, self.wants_cache(exchange), lambda: self.store.read(exchange.cassette, exchange.key)
            )
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

    def _load_big(self, cassette: str, key: str) -> Prepared | Deferred | None:
        with bigjson.quiet_gc():  # the parsed file is emptied in slices before the block ends
            return self.store.load(cassette, key)

    async def recorded_episodes(self, cassette: str, key: str) -> list[dict[str, Any]]:
        """The episodes of a key's recording as stored (verify compares them)."""
        try:
            recording = await anyio.to_thread.run_sync(self.store.read, cassette, key)
        except Exception:
            return []  # load() already refused a file that cannot be used
        if self.team is not None:  # Teams: the team's episodes complete the local file
            recording = await self.team.recorded(cassette, key, recording)
        return recording.episodes if recording is not None else []

    async def explain_miss(self, exchange: Exchange) -> ProxyError:
        """The replay-miss error: the closest recording and what differs (miss.py),
        worked out in a worker thread with a time bound, one miss at a time."""
        return await self.misses.explain(exchange)

    @asynccontextmanager
    async def key_lock(self, cassette: str, key: str) -> AsyncIterator[None]:
        """The key's lock in this process (the coordinator) and across processes (a file lock)."""
        async with self.coordinator.key_lock(cassette, key), self.file_locks.hold(cassette, key):
            yield

    async def record(self, exchange: Exchange) -> Response:
        """Forward upstream and save the answer as the exchange's occurrence."""
        headers = seedtape_headers(exchange.mode, "recorded", exchange.key, exchange.occurrence)
        if exchange.stream and not self.store.writable(exchange.cassette):
            headers = seedtape_headers(exchange.mode, UNSAVED, exchange.key)  # known before a stream's headers go out
        self.coordinator.incr("upstream_calls")
        saved = False

        async def save(episode: dict[str, Any] | Build, size: int) -> int | None:
            nonlocal saved
            number = await self.save(exchange, episode, size)
            saved = number is not None
            return number

        response = await forward(self.upstream, exchange, headers, save, self.settings.record_errors, self.keep_headers, self.limits)
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
        return await forward(self.upstream, exchange, headers, limits=self.limits)

    async def save(self, exchange: Recordable, episode: dict[str, Any] | Build, size: int = 0) -> int | None:
        """Write the answer as the exchange's occurrence; its episode number, or None
        when the disk refused it (the answer was paid for, so its client still gets
        it, marked ``x-seedtape-cache: unsaved``, and the log names the file and why).

        ``episode`` may be a function building it (a long stream's, built off the
        loop); ``size`` is the answer's size in bytes. A big answer is built, redacted
        and written in a worker thread, in pieces (bigjson.py), and so is every
        answer under ``--fsync always`` (it waits for the disk).
        """
        session, cassette, key = exchange.session, exchange.cassette, exchange.key
        heavy = size >= OFF_LOOP_BYTES or self._file_size(cassette, key) >= READ_INLINE_MAX
        async with self.key_lock(cassette, "write:" + key):
            # Episode n is rewritten only if this session has not written it already
            # (see Coordinator.claim_episode); otherwise the answer is appended.
            target = exchange.occurrence if await self.claim_episode(session, cassette, key, exchange.occurrence) else APPEND
            if self.team is not None:  # the fleet's episodes first, so this one lands after them
                await self.team.before_save(self.store.path_for(cassette, key), cassette, key)
            try:
                if heavy or self.store.fsyncs_on_save:
                    number = await anyio.to_thread.run_sync(self._write, exchange, target, episode, heavy)
                else:  # CPU and a file creation, cheaper here than a thread hop (durability.py)
                    number = self._write(exchange, target, episode, heavy)
            except (OSError, CassetteError) as exc:
                self.coordinator.incr("unsaved")
                reason = f"{exc.strerror or type(exc).__name__}" if isinstance(exc, OSError) else str(exc)
                log.error(
                    "seedtape: could not save the answer to %s: %s; the client got it marked x-seedtape-cache: unsaved",
                    self.store.path_for(cassette, key),
                    reason,
                )
                return None
            if number != target:
                await self.claim_episode(session, cassette, key, number)
            if self.team is not None:  # write-through, before the key's lock is let go
                await self.team.after_save(self.store.path_for(cassette, key), cassette, key)
        self.coordinator.incr("recorded")
        self.used.add((exchange.cassette, exchange.key))
        return number

    def _file_size(self, cassette: str, key: str) -> int:
        """The size of the key's cassette file so far (0 when there is none)."""
        try:
            return os.stat(self.store.path_for(cassette, key)).st_size
        except OSError:
            return 0

    def _write(self, exchange: Recordable, target: int, episode: dict[str, Any] | Build, heavy: bool) -> int:
        if not heavy:
            return self._write_now(exchange, target, episode, heavy)
        with bigjson.quiet_gc():  # the big episode is emptied in slices before the block ends
            return self._write_now(exchange, target, episode, heavy)

    def _write_now(self, exchange: Recordable, target: int, episode: dict[str, Any] | Build, heavy: bool) -> int:
        built = episode() if callable(episode) else episode
        request = exchange.stored_request()
        stored = built
        if self.redactor:  # after the key was made from the request as sent: matching is unaffected
            request, stored = self.redactor.request(request), self.redactor.episode(built)
        number = self.store.save_episode(exchange.cassette, exchange.key, request, target, stored, self.run_started)
        if heavy:
            # Empty what was made here (a built episode, a redacted copy) in slices, not in
            # one go wherever it is dropped; an episode the caller passed in is still its
            # to use (verify answers with it).
            if stored is not built:
                dismantle(stored)
            if callable(episode):
                dismantle(built)
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
        await self.note_drift(result, context)

    async def note_drift(self, result: DriftResult, context: dict[str, Any]) -> None:
        """The drift log's line (local file, and the team's log) and the counters, for
        an HTTP request (``log_drift``) or a Realtime session (realtime/verify.py)."""
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
        held = _HeldLock(self.key_lock(exchange.cassette, exchange.key))
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
