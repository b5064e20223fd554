"""Dotted JSON paths, shared by ``--ignore-path`` (verify) and ``--redact-path``.

Syntax: dot-separated keys from the top of a JSON document, ``*`` for any key or any
list element, a number for one list element: ``choices.*.message.content``,
``choices.0.logprobs``, ``user``. A leading ``$.`` and bracketed indices are accepted as
spellings of the same thing (``$.choices[0].logprobs``, ``choices[*].logprobs``), so
paths copied from JSONPath tools work. Keys containing dots cannot be named.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

Path = tuple[str, ...]


def parse_path(path: str, option: str = "path") -> Path:
    """Split a path into segments; ``ValueError`` (naming ``option``) on a malformed one.

    Settings call this at start-up, so a typo fails loudly instead of matching nothing.
    """
    text = path.strip()
    if text.startswith("$"):
        text = text[1:]
    text = re.sub(r"\[\s*(\*|\d+)\s*\]", r".\1", text).lstrip(".")
    segments = tuple(text.split("."))
    if not text or any(not segment or "[" in segment or "]" in segment for segment in segments):
        raise ValueError(f"invalid {option} {path!r}: use dotted keys like choices.*.message.content")
    return segments


def _children(node: Any, head: str) -> Iterable[Any]:
    """The keys (dict) or indexes (list) one segment selects in ``node``."""
    if isinstance(node, dict):
        return list(node) if head == "*" else [head] if head in node else []
    if isinstance(node, list):
        if head == "*":
            return range(len(node))
        if head.isdigit() and int(head) < len(node):
            return [int(head)]
    return []


def remove_path(node: Any, segments: Sequence[str]) -> None:
    """Delete every value ``segments`` reaches inside ``node`` (in place)."""
    if not segments:
        return
    head, rest = segments[0], segments[1:]
    # Reversed: deleting list elements from the end keeps the other indexes valid.
    for child in reversed(list(_children(node, head))):
        if rest:
            remove_path(node[child], rest)
        else:
            del node[child]


def replace_path(node: Any, segments: Sequence[str], new: Callable[[Any], Any]) -> Any:
    """Replace every value ``segments`` reaches by ``new(value)`` (in place; returns the
    node, itself replaced when ``segments`` is empty)."""
    if not segments:
        return new(node)
    head, rest = segments[0], segments[1:]
    for child in _children(node, head):
        node[child] = replace_path(node[child], rest, new)
    return node
