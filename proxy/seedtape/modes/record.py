"""record: always call upstream; the n-th identical request rewrites episode n."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.responses import Response

if TYPE_CHECKING:
    from seedtape.engine import Engine
    from seedtape.exchange import Exchange
    from seedtape.modes.base import RealtimeSession


class Record:
    name = "record"
    offline = False
    reads_recordings = True

    async def handle(self, engine: Engine, exchange: Exchange) -> Response:
        return await engine.record(exchange)

    async def handle_realtime(self, session: RealtimeSession) -> None:
        await session.record()
