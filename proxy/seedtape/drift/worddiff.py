"""Word-level diff of two texts, the way the seed documents compare completions.

The seed notebook splits two completions on whitespace and runs ``difflib`` over the
word lists; users recognise that view, so drift reports and ``seedtape probe`` use the
same unit (a whitespace-separated word) and the same library. One function computes
everything a report shows: removed and added words in order, the aligned segments a
side-by-side view needs, a similarity ratio and where the texts first part ways.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Any

# Tags of the aligned segments; one character so log lines stay small.
EQUAL, REMOVED, ADDED = "=", "-", "+"


def words(text: str | None) -> list[str]:
    """Whitespace-separated words, as the seed documents' ``str.split()`` gives them."""
    return (text or "").split()


@dataclass(slots=True)
class WordDiff:
    """How a recorded text became a live one, word by word.

    ``ops`` is the whole alignment as ``[tag, "words joined by spaces"]`` pairs, so the
    recorded text is the ``=`` and ``-`` segments and the live text the ``=`` and ``+``
    ones; a side-by-side view needs nothing else.
    """

    removed: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    ops: list[list[str]] = field(default_factory=list)
    similarity: float = 1.0
    first_divergence: int | None = None

    @property
    def changed(self) -> bool:
        return self.first_divergence is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "removed": list(self.removed),
            "added": list(self.added),
            "ops": [list(op) for op in self.ops],
            "similarity": self.similarity,
            "first_divergence": self.first_divergence,
        }


def word_diff(recorded: str | None, live: str | None) -> WordDiff:
    """Diff two texts by words.

    ``autojunk`` is off: its popularity heuristic kicks in past 200 words and would
    treat common words ("the", "a") as noise, which skews long completions exactly
    where drift is most likely (longer answers drift more).
    """
    return diff_word_lists(words(recorded), words(live))


def diff_word_lists(a: list[str], b: list[str]) -> WordDiff:
    matcher = SequenceMatcher(None, a, b, autojunk=False)
    result = WordDiff(similarity=round(matcher.ratio(), 6) if (a or b) else 1.0)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            result.ops.append([EQUAL, " ".join(a[i1:i2])])
            continue
        if result.first_divergence is None:
            result.first_divergence = i1
        if i2 > i1:
            result.removed.extend(a[i1:i2])
            result.ops.append([REMOVED, " ".join(a[i1:i2])])
        if j2 > j1:
            result.added.extend(b[j1:j2])
            result.ops.append([ADDED, " ".join(b[j1:j2])])
    return result


def sides(ops: list[list[str]]) -> tuple[str, str]:
    """The recorded and live texts (whitespace-normalised) back from ``ops``."""
    recorded = " ".join(text for tag, text in ops if tag in (EQUAL, REMOVED) and text)
    live = " ".join(text for tag, text in ops if tag in (EQUAL, ADDED) and text)
    return recorded, live


def trim_ops(ops: list[list[str]], context: int = 6) -> list[list[str]]:
    """Shorten long unchanged stretches to ``context`` words each side, for terminals.

    The first and last segments keep only their inner side; a middle one keeps both
    ends with an ellipsis between.
    """
    if len(ops) < 2:
        return [list(op) for op in ops]
    trimmed: list[list[str]] = []
    last = len(ops) - 1
    for position, (tag, text) in enumerate(ops):
        if tag != EQUAL:
            trimmed.append([tag, text])
            continue
        parts = text.split()
        keep_head = position != 0
        keep_tail = position != last
        if len(parts) <= 2 * context or (not keep_head and len(parts) <= context) or (not keep_tail and len(parts) <= context):
            trimmed.append([tag, text])
            continue
        head = parts[:context] if keep_head else []
        tail = parts[-context:] if keep_tail else []
        trimmed.append([tag, " ".join([*head, "…", *tail])])
    return trimmed
