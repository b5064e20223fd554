"""Moderations: ``POST .../moderations`` (Azure: ``/openai/moderations?api-version=``).

Deterministic, like embeddings: a classifier, not a sampler. Verify compares each
result's ``flagged`` and the categories it flagged; scores are reported by the word
diff only when a category flips.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from seedtape.families.base import Determinism, DriftPart, Endpoint, Family, endpoint


class Moderations(Family):
    name = "moderations"
    endpoints = (endpoint("moderations"),)

    def determinism(self, endpoint: Endpoint, body: Mapping[str, Any]) -> Determinism:
        return Determinism(True, "moderations: always")

    def wants_stream(self, endpoint: Endpoint, body: Mapping[str, Any]) -> bool:
        return False

    def drift_parts(self, response: Any) -> list[DriftPart]:
        results = response.get("results") if isinstance(response, dict) else None
        parts = []
        for index, result in enumerate(results if isinstance(results, list) else []):
            if not isinstance(result, dict):
                continue
            categories = result.get("categories") or {}
            flagged = sorted(name for name, on in categories.items() if on) if isinstance(categories, dict) else []
            parts.append(DriftPart(f"result {index}", f"flagged={bool(result.get('flagged'))} " + " ".join(flagged)))
        return parts
