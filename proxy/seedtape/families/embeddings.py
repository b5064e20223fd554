"""Embeddings: ``POST .../embeddings`` (key v1, unchanged). Deterministic: an identical
request is the same vector, so auto mode serves it from the recording whatever its
parameters (a notebook embedding the same text five times pays once).

Verify compares each vector by cosine similarity (drift kind ``embedding``); the SDK
asks for base64 vectors by default, which drift/compare.py decodes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from seedtape.families.base import Determinism, Endpoint, Family, endpoint


class Embeddings(Family):
    name = "embeddings"
    endpoints = (endpoint("embeddings"),)
    drift_kind = "embedding"

    def determinism(self, endpoint: Endpoint, body: Mapping[str, Any]) -> Determinism:
        return Determinism(True, "embeddings: always")

    def wants_stream(self, endpoint: Endpoint, body: Mapping[str, Any]) -> bool:
        return False
