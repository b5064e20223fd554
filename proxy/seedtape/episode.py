"""One recorded response (an episode), and the one answer a stream adds up to.

An episode is stored as plain JSON (docs/design.md, "Cassettes"): its status, the
allow-listed headers, and one of

* ``body``: a JSON answer;
* ``body_text``: a text answer (a transcription as ``text``, ``srt`` or ``vtt``);
* ``body_base64`` with ``body_sha256`` and ``body_size``: a binary answer (speech),
  so a replay sends the same bytes and a review sees the hash change, not base64;
* ``events``: a stream, each event's data (and SSE event name) with its offset in ms.

Everything that compares or shows a response (verify, ``show``, ``ls``, import checks)
reads it through :func:`response_json`, which asks the request's family to assemble a
stream, so that streamed and non-streamed answers look the same.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import Any

from seedtape.cassette import utc_now
from seedtape.families import CHAT, Family
from seedtape.headers import stored_response_headers
from seedtape.sse import DONE

__all__ = ["DONE", "binary_body", "is_stream", "make_episode", "response_json"]


def make_episode(
    status: int,
    headers: Mapping[str, str],
    *,
    body: Any = None,
    text: str | None = None,
    binary: bytes | None = None,
    events: list[dict[str, Any]] | None = None,
    latency_ms: int = 0,
    keep_headers: frozenset[str] = frozenset(),
    family: Family = CHAT,
) -> dict[str, Any]:
    episode: dict[str, Any] = {
        "recorded_at": utc_now(),
        "status": status,
        "headers": stored_response_headers(headers, keep_headers),
        "latency_ms": latency_ms,
    }
    if events is not None:
        episode["events"] = events
    elif binary is not None:
        episode["body_base64"] = base64.b64encode(binary).decode("ascii")
        episode["body_sha256"] = hashlib.sha256(binary).hexdigest()
        episode["body_size"] = len(binary)
    elif text is not None:
        episode["body_text"] = text
    else:
        episode["body"] = body
    if events is not None:
        fingerprint = family.stream_fingerprint([e.get("data") for e in events if isinstance(e, Mapping)])
    else:
        fingerprint = family.fingerprint(response_json(episode, family))
    if fingerprint:
        episode["system_fingerprint"] = fingerprint
    return episode


def is_stream(episode: Mapping[str, Any]) -> bool:
    return "events" in episode


def binary_body(episode: Mapping[str, Any]) -> bytes | None:
    """The bytes of a binary answer, or None for every other kind."""
    encoded = episode.get("body_base64")
    return base64.b64decode(encoded) if isinstance(encoded, str) else None


def response_json(episode: Mapping[str, Any], family: Family = CHAT) -> Any:
    """The response as one JSON document: the body, the text, a binary answer's
    description, or the stream as its family assembles it."""
    if is_stream(episode):
        return family.assemble([e.get("data") for e in episode["events"] if isinstance(e, Mapping)])
    if "body_base64" in episode:
        content_type = (episode.get("headers") or {}).get("content-type")
        return {"content_type": content_type, "size": episode.get("body_size"), "sha256": episode.get("body_sha256")}
    if "body_text" in episode:
        return episode["body_text"]
    return episode.get("body")
