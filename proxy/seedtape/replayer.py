"""Turning a prepared episode into the response a client receives."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping

from starlette.responses import Response, StreamingResponse

from seedtape.prepared import Frames, PreparedEpisode


def seedtape_headers(mode: str, cache: str, key: str = "", episode: int | None = None) -> dict[str, str]:
    headers = {"x-seedtape-mode": mode, "x-seedtape-cache": cache}
    if key:
        headers["x-seedtape-key"] = key
    if episode is not None:
        headers["x-seedtape-episode"] = str(episode)
    return headers


def episode_response(episode: PreparedEpisode, headers: Mapping[str, str], pace: str = "fast") -> Response:
    if episode.events is None and episode.body is not None:
        return _EncodedResponse(episode, headers)
    merged = {**dict(episode.headers), **headers}
    if episode.events is None:
        return Response(episode.body, status_code=episode.status, headers=merged)
    return StreamingResponse(_events(episode.events, pace == "recorded"), status_code=episode.status, headers=merged)


class _EncodedResponse(Response):
    """``Response(body, headers={**episode.headers, **headers})`` without re-encoding the
    episode's headers on every replay (Starlette's init_headers was ~8% of a replay)."""

    def __init__(self, episode: PreparedEpisode, headers: Mapping[str, str]) -> None:
        self.status_code = episode.status
        self.background = None
        self.body = episode.body or b""
        ours = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        names = {k for k, _ in ours}
        raw = [h for h in episode.raw_headers if h[0] not in names] + ours
        if episode.content_length is not None and b"content-length" not in names:
            raw.append(episode.content_length)  # stored headers never hold one (served_headers)
        self.raw_headers = raw


# A replay's bytes go out in writes of at most this much: a 25 MB stream sent in one
# write held the event loop ~30 ms copying it (tests/faults/test_event_loop.py).
WRITE_STEP = 1024 * 1024


async def _events(events: Frames, paced: bool) -> AsyncIterator[bytes]:
    if not paced:
        # As few writes as possible: the client's SSE parser sees the same events and
        # framing, and a replay is as fast as the transport allows.
        blob = events.blob
        if len(blob) <= WRITE_STEP:
            yield blob
            return
        view = memoryview(blob)
        for offset in range(0, len(blob), WRITE_STEP):
            yield bytes(view[offset : offset + WRITE_STEP])
        return
    loop = asyncio.get_running_loop()
    start = loop.time()
    for ms, frame in events:
        delay = start + ms / 1000 - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        yield frame
