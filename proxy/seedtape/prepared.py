"""Episodes encoded once into the bytes a replay sends.

The replay path does no JSON work: a recording is parsed and encoded when it enters
the index, and every later hit sends these bytes as they are.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from seedtape import bigjson
from seedtape.cassette import Recording, recorded_epoch, served_headers
from seedtape.episode import binary_body, is_stream
from seedtape.sse import encode_event


class Frames:
    """A stream's events as a replay sends them: every frame in one ``bytes``, with
    each frame's end offset and its ms since the first event in two arrays.

    Three objects whatever the length. A tuple of (ms, frame) pairs was two hundred
    thousand for a 100,000-event stream, each one for the garbage collector to walk
    (~80 ms the first time, holding the event loop), and a replay had to join them.
    """

    __slots__ = ("blob", "ends", "ms")

    def __init__(self, pairs: Iterator[tuple[int, bytes]] | list[tuple[int, bytes]]) -> None:
        ends, ms, frames = array("Q"), array("Q"), []
        size = 0
        for when, frame in pairs:
            size += len(frame)
            ends.append(size)
            ms.append(max(0, when))
            frames.append(frame)
        self.blob = b"".join(frames)
        self.ends, self.ms = ends, ms

    def __len__(self) -> int:
        return len(self.ends)

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        start = 0
        for end, when in zip(self.ends, self.ms, strict=True):
            yield when, self.blob[start:end]
            start = end

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Frames) and (self.blob, self.ends, self.ms) == (other.blob, other.ends, other.ms)

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class PreparedEpisode:
    """An episode encoded once, ready to send: no JSON work on the replay path."""

    number: int
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes | None
    events: Frames | None
    recorded_epoch: float = 0.0  # for --max-age; 0 when the episode has no recorded_at
    # ``headers`` as the bytes a server sends (lower-case names): encoded here, once.
    raw_headers: tuple[tuple[bytes, bytes], ...] = ()
    # The content-length a body answer is sent with (None for streams and 204/304).
    content_length: tuple[bytes, bytes] | None = None


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
        events = _encoded(episode["events"])
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
    length = (b"content-length", str(len(body)).encode("latin-1"))
    return PreparedEpisode(number, episode["status"], tuple(headers.items()), body, None, epoch, _raw(headers), length)


def _encoded(events: list[dict[str, Any]]) -> Frames:
    if len(events) <= bigjson.SLICE:
        return Frames([(int(e.get("ms", 0)), encode_event(e.get("data"), e.get("event"))) for e in events])
    return Frames(_encoded_slowly(events))


def _encoded_slowly(events: list[dict[str, Any]]) -> Iterator[tuple[int, bytes]]:
    """A long stream (read off the loop): encoded with a pause every slice (bigjson.breathe)."""
    for number, e in enumerate(events, 1):
        yield int(e.get("ms", 0)), encode_event(e.get("data"), e.get("event"))
        if number % bigjson.SLICE == 0:
            bigjson.breathe()


def _raw(headers: dict[str, str]) -> tuple[tuple[bytes, bytes], ...]:
    return tuple((str(k).lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in headers.items())


def prepare(recording: Recording) -> Prepared:
    return Prepared(recording.key, tuple(prepare_episode(i + 1, e) for i, e in enumerate(recording.episodes)))
