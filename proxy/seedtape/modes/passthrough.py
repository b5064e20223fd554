"""passthrough: call upstream, store nothing (seedtape is only a pipe)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.responses import Response

if TYPE_CHECKING:
    from seedtape.engine import Engine
    from seedtape.exchange import Exchange
    from seedtape.modes.base import RealtimeSession


class Passthrough:
    name = "passthrough"
    offline = False
    reads_recordings = False

    async def handle(self, engine: Engine, exchange: Exchange) -> Response:
        return await engine.passthrough(exchange)

    async def handle_realtime(self, session: RealtimeSession) -> None:
        await session.passthrough()
