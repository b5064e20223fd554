"""Drift: how a live response differs from the recorded episode of the same request.

This is what verify mode exists for (docs/design.md, "Drift (verify)"). ``seed`` makes
sampling reproducible only "almost always", and ``system_fingerprint`` names the
backend configuration, so a verified request is described by three independent flags
and one class:

Whether a request asked for determinism is its family's rule (``seed`` set or
``temperature`` 0 for chat; see ``families/``); ``compare`` is told. Only such a request
can drift in content: any other one asked for a new sample, so a different text is
``variety``, reported and never counted as drift.

flags (always in this order, ``[]`` means the ``x-seedtape-drift: none`` header)
    ``content``      (a request meant to repeat) a choice's ``message.content``, ``tool_calls`` (function name and
                     arguments; arguments compared as parsed JSON when both sides
                     parse, else as strings), ``refusal``, legacy ``function_call`` or
                     ``finish_reason`` differs, or the number of choices differs.
                     Legacy completions compare ``choices[].text``; embeddings compare
                     each vector by cosine similarity and drift below
                     :data:`EMBEDDING_MIN_COSINE` (0.9999: float32 round-off and
                     batching noise stay far above it, a different vector does not) or
                     when dimensions or counts differ. A response of no known shape
                     (an error body recorded with ``--record-errors``) is compared as
                     whole JSON minus the volatile fields.
    ``variety``      the same difference in a request that did not ask for
                     determinism (no seed, temperature above 0; images): expected,
                     never drift.
    ``fingerprint``  the recording had a ``system_fingerprint`` and live has another
                     one or none. A recording without one (newer models omit it) gives
                     fingerprint status ``unknown``, never a flag.
    ``model``        the response ``model`` changed (both sides name one).
    ``unrecorded``   there was no recording to compare with.

class (one per request)
    ``identical``                 no flag
    ``fingerprint-only``          fingerprint changed, content did not (a model flag
                                  may come with it; it stays visible in ``flags``)
    ``model-only``                only the model flag
    ``content-same-fingerprint``  content drifted, fingerprint same or unknown: the
                                  "almost always" case the seed documents warn about
    ``content-new-fingerprint``   content drifted and the backend said it changed
    ``variety``                   a request not meant to repeat answered differently
                                  (whatever the fingerprint did; its flag stays visible)
    ``unrecorded``                no recording

:attr:`DriftResult.drifted` is true only for a request meant to repeat with a
``content``, ``fingerprint`` or ``model`` flag: ``variety`` and ``unrecorded`` are
counted on their own.

Never drift: ``id``, ``created``, ``usage`` (reported as recorded/live/delta, never
flagged), the streaming ``obfuscation`` padding, and every field outside the list
above (``logprobs``, content filter results, ``service_tier``...). Streams are compared
after :func:`seedtape.episode.response_json` assembles them, so a streamed episode
drifts exactly like a non-streamed one.

Ignore paths (``--ignore-path``) are removed from both sides before anything is
compared; see :mod:`seedtape.jsonpath` for the syntax.
"""

from __future__ import annotations

import base64
import copy
import json
import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from seedtape.cassette import utc_now
from seedtape.drift.worddiff import WordDiff, diff_word_lists, word_diff, words
from seedtape.episode import is_stream, response_json
from seedtape.families import CHAT, Family
from seedtape.jsonpath import parse_path, remove_path

FLAG_ORDER = ("content", "variety", "fingerprint", "model", "unrecorded")
DRIFT_FLAGS = frozenset({"content", "fingerprint", "model"})
CLASSES = (
    "identical",
    "fingerprint-only",
    "model-only",
    "content-same-fingerprint",
    "content-new-fingerprint",
    "variety",
    "unrecorded",
)
LOG_SCHEMA = "seedtape.drift/1"
VOLATILE_FIELDS = frozenset({"id", "created", "usage", "obfuscation"})
EMBEDDING_MIN_COSINE = 0.9999
# ``deterministic`` and ``determinism`` (its reason) come from the family's rule.
_REQUEST_CONTEXT_FIELDS = ("api", "route", "deployment", "api_version", "model", "seed", "temperature", "deterministic", "determinism")


# --------------------------------------------------------------------------- ignore paths


def parse_ignore_path(path: str) -> tuple[str, ...]:
    """One ``--ignore-path`` (syntax in :mod:`seedtape.jsonpath`); ``ValueError`` if malformed."""
    return parse_path(path, "ignore path")


def _strip_volatile(node: Any) -> Any:
    """A copy without volatile fields at any depth (for whole-JSON comparison only)."""
    if isinstance(node, dict):
        return {k: _strip_volatile(v) for k, v in node.items() if k not in VOLATILE_FIELDS}
    if isinstance(node, list):
        return [_strip_volatile(v) for v in node]
    return node


# --------------------------------------------------------------------------- responses


def comparable_response(episode: Mapping[str, Any], ignore: Sequence[tuple[str, ...]] = (), family: Family = CHAT) -> dict[str, Any]:
    """The episode as one response document, a private copy with ignore paths removed.

    ``response_json`` has the family assemble a stream; legacy ``completions`` chunks
    recorded before families existed are folded here too (chat's assembly kept only
    deltas).
    """
    response = copy.deepcopy(response_json(episode, family))
    if not isinstance(response, dict):
        response = {} if response is None else {"body": response}
    if is_stream(episode) and family.drift_kind in ("chat", "completion"):
        _fold_stream_texts(response, episode.get("events") or [])
    for segments in ignore:
        remove_path(response, segments)
    return response


def _fold_stream_texts(response: dict[str, Any], events: Sequence[Mapping[str, Any]]) -> None:
    texts: dict[int, str] = {}
    for event in events:
        data = event.get("data") if isinstance(event, Mapping) else None
        for choice in (data.get("choices") or []) if isinstance(data, dict) else []:
            if isinstance(choice, dict) and isinstance(choice.get("text"), str):
                index = choice.get("index", 0)
                texts[index] = texts.get(index, "") + choice["text"]
    if not texts:
        return
    response["object"] = "text_completion"
    by_index = {c.get("index"): c for c in response.get("choices") or []}
    for index, text in texts.items():
        choice = by_index.get(index)
        if choice is None:
            choice = {"index": index, "finish_reason": None}
            response.setdefault("choices", []).append(choice)
        choice.pop("message", None)
        choice["text"] = text


def response_kind(response: Mapping[str, Any]) -> str:
    """``chat``, ``completion``, ``embedding`` or ``other``, from the response shape."""
    if response.get("object") == "list" or isinstance(response.get("data"), list):
        return "embedding"
    choices = response.get("choices")
    if isinstance(choices, list):
        if response.get("object") == "text_completion" or any(isinstance(c, dict) and "text" in c for c in choices):
            return "completion"
        return "chat"
    return "other"


def _text(value: Any) -> str:
    """A field as comparable text: ``None`` and ``""`` are both "nothing said"."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _indexed(items: Any) -> dict[int, dict[str, Any]]:
    """List items by their ``index`` field (position when absent): choices and vectors
    are matched by index, not by position, as the API numbers them."""
    result: dict[int, dict[str, Any]] = {}
    for position, item in enumerate(items if isinstance(items, list) else []):
        if isinstance(item, dict):
            index = item.get("index")
            result[index if isinstance(index, int) else position] = item
    return result


def _choices_by_index(response: Mapping[str, Any]) -> dict[int, dict[str, Any]]:
    return _indexed(response.get("choices"))


# --------------------------------------------------------------------------- tool calls


def _call_parts(call: Any) -> tuple[str, str]:
    """A tool call's name and arguments; ``custom`` tools carry ``input`` instead."""
    if not isinstance(call, dict):
        return "", _text(call)
    function = call.get("function") or call.get("custom") or {}
    if not isinstance(function, dict):
        return "", _text(function)
    arguments = function.get("arguments", function.get("input"))
    return _text(function.get("name")), _text(arguments)


def _parsed(arguments: str) -> tuple[bool, Any]:
    try:
        return True, json.loads(arguments)
    except (ValueError, TypeError):
        return False, None


def same_arguments(recorded: str, live: str) -> bool:
    """Equal as JSON when both parse (key order and spacing are not drift), else as text."""
    ok_recorded, value_recorded = _parsed(recorded)
    ok_live, value_live = _parsed(live)
    if ok_recorded and ok_live:
        return bool(value_recorded == value_live)
    return recorded == live


def _canonical_arguments(arguments: str) -> str:
    ok, value = _parsed(arguments)
    return json.dumps(value, sort_keys=True, ensure_ascii=False) if ok else arguments


def _compare_calls(recorded: list[Any], live: list[Any]) -> list[dict[str, Any]]:
    changes: list[dict[str, Any]] = []
    for index in range(max(len(recorded), len(live))):
        if index >= len(live) or index >= len(recorded):
            changes.append({"index": index, "missing": "live" if index >= len(live) else "recorded"})
            continue
        name_r, args_r = _call_parts(recorded[index])
        name_l, args_l = _call_parts(live[index])
        change: dict[str, Any] = {"index": index}
        if name_r != name_l:
            change["name"] = {"recorded": name_r, "live": name_l}
        if not same_arguments(args_r, args_l):
            change["arguments"] = {"recorded": args_r, "live": args_l}
        if len(change) > 1:
            changes.append(change)
    return changes


def _calls_text(calls: list[Any]) -> str:
    return " ".join(f"{name}({_canonical_arguments(args)})" for name, args in map(_call_parts, calls))


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


# --------------------------------------------------------------------------- choices


def _choice_text(kind: str, choice: Mapping[str, Any]) -> str:
    """What a reader sees of a choice, for the headline word diff."""
    if kind == "completion":
        return _text(choice.get("text"))
    message = choice.get("message") or {}
    parts = [
        _text(message.get("content")),
        _text(message.get("refusal")),
        _calls_text(_as_list(message.get("function_call"))),
        _calls_text(_as_list(message.get("tool_calls"))),
    ]
    return " ".join(part for part in parts if part)


def _compare_choice(kind: str, index: int, recorded: Mapping[str, Any], live: Mapping[str, Any]) -> dict[str, Any] | None:
    """What differs in one choice, or ``None`` when nothing that counts does."""
    detail: dict[str, Any] = {"index": index}
    if kind == "completion":
        text_fields = {"text": (recorded.get("text"), live.get("text"))}
    else:
        message_r, message_l = recorded.get("message") or {}, live.get("message") or {}
        text_fields = {f: (message_r.get(f), message_l.get(f)) for f in ("content", "refusal")}
        for field_name in ("tool_calls", "function_call"):
            changes = _compare_calls(_as_list(message_r.get(field_name)), _as_list(message_l.get(field_name)))
            if changes:
                detail[field_name] = changes
    for field_name, (value_r, value_l) in text_fields.items():
        if _text(value_r) != _text(value_l):
            # No aligned ops here: the headline diff carries them once for all choices.
            summary = word_diff(_text(value_r), _text(value_l)).to_json()
            detail[field_name] = {k: summary[k] for k in ("similarity", "first_divergence", "removed", "added")}
    if recorded.get("finish_reason") != live.get("finish_reason"):
        detail["finish_reason"] = {"recorded": recorded.get("finish_reason"), "live": live.get("finish_reason")}
    return detail if len(detail) > 1 else None


def _compare_choices(kind: str, recorded: Mapping[str, Any], live: Mapping[str, Any]) -> tuple[list[dict[str, Any]], WordDiff]:
    """Per-choice differences, and the word diff of all choices' text in index order."""
    by_r, by_l = _choices_by_index(recorded), _choices_by_index(live)
    details: list[dict[str, Any]] = []
    for index in sorted(set(by_r) | set(by_l)):
        if index not in by_l or index not in by_r:
            details.append({"index": index, "missing": "live" if index not in by_l else "recorded"})
            continue
        detail = _compare_choice(kind, index, by_r[index], by_l[index])
        if detail:
            details.append(detail)
    words_r = [w for i in sorted(by_r) for w in words(_choice_text(kind, by_r[i]))]
    words_l = [w for i in sorted(by_l) for w in words(_choice_text(kind, by_l[i]))]
    return details, diff_word_lists(words_r, words_l)


# --------------------------------------------------------------------------- embeddings


def _vector(value: Any) -> list[float] | None:
    """An embedding as floats; the SDK asks for base64 (little-endian float32) by default."""
    if isinstance(value, list) and all(isinstance(x, (int, float)) for x in value):
        return [float(x) for x in value]
    if isinstance(value, str):
        try:
            raw = base64.b64decode(value, validate=True)
        except ValueError:
            return None
        if len(raw) % 4 == 0:
            return list(struct.unpack(f"<{len(raw) // 4}f", raw))
    return None


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    if norm == 0:
        return 1.0 if list(a) == list(b) else 0.0
    return sum(x * y for x, y in zip(a, b, strict=True)) / norm


def _compare_embeddings(recorded: Mapping[str, Any], live: Mapping[str, Any]) -> tuple[list[dict[str, Any]], float]:
    """Per-vector differences and the lowest cosine similarity (1.0 when all match)."""

    def by_index(response: Mapping[str, Any]) -> dict[int, Any]:
        return {index: item.get("embedding") for index, item in _indexed(response.get("data")).items()}

    vectors_r, vectors_l = by_index(recorded), by_index(live)
    details: list[dict[str, Any]] = []
    lowest = 1.0
    for index in sorted(set(vectors_r) | set(vectors_l)):
        if index not in vectors_l or index not in vectors_r:
            details.append({"index": index, "missing": "live" if index not in vectors_l else "recorded"})
            lowest = 0.0
            continue
        a, b = _vector(vectors_r[index]), _vector(vectors_l[index])
        if a is None or b is None or len(a) != len(b):
            details.append({"index": index, "dimensions": {"recorded": len(a or []), "live": len(b or [])}})
            lowest = 0.0
            continue
        similarity = cosine(a, b)
        lowest = min(lowest, max(0.0, similarity))
        if similarity < EMBEDDING_MIN_COSINE:
            details.append({"index": index, "cosine": round(similarity, 6)})
    return details, round(lowest, 6)


# --------------------------------------------------------------------------- result


@dataclass(slots=True)
class DriftResult:
    """The comparison of one verified request; :meth:`to_log_entry` makes its log line."""

    flags: list[str]
    drift_class: str
    kind: str = "chat"
    fingerprint: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    usage: dict[str, Any] = field(default_factory=dict)
    status: dict[str, Any] = field(default_factory=dict)
    similarity: float | None = None
    first_divergence: int | None = None
    diff: dict[str, Any] | None = None
    choices: list[dict[str, Any]] = field(default_factory=list)
    recorded_at: str | None = None
    ignored_paths: list[str] = field(default_factory=list)
    deterministic: bool = True

    @property
    def drifted(self) -> bool:
        """A request meant to repeat that did not (never ``variety``, never ``unrecorded``)."""
        return self.deterministic and any(flag in DRIFT_FLAGS for flag in self.flags)

    @property
    def unrecorded(self) -> bool:
        return "unrecorded" in self.flags

    @property
    def header(self) -> str:
        """The ``x-seedtape-drift`` header value."""
        return ",".join(self.flags) if self.flags else "none"

    def to_json(self) -> dict[str, Any]:
        return {
            "flags": list(self.flags),
            "class": self.drift_class,
            "kind": self.kind,
            "fingerprint": dict(self.fingerprint),
            "model": dict(self.model),
            "usage": copy.deepcopy(self.usage),
            "status": dict(self.status),
            "similarity": self.similarity,
            "first_divergence": self.first_divergence,
            "diff": copy.deepcopy(self.diff),
            "choices": copy.deepcopy(self.choices),
            "recorded_at": self.recorded_at,
            "ignored_paths": list(self.ignored_paths),
            "deterministic": self.deterministic,
        }

    def to_log_entry(self, context: Mapping[str, Any]) -> dict[str, Any]:
        """One drift-log line: the comparison plus where it came from.

        Only named context fields are copied (never headers or anything else a caller
        might pass along), which is how no credential can reach a log or a report.
        """
        raw_request = context.get("request")
        request: Mapping[str, Any] = raw_request if isinstance(raw_request, Mapping) else {}
        entry: dict[str, Any] = {
            "schema": LOG_SCHEMA,
            "ts": str(context.get("ts") or utc_now()),
            "cassette": _str_or_none(context.get("cassette")),
            "key": _str_or_none(context.get("key")),
            "episode": context.get("episode") if isinstance(context.get("episode"), int) else None,
            "mode": _str_or_none(context.get("mode")),
            "request": {name: _scalar(request.get(name)) for name in _REQUEST_CONTEXT_FIELDS},
        }
        entry.update(self.to_json())
        return entry


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _scalar(value: Any) -> str | int | float | bool | None:
    return value if value is None or isinstance(value, (str, int, float, bool)) else str(value)


def _usage_report(recorded: Any, live: Any) -> dict[str, Any]:
    """Recorded and live token counts and their difference; reported, never flagged."""
    recorded = recorded if isinstance(recorded, dict) else None
    live = live if isinstance(live, dict) else None
    delta = (
        {
            name: live[name] - recorded[name]
            for name in sorted(set(recorded or {}) & set(live or {}))
            if isinstance(recorded[name], int) and isinstance(live[name], int)
        }
        if recorded and live
        else {}
    )
    return {"recorded": recorded, "live": live, "delta": delta}


def classify(flags: Sequence[str]) -> str:
    """The class of a set of flags (see the module docstring)."""
    if "unrecorded" in flags:
        return "unrecorded"
    if "variety" in flags:
        return "variety"
    if "content" in flags:
        return "content-new-fingerprint" if "fingerprint" in flags else "content-same-fingerprint"
    if "fingerprint" in flags:
        return "fingerprint-only"
    if "model" in flags:
        return "model-only"
    return "identical"


def _fingerprint_report(recorded: str | None, live: str | None) -> tuple[dict[str, Any], bool]:
    if recorded is None:
        return {"recorded": None, "live": live, "status": "unknown"}, False
    if recorded == live:
        return {"recorded": recorded, "live": live, "status": "same"}, False
    return {"recorded": recorded, "live": live, "status": "changed"}, True


def _model_of(response: Mapping[str, Any]) -> str | None:
    value = response.get("model")
    return value if isinstance(value, str) and value else None


def _compare_parts(family: Family, recorded: Mapping[str, Any], live: Mapping[str, Any]) -> tuple[list[dict[str, Any]], WordDiff]:
    """A family's named parts (a message, a function call, a hash), compared as text.

    Parts are matched by name and position (the n-th ``output_text`` with the n-th);
    the headline word diff runs over all parts' text in order, like choices'.
    """
    parts_r, parts_l = family.drift_parts(recorded), family.drift_parts(live)
    details: list[dict[str, Any]] = []
    for index in range(max(len(parts_r), len(parts_l))):
        if index >= len(parts_r) or index >= len(parts_l):
            present = parts_r[index] if index < len(parts_r) else parts_l[index]
            details.append({"index": index, "part": present.name, "missing": "live" if index >= len(parts_l) else "recorded"})
            continue
        a, b = parts_r[index], parts_l[index]
        if a.name != b.name or a.text != b.text:
            summary = word_diff(a.text, b.text).to_json()
            detail: dict[str, Any] = {
                "index": index,
                "part": b.name,
                **{k: summary[k] for k in ("similarity", "first_divergence", "removed", "added")},
            }
            if a.name != b.name:
                detail["name"] = {"recorded": a.name, "live": b.name}
            details.append(detail)
    words_r = [w for part in parts_r for w in words(part.text)]
    words_l = [w for part in parts_l for w in words(part.text)]
    return details, diff_word_lists(words_r, words_l)


def _content_drift(
    kind: str, recorded: Mapping[str, Any], live: Mapping[str, Any], family: Family = CHAT
) -> tuple[list[dict[str, Any]], WordDiff | None, float]:
    """Per-item details, the headline word diff (none for embeddings) and a similarity."""
    if kind == "parts":
        details, diff = _compare_parts(family, recorded, live)
        return details, diff, diff.similarity
    if kind == "embedding":
        details, lowest = _compare_embeddings(recorded, live)
        return details, None, lowest
    if kind in ("chat", "completion"):
        details, diff = _compare_choices(kind, recorded, live)
        return details, diff, diff.similarity
    text_r = json.dumps(_strip_volatile(recorded), sort_keys=True, ensure_ascii=False)
    text_l = json.dumps(_strip_volatile(live), sort_keys=True, ensure_ascii=False)
    if text_r == text_l:
        return [], None, 1.0
    diff = word_diff(text_r, text_l)
    return [{"index": 0, "body": "differs"}], diff, diff.similarity


def compare(
    recorded_episode: Mapping[str, Any] | None,
    live_episode: Mapping[str, Any],
    ignore_paths: Sequence[str] = (),
    family: Family = CHAT,
    deterministic: bool = True,
) -> DriftResult:
    """Compare a live episode with its recording (``None`` when there is none).

    ``deterministic``: the request asked for the same answer every time (its family's
    rule, ``Exchange.deterministic``); when false a content difference is ``variety``.
    """
    ignore = [parse_ignore_path(path) for path in ignore_paths]
    fingerprint_of = family.fingerprint
    live = comparable_response(live_episode, ignore, family)
    live_raw = response_json(live_episode, family)
    live_usage = live_raw.get("usage") if isinstance(live_raw, dict) else None
    if recorded_episode is None:
        return DriftResult(
            flags=["unrecorded"],
            drift_class="unrecorded",
            kind=_kind(family, live),
            fingerprint={"recorded": None, "live": fingerprint_of(live), "status": "unrecorded"},
            model={"recorded": None, "live": _model_of(live)},
            usage=_usage_report(None, live_usage),
            status={"recorded": None, "live": live_episode.get("status")},
            ignored_paths=list(ignore_paths),
            deterministic=deterministic,
        )
    recorded = comparable_response(recorded_episode, ignore, family)
    recorded_raw = response_json(recorded_episode, family)
    kind = _kind(family, live) if _kind(family, live) != "other" else _kind(family, recorded)
    details, diff, similarity = _content_drift(kind, recorded, live, family)
    fingerprint, fingerprint_changed = _fingerprint_report(fingerprint_of(recorded), fingerprint_of(live))
    model_r, model_l = _model_of(recorded), _model_of(live)
    flagged = {
        "content": bool(details) and deterministic,
        "variety": bool(details) and not deterministic,
        "fingerprint": fingerprint_changed,
        "model": model_r is not None and model_l is not None and model_r != model_l,
    }
    flags = [name for name in FLAG_ORDER if flagged.get(name)]
    return DriftResult(
        flags=flags,
        drift_class=classify(flags),
        kind=kind,
        fingerprint=fingerprint,
        model={"recorded": model_r, "live": model_l},
        usage=_usage_report(recorded_raw.get("usage") if isinstance(recorded_raw, dict) else None, live_usage),
        status={"recorded": recorded_episode.get("status"), "live": live_episode.get("status")},
        similarity=similarity,
        first_divergence=diff.first_divergence if diff and details else None,
        diff=_diff_json(diff) if diff and details else None,
        choices=details,
        recorded_at=_str_or_none(recorded_episode.get("recorded_at")),
        ignored_paths=list(ignore_paths),
        deterministic=deterministic,
    )


def _kind(family: Family, response: Mapping[str, Any]) -> str:
    """``parts`` for families that name what to compare; else the shape decides (chat,
    completion, embedding, or whole-JSON ``other`` for an error body)."""
    if family.drift_kind == "parts" and not response.get("error"):
        return "parts"
    return response_kind(response)


def _diff_json(diff: WordDiff) -> dict[str, Any]:
    return {"removed": diff.removed, "added": diff.added, "ops": diff.ops}
