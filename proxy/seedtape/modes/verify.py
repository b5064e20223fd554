"""verify: call upstream again, compare with the recording, say how far it drifted.

The answer is the live one (or the recording, with ``--verify-serve recorded``, so a
suite stays stable while still measuring). Every verified request adds one line to
the drift log. A request that did not ask for determinism (its family's rule) is
compared too, but a different answer is ``variety``, not drift. ``--update``
re-records the episodes that drifted (and records unrecorded ones), and only those.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.responses import Response

from seedtape.drift.compare import compare
from seedtape.prepared import prepare_episode
from seedtape.recorder import capture
from seedtape.replayer import episode_response, seedtape_headers

if TYPE_CHECKING:
    from seedtape.engine import Engine
    from seedtape.exchange import Exchange
    from seedtape.modes.base import RealtimeSession


class Verify:
    name = "verify"
    offline = False
    reads_recordings = False

    async def handle(self, engine: Engine, exchange: Exchange) -> Response:
        prepared = await engine.lookup(exchange)
        episodes = await engine.recorded_episodes(exchange.cassette, exchange.key) if prepared is not None else []
        number = min(exchange.occurrence, len(episodes))
        recorded = episodes[number - 1] if episodes else None
        engine.coordinator.incr("upstream_calls")
        live, _ = await capture(engine.upstream, exchange, engine.keep_headers, engine.limits)
        if not 200 <= live["status"] < 300:
            # An upstream error is not a drift measurement: pass it on as it came.
            return episode_response(prepare_episode(0, live), seedtape_headers(exchange.mode, "miss", exchange.key))

        # The recording was redacted when written: compare like with like, so redacted
        # fields are not drift and what the drift log quotes is redacted too.
        compared = engine.redactor.episode(live) if engine.redactor else live
        result = compare(recorded, compared, engine.settings.ignore_paths, exchange.family, exchange.deterministic)
        await engine.log_drift(exchange, result, number or None)
        cache = "verified"
        if engine.settings.update and (result.drifted or result.unrecorded):
            saved = await engine.save(exchange, live)
            cache = "recorded" if saved is not None else "unsaved"
            number = saved or 0
        headers = seedtape_headers(exchange.mode, cache, exchange.key, number or None)
        headers["x-seedtape-drift"] = result.header
        if engine.settings.verify_serve == "recorded" and prepared is not None and recorded is not None and cache == "verified":
            return episode_response(prepared.episodes[number - 1], headers, engine.settings.pace)
        return episode_response(prepare_episode(number, live), headers)

    async def handle_realtime(self, session: RealtimeSession) -> None:
        await session.verify()
