"""The one interface every mode implements (after Hoverfly's ``core/modes``).

A mode is a decision about one request: serve a recording, go upstream, record, or
compare. Adding a mode is one new file and one line in ``modes/__init__.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from starlette.responses import Response

if TYPE_CHECKING:
    from ..engine import Engine
    from ..exchange import Exchange


class Mode(Protocol):
    name: str

    async def handle(self, engine: Engine, exchange: Exchange) -> Response: ...
