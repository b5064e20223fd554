"""The replay-miss answer: which recording was closest, and what differs from it.

A bare 404 sends a user hunting through JSON files; naming the nearest recorded
request and the fields that differ (``seed: 42 != 7``) usually is the whole fix.

Finding the closest recording means comparing the request with every recording of
the cassette, which must never hold up the other requests of the proxy (one miss in
a 4,559-file cassette used to block the event loop for 1.1 s). So:

* the work runs in a worker thread, one miss at a time, and stops at ``MAX_SCANNED``
  files or ``TIME_BUDGET`` seconds, whichever comes first (the message then says how
  many recordings it compared);
* each recording is summarised once into an index (field name -> a digest of the
  value and its short form), kept while the file's size and mtime match, so the next
  miss on the cassette reads no file at all; files over ``MAX_FILE_BYTES`` are not
  compared (their request is a few hundred bytes, but finding it means parsing the
  whole file);
* the request's own fields are shortened once, not once per recording (a 1 MB
  message made each comparison serialise it again: 15-18 s per miss), and a
  recording is only compared in detail when its count of differing fields can still
  beat the best so far.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import anyio

from seedtape.cassette import CassetteError, Recording
from seedtape.errors import ProxyError
from seedtape.exchange import Exchange
from seedtape.key import canonical_body
from seedtape.store import CassetteStore

MAX_SCANNED = 5000
TIME_BUDGET = 2.0
MAX_FILE_BYTES = 1024 * 1024
INDEX_SIZE = 50_000  # summaries remembered (about 1 KB each)
_SHOWN = 60
# Every PAUSE_EVERY recordings the worker thread sleeps PAUSE seconds. It shares the
# interpreter with the event loop; without a pause, a loop thread waking for a
# request waits for the interpreter behind it ("convoy"), and a storm of misses
# pushed other clients' replays past 100 ms (tests/faults/test_event_loop.py).
PAUSE_EVERY = 50
PAUSE = 0.001
_ABSENT = object()


def _short(value: Any) -> str:
    if value is _ABSENT:
        return "(absent)"
    if isinstance(value, str) and len(value) > _SHOWN:
        value = value[: _SHOWN * 2]  # what is shown is a prefix: never serialise all of a long text
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


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


@dataclass(frozen=True, slots=True)
class _Field:
    digest: bytes
    short: str


Summary = dict[str, _Field]


def _digest(value: Any) -> bytes:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _fields(target: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    return {**{f"({k})": v for k, v in target.items()}, **body}


def summarise(fields: dict[str, Any]) -> Summary:
    return {name: _Field(_digest(value), _short(value)) for name, value in fields.items()}


def _distance(wanted: Summary, recorded: Summary, differing: list[str]) -> float:
    """Differing fields, plus how unalike the differing values are (0..1 each)."""
    score = 0.0
    for name in differing:
        a, b = wanted.get(name), recorded.get(name)
        ratio = difflib.SequenceMatcher(None, a.short if a else "(absent)", b.short if b else "(absent)").ratio()
        score += 2.0 - ratio
    return score


def _differing(wanted: Summary, recorded: Summary) -> list[str]:
    return [
        name
        for name in wanted.keys() | recorded.keys()
        if (a := wanted.get(name)) is None or (b := recorded.get(name)) is None or a.digest != b.digest
    ]


class MissIndex:
    """Summaries of recorded requests, by file, for replay-miss explanations."""

    def __init__(self, store: CassetteStore, ignore: tuple[str, ...] = (), budget: float = TIME_BUDGET) -> None:
        self.store = store
        self.ignore = tuple(ignore)
        self.budget = budget
        self._summaries: OrderedDict[str, tuple[tuple[int, int], str, Summary]] = OrderedDict()
        self._lock = threading.Lock()
        self._limiter: anyio.CapacityLimiter | None = None

    async def explain(self, exchange: Exchange) -> ProxyError:
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(1)  # one miss at a time: the others wait, the loop never does
        return await anyio.to_thread.run_sync(self.cassette_miss, exchange, limiter=self._limiter)

    def _summary(self, path: str, stamp: tuple[int, int], target_names: list[str]) -> tuple[str, Summary] | None:
        with self._lock:
            found = self._summaries.get(path)
            if found is not None and found[0] == stamp:
                self._summaries.move_to_end(path)
                return found[1], found[2]
        try:
            recording = self.store.read_path(path, MAX_FILE_BYTES)
        except (CassetteError, OSError):
            return None
        request = recording.request
        summary = summarise(
            _fields({name: request.get(name, "") for name in target_names}, canonical_body(request.get("body") or {}, self.ignore))
        )
        with self._lock:
            self._summaries[path] = (stamp, recording.key, summary)
            while len(self._summaries) > INDEX_SIZE:
                self._summaries.popitem(last=False)
        return recording.key, summary

    def closest(self, exchange: Exchange) -> tuple[Recording, list[str], int, bool] | None:
        """(closest recording, differences, recordings compared, stopped early) or None."""
        started = time.monotonic()
        target = exchange.target.as_dict()
        wanted_fields = _fields(target, canonical_body(exchange.body, self.ignore))
        wanted = summarise(wanted_fields)
        best: tuple[float, str, str] | None = None  # distance, key, path
        compared = 0
        stopped = False
        for number, (path, stamp) in enumerate(self.store.files(exchange.cassette, limit=MAX_SCANNED)):
            if time.monotonic() - started > self.budget:
                stopped = True
                break
            if number % PAUSE_EVERY == PAUSE_EVERY - 1:
                time.sleep(PAUSE)
            found = self._summary(path, stamp, list(target))
            if found is None:
                continue
            key, recorded = found
            compared += 1
            differing = _differing(wanted, recorded)
            if best is not None and len(differing) > best[0]:
                continue  # each differing field adds more than 1: it cannot win
            distance = _distance(wanted, recorded, differing)
            if best is None or (distance, key) < best[:2]:  # ties: lowest key, as when scanned in order
                best = (distance, key, path)
        if best is None:
            return None
        try:
            recording = self.store.read_path(best[2], MAX_FILE_BYTES)
        except (CassetteError, OSError):
            return None
        request = recording.request
        recorded_fields = _fields({name: request.get(name, "") for name in target}, canonical_body(request.get("body") or {}, self.ignore))
        return recording, field_differences(wanted_fields, recorded_fields), compared, stopped

    def cassette_miss(self, exchange: Exchange) -> ProxyError:
        found = self.closest(exchange)
        where = f"cassette {exchange.cassette!r}"
        if found is None:
            message = f"no recording for this request in {where} (the cassette is empty); record it with --mode auto or record"
        else:
            recording, differences, compared, stopped = found
            model = (recording.request.get("body") or {}).get("model", "?")
            among = f" (of the first {compared} compared)" if stopped or compared >= MAX_SCANNED else ""
            message = (
                f"no recording for this request in {where}. Closest recorded request{among}: key {recording.key[:16]} "
                f"(model {model}); differs in: " + "; ".join(differences)
            )
        return ProxyError(404, message, "seedtape_cassette_miss", "cassette_miss")
