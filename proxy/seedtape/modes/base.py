"""The one interface every mode implements (after Hoverfly's ``core/modes``).

A mode is a decision about one request: serve a recording, go upstream, record, or
compare. Adding a mode is one new file and one line in ``modes/__init__.py``; what
other parts need to know about a mode (may it call upstream? does it read
recordings?) is said here, by the mode, never by comparing its name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from starlette.responses import Response

if TYPE_CHECKING:
    from seedtape.engine import Engine
    from seedtape.exchange import Exchange


class RealtimeSession(Protocol):
    """The operations a Realtime WebSocket session offers its mode (``realtime/session.py``),
    the way the engine offers them for HTTP."""

    async def replay(self) -> None: ...
    async def record(self) -> None: ...
    async def auto(self) -> None: ...
    async def verify(self) -> None: ...
    async def passthrough(self) -> None: ...


class Mode(Protocol):
    name: str
    # Never calls upstream: unrecorded routes are refused rather than forwarded, and
    # an expired recording cannot be re-recorded.
    offline: bool
    # Serves recordings, so a recording its tests did not use is unused (pytest plugin).
    reads_recordings: bool

    async def handle(self, engine: Engine, exchange: Exchange) -> Response: ...

    async def handle_realtime(self, session: RealtimeSession) -> None:
        """The same decision for a Realtime WebSocket session (``realtime/session.py``)."""
        ...
