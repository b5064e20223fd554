"""The cache key, version 1 (docs/design.md, "The key").

Two requests share a key exactly when the service would treat them as the same
request: same API shape, route, deployment, api-version and the same body once the
spellings that mean nothing (key order, explicit nulls, ``0.0`` vs ``0``, ASCII
escapes) are folded away. ``seed`` and ``stream`` are in the key only because they are
in the body.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from seedtape.routes import Target

KEY_VERSION = 1


def canonical(value: Any) -> Any:
    """Fold a parsed JSON value into the one spelling the key hashes."""
    if isinstance(value, dict):
        return {k: canonical(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [canonical(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def canonical_body(body: Mapping[str, Any], ignore_fields: Iterable[str] = ()) -> dict[str, Any]:
    """Drop top-level nulls (the API reads them as absent) and ignored fields, then fold."""
    ignored = set(ignore_fields)
    kept = {k: v for k, v in body.items() if v is not None and k not in ignored}
    folded: dict[str, Any] = canonical(kept)
    return folded


def canonical_json(value: Any) -> str:
    """Compact, sorted, UTF-8 JSON: the byte string that is hashed."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


@dataclass(frozen=True, slots=True)
class KeyMaterial:
    """Everything the key is made of, kept so a miss can explain itself."""

    target: Target
    body: dict[str, Any]
    partition: str = ""

    def as_dict(self) -> dict[str, Any]:
        material: dict[str, Any] = {
            "v": KEY_VERSION,
            "api": self.target.api,
            "route": self.target.route,
            "deployment": self.target.deployment,
            "api_version": self.target.api_version,
            "body": self.body,
        }
        if self.partition:
            # Only present when --partition-by-credential is on, so default keys stay
            # exactly the documented v1 keys.
            material["partition"] = self.partition
        return material

    @property
    def key(self) -> str:
        return hashlib.sha256(canonical_json(self.as_dict()).encode("utf-8")).hexdigest()


def make_key(
    target: Target,
    body: Mapping[str, Any],
    ignore_fields: Iterable[str] = (),
    partition: str = "",
) -> str:
    return KeyMaterial(target, canonical_body(body, ignore_fields), partition).key
