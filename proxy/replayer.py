"""Turning a prepared episode into the response a client receives."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping

from starlette.responses import Response, StreamingResponse

from .prepared import PreparedEpisode


def seedtape_headers(mode: str, cache: str, key: str = "", episode: int | None = None) -> dict[str, str]:
    headers = {"x-seedtape-mode": mode, "x-seedtape-cache": cache}
    if key:
        headers["x-seedtape-key"] = key
    if episode is not None:
        headers["x-seedtape-episode"] = str(episode)
    return headers


def episode_response(episode: PreparedEpisode, headers: Mapping[str, str], pace: str = "fast") -> Response:
    merged = {**dict(episode.headers), **headers}
    if episode.events is None:
        return Response(episode.body, status_code=episode.status, headers=merged)
    return StreamingResponse(_events(episode.events, pace == "recorded"), status_code=episode.status, headers=merged)


async def _events(events: tuple[tuple[int, bytes], ...], paced: bool) -> AsyncIterator[bytes]:
    if not paced:
        # One write: the client's SSE parser sees the same events and framing, and a
        # replay is as fast as the transport allows.
        yield b"".join(frame for _, frame in events)
        return
    loop = asyncio.get_running_loop()
    start = loop.time()
    for ms, frame in events:
        delay = start + ms / 1000 - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        yield frame
