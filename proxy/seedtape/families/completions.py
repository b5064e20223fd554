"""Legacy completions: ``POST .../completions`` (key v1, unchanged).

Its stream chunks carry ``choices[].text`` instead of a delta and end with
``data: [DONE]``; verify compares each choice's text (drift kind ``completion``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from seedtape.families.base import Family, endpoint, last_fingerprint


class Completions(Family):
    name = "completions"
    endpoints = (endpoint("completions"),)
    drift_kind = "completion"

    def stream_fingerprint(self, events: Sequence[Any]) -> str | None:
        return last_fingerprint(events)

    def assemble(self, events: Sequence[Any]) -> Any:
        answer: dict[str, Any] = {"object": "text_completion", "choices": []}
        choices: dict[int, dict[str, Any]] = {}
        texts: dict[int, list[str]] = {}  # joined once, as chat's deltas (linear on a long stream)
        for chunk in events:
            if not isinstance(chunk, dict):
                continue
            for field in ("id", "model", "created", "system_fingerprint", "usage"):
                if chunk.get(field):
                    answer[field] = chunk[field]
            for part in chunk.get("choices") or []:
                index = part.get("index", 0)
                choice = choices.setdefault(index, {"index": index, "text": "", "finish_reason": None})
                texts.setdefault(index, []).append(part.get("text") or "")
                if part.get("finish_reason"):
                    choice["finish_reason"] = part["finish_reason"]
        for index, parts in texts.items():
            choices[index]["text"] = "".join(parts)
        answer["choices"] = [choices[i] for i in sorted(choices)]
        return answer
