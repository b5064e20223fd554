"""The replay-miss answer: which recording was closest, and what differs from it.

A bare 404 sends a user hunting through JSON files; naming the nearest recorded
request and the fields that differ (``seed: 42 != 7``) usually is the whole fix.
"""

from __future__ import annotations

import difflib
import json
from typing import Any

from seedtape.cassette import Recording
from seedtape.errors import ProxyError
from seedtape.exchange import Exchange
from seedtape.key import canonical_body
from seedtape.store import CassetteStore

MAX_SCANNED = 5000
_SHOWN = 60


def _short(value: Any) -> str:
    if value is _ABSENT:
        return "(absent)"
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


_ABSENT = object()


def field_differences(wanted: dict[str, Any], recorded: dict[str, Any], prefix: str = "", depth: int = 3) -> list[str]:
    """``name: wanted != recorded`` for every field that differs; inside objects on both
    sides, the nested field that differs (``file.sha256: ... != ...``), a few levels deep."""
    differences = []
    for name in sorted(set(wanted) | set(recorded)):
        a, b = wanted.get(name, _ABSENT), recorded.get(name, _ABSENT)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict) and depth > 1:
            differences += field_differences(a, b, f"{prefix}{name}.", depth - 1)
        else:
            differences.append(f"{prefix}{name}: {_short(a)} != {_short(b)}")
    return differences


def _distance(wanted: dict[str, Any], recorded: dict[str, Any]) -> float:
    """Differing fields, plus how unalike the differing values are (0..1 each)."""
    score = 0.0
    for name in set(wanted) | set(recorded):
        a, b = wanted.get(name, _ABSENT), recorded.get(name, _ABSENT)
        if a != b:
            ratio = difflib.SequenceMatcher(None, _short(a), _short(b)).ratio()
            score += 2.0 - ratio
    return score


def _target_fields(exchange: Exchange, recording: Recording) -> dict[str, dict[str, Any]]:
    request = recording.request
    wanted = {f"({k})": v for k, v in exchange.target.as_dict().items()}
    recorded = {f"({k})": request.get(k, "") for k in exchange.target.as_dict()}
    return {"wanted": wanted, "recorded": recorded}


def closest(store: CassetteStore, exchange: Exchange, ignore: tuple[str, ...] = ()) -> tuple[Recording, list[str]] | None:
    wanted_body = canonical_body(exchange.body, ignore)
    best: tuple[float, Recording, dict[str, Any], dict[str, Any]] | None = None
    # Unordered and stopped at MAX_SCANNED: a miss in a million-file cassette reads
    # 5,000 files, not every one (and does not sort a million names first).
    for _, recording in store.recordings(exchange.cassette, ordered=False, limit=MAX_SCANNED):
        if not isinstance(recording, Recording):
            continue
        fields = _target_fields(exchange, recording)
        wanted = {**fields["wanted"], **wanted_body}
        recorded = {**fields["recorded"], **canonical_body(recording.request.get("body") or {}, ignore)}
        distance = _distance(wanted, recorded)
        if best is None or (distance, recording.key) < (best[0], best[1].key):  # ties: lowest key, as when scanned in order
            best = (distance, recording, wanted, recorded)
    if best is None:
        return None
    return best[1], field_differences(best[2], best[3])


def cassette_miss(store: CassetteStore, exchange: Exchange, ignore: tuple[str, ...] = ()) -> ProxyError:
    found = closest(store, exchange, ignore)
    where = f"cassette {exchange.cassette!r}"
    if found is None:
        message = f"no recording for this request in {where} (the cassette is empty); record it with --mode auto or record"
    else:
        recording, differences = found
        model = (recording.request.get("body") or {}).get("model", "?")
        message = (
            f"no recording for this request in {where}. Closest recorded request: key {recording.key[:16]} "
            f"(model {model}); differs in: " + "; ".join(differences)
        )
    return ProxyError(404, message, "seedtape_cassette_miss", "cassette_miss")
