"""Crafted episodes for the drift and report tests (plain JSON, as cassettes hold them)."""

from __future__ import annotations

import json
from typing import Any

# The seed notebook's two unseeded red-panda stories (scenario 1).
STORY_A = (
    "In the lush forests of the Himalayas, a curious red panda named Pabu spent his days frolicking among the trees. "
    "One day, Pabu stumbled upon a hidden grove filled with the sweetest bamboo he'd ever tasted, but it was guarded "
    "by a mischievous monkey. With cleverness and a dash of bravery, Pabu outwitted the monkey, sharing the grove's "
    "bounty with his fellow pandas, becoming a legend in the forest."
)
STORY_B = (
    "In the lush forests of the Himalayas, a curious red panda named Pabu spent his days frolicking among the trees. "
    "One day, Pabu stumbled upon a hidden grove filled with the sweetest bamboo he'd ever tasted, which he decided to "
    "keep as his secret snack spot. Little did he know, his delightful discovery would soon attract a band of fellow "
    "pandas, leading to the most enchanting bamboo feasts the forest had ever seen."
)
# Index of the first differing word ("but" vs "which").
STORY_FIRST_DIVERGENCE = len(STORY_A.split("but it was")[0].split())


def chat_body(
    content: str | None = STORY_A,
    *,
    fingerprint: str | None = "fp_50a4261de5",
    model: str = "gpt-4o-2024-05-13",
    finish_reason: str = "stop",
    tool_calls: list[dict[str, Any]] | None = None,
    refusal: str | None = None,
    usage: dict[str, int] | None = None,
    response_id: str = "chatcmpl-1",
    created: int = 1700201417,
    extra_choices: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content, "tool_calls": tool_calls, "refusal": refusal}
    body: dict[str, Any] = {
        "id": response_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {"index": 0, "finish_reason": finish_reason, "message": message, "logprobs": None},
            *(extra_choices or []),
        ],
        "usage": usage or {"prompt_tokens": 27, "completion_tokens": 80, "total_tokens": 107},
    }
    if fingerprint is not None:
        body["system_fingerprint"] = fingerprint
    return body


def episode(body: dict[str, Any], status: int = 200) -> dict[str, Any]:
    result = {
        "recorded_at": "2024-05-20T10:00:00.000000Z",
        "status": status,
        "headers": {"content-type": "application/json"},
        "body": body,
        "latency_ms": 812,
    }
    if body.get("system_fingerprint"):
        result["system_fingerprint"] = body["system_fingerprint"]
    return result


def chat_episode(content: str | None = STORY_A, **kwargs: Any) -> dict[str, Any]:
    return episode(chat_body(content, **kwargs))


def tool_call(name: str, arguments: str, call_id: str = "call_1") -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def stream_episode(
    pieces: list[str],
    *,
    fingerprint: str | None = "fp_50a4261de5",
    model: str = "gpt-4o-2024-05-13",
    finish_reason: str = "stop",
    response_id: str = "chatcmpl-s1",
    obfuscation: str = "abc",
    usage: dict[str, int] | None = None,
) -> dict[str, Any]:
    """An Azure-style stream: a prompt-filter chunk first, deltas, usage, ``[DONE]``."""
    base = {"id": response_id, "object": "chat.completion.chunk", "created": 1700201417, "model": model}
    if fingerprint is not None:
        base["system_fingerprint"] = fingerprint
    events: list[dict[str, Any]] = [
        {
            "ms": 0,
            "data": {
                "id": "",
                "object": "",
                "created": 0,
                "model": "",
                "choices": [],
                "prompt_filter_results": [{"prompt_index": 0}],
            },
        }
    ]
    events.append(
        {
            "ms": 5,
            "data": {
                **base,
                "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}],
            },
        }
    )
    for position, piece in enumerate(pieces):
        chunk = {
            **base,
            "obfuscation": f"{obfuscation}{position}",
            "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
        }
        events.append({"ms": 10 + position, "data": chunk})
    events.append({"ms": 90, "data": {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish_reason}]}})
    events.append(
        {
            "ms": 91,
            "data": {
                **base,
                "choices": [],
                "usage": usage or {"prompt_tokens": 27, "completion_tokens": len(pieces), "total_tokens": 27 + len(pieces)},
            },
        }
    )
    events.append({"ms": 92, "data": "[DONE]"})
    result = {
        "recorded_at": "2024-05-20T10:00:00.000000Z",
        "status": 200,
        "headers": {"content-type": "text/event-stream"},
        "events": events,
        "latency_ms": 400,
    }
    if fingerprint:
        result["system_fingerprint"] = fingerprint
    return result


def pieces_of(text: str) -> list[str]:
    """Split a text into stream deltas the way a tokenizer roughly would (word + space)."""
    words = text.split(" ")
    return [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]


def context(cassette: str = "stories", key_seed: int = 1, episode_no: int = 1, **extra: Any) -> dict[str, Any]:
    key = f"{key_seed:02d}" + "ab" * 31
    return {
        "cassette": cassette,
        "key": key,
        "episode": episode_no,
        "mode": "verify",
        "request": {
            "api": "azure",
            "route": "chat/completions",
            "deployment": "gpt-4o",
            "api_version": "2024-06-01",
            "model": None,
            "seed": 42,
        },
        "ts": "2024-06-01T12:00:00.000000Z",
        **extra,
    }


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
