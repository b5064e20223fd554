"""Images: ``POST .../images/generations`` (JSON) and ``.../images/edits`` (multipart,
keyed like audio: form fields plus each file's SHA-256).

Not deterministic: there is no seed, and asking again is asking for another image, so
repeats follow the episode rules. With ``stream=true`` the answer is partial-image
events ending with ``image_generation.completed`` / ``image_edit.completed``. Verify
compares each image by the SHA-256 of its bytes (``b64_json``); a URL answer (DALL-E)
is signed anew on every call, so only the number of images is compared.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from typing import Any

from seedtape.families.base import MULTIPART, Determinism, DriftPart, Family, StreamEnd, endpoint

COMPLETE_EVENTS = frozenset({"image_generation.completed", "image_edit.completed"})


class Images(Family):
    name = "images"
    endpoints = (
        endpoint("images/generations"),
        endpoint("images/edits", body=MULTIPART),
    )

    def stream_end(self, data: Any) -> StreamEnd | None:
        if isinstance(data, dict) and data.get("type") in COMPLETE_EVENTS:
            return StreamEnd.COMPLETE
        return super().stream_end(data)

    def determinism(self, endpoint: Any, body: Any) -> Determinism:
        return Determinism(False, "images: never (asking again asks for another image)")

    def stream_fingerprint(self, events: Sequence[Any]) -> str | None:
        return None  # the assembled answer is the images and their usage

    def assemble(self, events: Sequence[Any]) -> Any:
        done = [e for e in events if isinstance(e, dict) and e.get("type") in COMPLETE_EVENTS]
        return {"data": [{"b64_json": e.get("b64_json")} for e in done], "usage": done[-1].get("usage") if done else None}

    def drift_parts(self, response: Any) -> list[DriftPart]:
        data = response.get("data") if isinstance(response, dict) else None
        images = data if isinstance(data, list) else []
        parts = [DriftPart("images", str(len(images)))]
        for index, image in enumerate(images):
            if isinstance(image, dict) and isinstance(image.get("b64_json"), str):
                parts.append(DriftPart(f"image {index} sha256", _digest(image["b64_json"])))
        return parts


def _digest(b64: str) -> str:
    try:
        return hashlib.sha256(base64.b64decode(b64)).hexdigest()
    except (binascii.Error, ValueError):
        return hashlib.sha256(b64.encode()).hexdigest()
