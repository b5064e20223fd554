"""Episodes encoded once into the bytes a replay sends.

The replay path does no JSON work: a recording is parsed and encoded when it enters
the index, and every later hit sends these bytes as they are.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .cassette import Recording
from .episode import is_stream
from .sse import encode_event


@dataclass(frozen=True, slots=True)
class PreparedEpisode:
    """An episode encoded once, ready to send: no JSON work on the replay path."""

    number: int
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes | None
    events: tuple[tuple[int, bytes], ...] | None


@dataclass(frozen=True, slots=True)
class Prepared:
    recording: Recording
    episodes: tuple[PreparedEpisode, ...]


def encode_json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def prepare_episode(number: int, episode: dict[str, Any]) -> PreparedEpisode:
    headers = dict(episode.get("headers") or {})
    if is_stream(episode):
        headers.setdefault("content-type", "text/event-stream; charset=utf-8")
        events = tuple((int(e.get("ms", 0)), encode_event(e.get("data"), e.get("event"))) for e in episode["events"])
        return PreparedEpisode(number, episode["status"], tuple(headers.items()), None, events)
    headers.setdefault("content-type", "application/json")
    return PreparedEpisode(number, episode["status"], tuple(headers.items()), encode_json(episode.get("body")), None)


def prepare(recording: Recording) -> Prepared:
    return Prepared(recording, tuple(prepare_episode(i + 1, e) for i, e in enumerate(recording.episodes)))
