"""One recorded response (an episode), and the message a stream of chunks adds up to.

An episode is stored as plain JSON (DESIGN.md "Cassettes"): a JSON body, or for a
stream its events with their millisecond offsets. Everything that compares or shows a
response (verify, ``show``, ``ls``, import checks) reads it through
:func:`response_json` so that streamed and non-streamed answers look the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from seedtape.cassette import utc_now
from seedtape.headers import stored_response_headers

DONE = "[DONE]"


def make_episode(
    status: int,
    headers: Mapping[str, str],
    *,
    body: Any = None,
    events: list[dict[str, Any]] | None = None,
    latency_ms: int = 0,
    keep_headers: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    episode: dict[str, Any] = {
        "recorded_at": utc_now(),
        "status": status,
        "headers": stored_response_headers(headers, keep_headers),
        "latency_ms": latency_ms,
    }
    if events is not None:
        episode["events"] = events
    else:
        episode["body"] = body
    fingerprint = fingerprint_of(response_json(episode))
    if fingerprint:
        episode["system_fingerprint"] = fingerprint
    return episode


def is_stream(episode: Mapping[str, Any]) -> bool:
    return "events" in episode


def fingerprint_of(response: Any) -> str | None:
    if isinstance(response, dict):
        value = response.get("system_fingerprint")
        return value if isinstance(value, str) and value else None
    return None


def response_json(episode: Mapping[str, Any]) -> Any:
    """The response as one JSON document: the body, or the assembled stream."""
    if is_stream(episode):
        return assemble_stream([e["data"] for e in episode["events"]])
    return episode.get("body")


def assemble_stream(chunks: list[Any]) -> dict[str, Any]:
    """Fold ``chat.completion.chunk`` events into the ``chat.completion`` they stand for.

    Azure's first chunk carries only ``prompt_filter_results`` with an empty id and
    model; later chunks may carry ``content_filter_results``; tool calls arrive as
    deltas keyed by index. ``usage`` comes in the last chunk when the caller asked
    ``stream_options.include_usage``.
    """
    message: dict[str, Any] = {"object": "chat.completion", "choices": []}
    choices: dict[int, dict[str, Any]] = {}
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
            _fold_choice(choices, delta_choice)
    message["choices"] = [choices[i] for i in sorted(choices)]
    return message


def _fold_choice(choices: dict[int, dict[str, Any]], delta_choice: Mapping[str, Any]) -> None:
    index = delta_choice.get("index", 0)
    choice = choices.setdefault(index, {"index": index, "message": {"role": "assistant"}, "finish_reason": None})
    delta = delta_choice.get("delta") or {}
    target = choice["message"]
    if delta.get("role"):
        target["role"] = delta["role"]
    for text_field in ("content", "refusal"):
        if delta.get(text_field) is not None:
            target[text_field] = (target.get(text_field) or "") + delta[text_field]
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
    index = delta.get("index", len(calls))
    while len(calls) <= index:
        calls.append({"id": None, "type": "function", "function": {"name": "", "arguments": ""}})
    call = calls[index]
    if delta.get("id"):
        call["id"] = delta["id"]
    if delta.get("type"):
        call["type"] = delta["type"]
    function = delta.get("function") or {}
    if function.get("name"):
        call["function"]["name"] += function["name"]
    if function.get("arguments"):
        call["function"]["arguments"] += function["arguments"]
