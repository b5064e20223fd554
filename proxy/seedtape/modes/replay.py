"""replay: serve recordings only; never touch the network."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.responses import Response

from seedtape.errors import ProxyError

if TYPE_CHECKING:
    from seedtape.engine import Engine
    from seedtape.exchange import Exchange
    from seedtape.modes.base import RealtimeSession


class Replay:
    name = "replay"
    offline = True
    reads_recordings = True

    async def handle(self, engine: Engine, exchange: Exchange) -> Response:
        prepared = await engine.lookup(exchange)
        if prepared is None or not prepared.episodes:
            engine.coordinator.incr("misses")
            raise await engine.explain_miss(exchange)
        if exchange.occurrence > len(prepared.episodes) and engine.settings.replay_exhausted == "error":
            raise ProxyError(
                404,
                f"request {exchange.key[:16]} was recorded {len(prepared.episodes)} time(s) in cassette "
                f"{exchange.cassette!r}; this is occurrence {exchange.occurrence}",
                "seedtape_episodes_exhausted",
            )
        return await engine.serve_recorded(exchange, prepared)

    async def handle_realtime(self, session: RealtimeSession) -> None:
        await session.replay()
