"""Chat completions: ``POST .../chat/completions`` (key v1, unchanged since the first cassettes).

Streams are ``chat.completion.chunk`` events ending with ``data: [DONE]``; they fold
into the ``chat.completion`` they stand for. Verify compares every choice's content,
tool calls, refusal and finish reason (drift/compare.py, kind ``chat``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from seedtape.families.base import Family, endpoint, last_fingerprint
from seedtape.sse import DONE


class Chat(Family):
    name = "chat"
    endpoints = (endpoint("chat/completions"),)
    drift_kind = "chat"

    def assemble(self, events: Sequence[Any]) -> Any:
        return assemble_stream([e for e in events if e != DONE])

    def stream_fingerprint(self, events: Sequence[Any]) -> str | None:
        return last_fingerprint(events)


def assemble_stream(chunks: Sequence[Any]) -> dict[str, Any]:
    """Fold ``chat.completion.chunk`` events into the ``chat.completion`` they stand for.

    Azure's first chunk carries only ``prompt_filter_results`` with an empty id and
    model; later chunks may carry ``content_filter_results``; tool calls arrive as
    deltas keyed by index. ``usage`` comes in the last chunk when the caller asked
    ``stream_options.include_usage``. Text deltas are gathered in lists and joined
    once: adding each to a growing string made a 100,000-event stream quadratic
    (50,000 deltas: 1 s; now linear).
    """
    message: dict[str, Any] = {"object": "chat.completion", "choices": []}
    choices: dict[int, dict[str, Any]] = {}
    texts: dict[tuple[int, str], list[str]] = {}
    for chunk in chunks:
        if not isinstance(chunk, dict):
            continue
        for field in ("id", "model", "created", "system_fingerprint", "service_tier"):
            if chunk.get(field):
                message[field] = chunk[field]
        if chunk.get("usage"):
            message["usage"] = chunk["usage"]
        if chunk.get("prompt_filter_results"):
            message["prompt_filter_results"] = chunk["prompt_filter_results"]
        for delta_choice in chunk.get("choices") or []:
            _fold_choice(choices, texts, delta_choice)
    for (index, text_field), parts in texts.items():
        choices[index]["message"][text_field] = "".join(parts)
    for choice in choices.values():
        for call in choice["message"].get("tool_calls") or []:
            function = call["function"]
            function["name"], function["arguments"] = "".join(function["name"]), "".join(function["arguments"])
    message["choices"] = [choices[i] for i in sorted(choices)]
    return message


def _fold_choice(choices: dict[int, dict[str, Any]], texts: dict[tuple[int, str], list[str]], delta_choice: Mapping[str, Any]) -> None:
    index = delta_choice.get("index", 0)
    choice = choices.setdefault(index, {"index": index, "message": {"role": "assistant"}, "finish_reason": None})
    delta = delta_choice.get("delta") or {}
    target = choice["message"]
    if delta.get("role"):
        target["role"] = delta["role"]
    for text_field in ("content", "refusal"):
        if delta.get(text_field) is not None:
            texts.setdefault((index, text_field), []).append(delta[text_field])
    for call in delta.get("tool_calls") or []:
        _fold_tool_call(target.setdefault("tool_calls", []), call)
    if delta_choice.get("finish_reason"):
        choice["finish_reason"] = delta_choice["finish_reason"]
    if delta_choice.get("content_filter_results"):
        choice["content_filter_results"] = delta_choice["content_filter_results"]
    if delta_choice.get("logprobs"):
        choice.setdefault("logprobs", {"content": []})
        choice["logprobs"]["content"].extend((delta_choice["logprobs"] or {}).get("content") or [])


def _fold_tool_call(calls: list[dict[str, Any]], delta: Mapping[str, Any]) -> None:
    """Name and arguments are gathered as lists of parts; ``assemble_stream`` joins them."""
    index = delta.get("index", len(calls))
    while len(calls) <= index:
        calls.append({"id": None, "type": "function", "function": {"name": [], "arguments": []}})
    call = calls[index]
    if delta.get("id"):
        call["id"] = delta["id"]
    if delta.get("type"):
        call["type"] = delta["type"]
    function = delta.get("function") or {}
    if function.get("name"):
        call["function"]["name"].append(function["name"])
    if function.get("arguments"):
        call["function"]["arguments"].append(function["arguments"])
