"""Speech to text: ``POST .../audio/transcriptions`` and ``.../audio/translations``.

Multipart requests: the key is the form fields plus the SHA-256 of each file part,
never the raw bytes or the boundary (the SDK draws a new boundary for every request),
so the same audio file hits and a different one misses. The cassette keeps each file's
hash, name, size and content type, not the audio.

Deterministic unless ``temperature`` is above 0 (the API's default is 0). With
``stream=true`` the answer is ``transcript.text.delta`` events ending with
``transcript.text.done``. Verify compares the text (JSON ``text``, or the plain-text
body of ``response_format`` text, srt or vtt).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from seedtape.families.base import MULTIPART, Determinism, DriftPart, Endpoint, Family, StreamEnd, endpoint, is_positive, temperature_text

DONE_EVENT = "transcript.text.done"


class Transcriptions(Family):
    name = "transcriptions"
    answers = frozenset({"json", "text"})
    endpoints = (
        endpoint("audio/transcriptions", body=MULTIPART),
        endpoint("audio/translations", body=MULTIPART),
    )

    def wants_stream(self, endpoint: Endpoint, body: Mapping[str, Any]) -> bool:
        return str(body.get("stream", "")).lower() == "true"

    def determinism(self, endpoint: Endpoint, body: Mapping[str, Any]) -> Determinism:
        if is_positive(body.get("temperature")):
            return Determinism(False, f"temperature {temperature_text(body)}")
        return Determinism(True, "temperature 0" if body.get("temperature") is not None else "temperature unset (the API's default is 0)")

    def stream_end(self, data: Any) -> StreamEnd | None:
        if isinstance(data, dict) and data.get("type") == DONE_EVENT:
            return StreamEnd.COMPLETE
        return super().stream_end(data)

    def assemble(self, events: Sequence[Any]) -> Any:
        for event in reversed(events):
            if isinstance(event, dict) and event.get("type") == DONE_EVENT:
                return {"text": event.get("text", ""), "usage": event.get("usage")}
        deltas = [e.get("delta") or "" for e in events if isinstance(e, dict) and e.get("type") == "transcript.text.delta"]
        return {"text": "".join(deltas)}

    def drift_parts(self, response: Any) -> list[DriftPart]:
        if isinstance(response, dict):
            text = response.get("text")
            if text is None and isinstance(response.get("body"), str):  # text, srt, vtt answers
                text = response["body"]
            return [DriftPart("text", str(text or ""))]
        return [DriftPart("text", str(response or ""))]
