"""Episodes encoded once into the bytes a replay sends.

The replay path does no JSON work: a recording is parsed and encoded when it enters
the index, and every later hit sends these bytes as they are.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from seedtape.cassette import Recording, recorded_epoch, served_headers
from seedtape.episode import binary_body, is_stream
from seedtape.sse import encode_event


@dataclass(frozen=True, slots=True)
class PreparedEpisode:
    """An episode encoded once, ready to send: no JSON work on the replay path."""

    number: int
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes | None
    events: tuple[tuple[int, bytes], ...] | None
    recorded_epoch: float = 0.0  # for --max-age; 0 when the episode has no recorded_at
    # ``headers`` as the bytes a server sends (lower-case names): encoded here, once.
    raw_headers: tuple[tuple[bytes, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class Prepared:
    """A cassette file's episodes as a replay sends them.

    The parsed recording is not kept: for a long stream it is a million small objects
    whose memory and whose freeing (~100 ms the interpreter cannot interrupt) buy
    nothing a replay needs. Verify reads the recorded episodes from the file.
    """

    key: str
    episodes: tuple[PreparedEpisode, ...]


def encode_json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# Statuses HTTP sends without a body: one sent anyway breaks the client's connection.
NO_BODY_STATUSES = frozenset({204, 304})


def prepare_episode(number: int, episode: dict[str, Any]) -> PreparedEpisode:
    headers = served_headers(episode.get("headers") or {})
    epoch = recorded_epoch(episode)
    if episode["status"] in NO_BODY_STATUSES:
        return PreparedEpisode(number, episode["status"], tuple(headers.items()), b"", None, epoch, _raw(headers))
    if is_stream(episode):
        headers.setdefault("content-type", "text/event-stream; charset=utf-8")
        events = tuple((int(e.get("ms", 0)), encode_event(e.get("data"), e.get("event"))) for e in episode["events"])
        return PreparedEpisode(number, episode["status"], tuple(headers.items()), None, events, epoch, _raw(headers))
    binary = binary_body(episode)
    if binary is not None:
        headers.setdefault("content-type", "application/octet-stream")
        body = binary
    elif "body_text" in episode:
        headers.setdefault("content-type", "text/plain; charset=utf-8")
        body = str(episode["body_text"]).encode("utf-8")
    else:
        headers.setdefault("content-type", "application/json")
        body = encode_json(episode.get("body"))
    return PreparedEpisode(number, episode["status"], tuple(headers.items()), body, None, epoch, _raw(headers))


def _raw(headers: dict[str, str]) -> tuple[tuple[bytes, bytes], ...]:
    return tuple((str(k).lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in headers.items())


def prepare(recording: Recording) -> Prepared:
    return Prepared(recording.key, tuple(prepare_episode(i + 1, e) for i, e in enumerate(recording.episodes)))
