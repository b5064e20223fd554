"""passthrough: call upstream, store nothing (seedtape is only a pipe)."""

from __future__ import annotations

from starlette.responses import Response

from ..engine import Engine
from ..exchange import Exchange


class Passthrough:
    name = "passthrough"

    async def handle(self, engine: Engine, exchange: Exchange) -> Response:
        return await engine.passthrough(exchange)
