"""auto (the default): serve what is recorded, record what is not.

Past the last episode, a request meant to be deterministic (seed, or temperature 0)
is served the last episode -- the cache. Any other request asked for variety, so it
goes upstream and becomes the next episode.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.responses import Response

if TYPE_CHECKING:
    from seedtape.engine import Engine
    from seedtape.exchange import Exchange


class Auto:
    name = "auto"
    offline = False
    reads_recordings = True

    async def handle(self, engine: Engine, exchange: Exchange) -> Response:
        prepared = await engine.load(exchange)
        episodes = prepared.episodes if prepared is not None else ()
        if prepared is not None and episodes and (exchange.occurrence <= len(episodes) or engine.wants_cache(exchange)):
            return await engine.serve_recorded(exchange, prepared)
        engine.coordinator.incr("misses")
        if engine.wants_cache(exchange):
            return await engine.record_once(exchange)
        return await engine.record(exchange)
