"""Text to speech: ``POST .../audio/speech`` (JSON in, audio bytes out).

The answer is binary (``audio/mpeg`` by default): the cassette stores it as base64
with its content type, size and SHA-256 beside it, so a replay sends the same bytes
and a review sees what changed without reading base64. With ``stream_format: sse``
it is ``speech.audio.delta`` events ending with ``speech.audio.done``.

Deterministic: a voice reading a text is not a request for variety, and caching it is
what makes a test suite free. Verify compares the audio's SHA-256.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from seedtape.families.base import Determinism, DriftPart, Endpoint, Family, StreamEnd, endpoint

DONE_EVENT = "speech.audio.done"


class Speech(Family):
    name = "speech"
    answers = frozenset({"json", "binary"})
    endpoints = (endpoint("audio/speech"),)

    def wants_stream(self, endpoint: Endpoint, body: Mapping[str, Any]) -> bool:
        return body.get("stream_format") == "sse"

    def determinism(self, endpoint: Endpoint, body: Mapping[str, Any]) -> Determinism:
        return Determinism(True, "speech: always")

    def stream_end(self, data: Any) -> StreamEnd | None:
        if isinstance(data, dict) and data.get("type") == DONE_EVENT:
            return StreamEnd.COMPLETE
        return super().stream_end(data)

    def stream_fingerprint(self, events: Sequence[Any]) -> str | None:
        return None  # the assembled answer is the audio's hash and size

    def assemble(self, events: Sequence[Any]) -> Any:
        audio = b"".join(
            base64.b64decode(e.get("audio") or "") for e in events if isinstance(e, dict) and e.get("type") == "speech.audio.delta"
        )
        return {"sha256": hashlib.sha256(audio).hexdigest(), "size": len(audio)}

    def drift_parts(self, response: Any) -> list[DriftPart]:
        digest = response.get("sha256") if isinstance(response, dict) else None
        return [DriftPart("audio sha256", str(digest))]
