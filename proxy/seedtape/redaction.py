"""Redaction of what is written: request and response bodies, not what is matched.

Prompts and answers can hold things that must not reach git (an e-mail address, an
account number, a customer's name in a system prompt). ``--redact REGEX`` replaces
every match inside every string value; ``--redact-path PATH`` replaces whole values
(``messages.*.content``, ``user``, ``choices.*.message.content``; the syntax of
``--ignore-path``). Both apply to the cassette's request body, to a response body,
and to every event of a stream (a path there is read from the event's JSON, e.g.
``choices.*.delta.content``).

Matching keeps working because the key is made from the request as the client sent
it, before anything is redacted: the file stores the key, and the next identical
request finds it. What the file shows is the redacted copy, and a replay serves the
redacted answer. Verify redacts the live answer the same way before comparing, so a
redacted field is never reported as drift and never reaches the drift log.

A regex sees one string at a time: a secret split across two stream chunks is not
matched there (the non-streamed answer, or a path, catches it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from seedtape.jsonpath import parse_path, replace_path
from seedtape.sse import DONE

REDACTED = "[REDACTED]"


@dataclass(frozen=True, slots=True)
class Redactor:
    patterns: tuple[re.Pattern[str], ...] = ()
    paths: tuple[tuple[str, ...], ...] = ()

    @classmethod
    def from_lists(cls, patterns: Iterable[str] = (), paths: Iterable[str] = ()) -> Redactor:
        """Compile once at start-up; a bad regex or path raises ValueError there."""
        compiled = []
        for pattern in patterns:
            try:
                compiled.append(re.compile(pattern))
            except re.error as exc:
                raise ValueError(f"invalid --redact pattern {pattern!r}: {exc}") from exc
        parsed = tuple(parse_path(path, "--redact-path") for path in paths)
        return cls(tuple(compiled), parsed)

    def __bool__(self) -> bool:
        return bool(self.patterns or self.paths)

    def value(self, value: Any) -> Any:
        """A redacted copy of one JSON document (the input is left as it was)."""
        out = _copy(value)
        for path in self.paths:
            out = replace_path(out, path, _redacted)
        return self._strings(out) if self.patterns else out

    def request(self, stored_request: dict[str, Any]) -> dict[str, Any]:
        """The cassette's ``request`` block with its body redacted (target fields kept)."""
        return {**stored_request, "body": self.value(stored_request.get("body"))}

    def episode(self, episode: dict[str, Any]) -> dict[str, Any]:
        """An episode as it may be written: body, or every event's data, redacted."""
        out = dict(episode)
        if "events" in episode:
            out["events"] = [
                {**event, "data": event.get("data") if event.get("data") == DONE else self.value(event.get("data"))}
                for event in episode["events"]
            ]
        elif "body" in episode:
            out["body"] = self.value(episode["body"])
        return out

    def _strings(self, node: Any) -> Any:
        if isinstance(node, str):
            for pattern in self.patterns:
                node = pattern.sub(REDACTED, node)
            return node
        if isinstance(node, dict):
            return {k: self._strings(v) for k, v in node.items()}
        if isinstance(node, list):
            return [self._strings(v) for v in node]
        return node


def _copy(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _copy(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_copy(v) for v in node]
    return node


def _redacted(value: Any) -> str:
    return REDACTED
