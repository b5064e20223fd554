"""record: always call upstream; the n-th identical request rewrites episode n."""

from __future__ import annotations

from starlette.responses import Response

from ..engine import Engine
from ..exchange import Exchange


class Record:
    name = "record"

    async def handle(self, engine: Engine, exchange: Exchange) -> Response:
        return await engine.record(exchange)
