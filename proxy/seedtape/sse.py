"""Server-Sent Events as OpenAI and Azure frame them.

Parsing of upstream streams is httpx-sse's job; this module only turns one recorded
event back into its bytes and one received event into what a cassette stores.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

# The chat and legacy completions streams' last event; the Responses API sends none.
DONE = "[DONE]"


def encode_event(data: Any, event: str | None = None) -> bytes:
    """One SSE event in the framing OpenAI and Azure use: ``data: <json>`` and a blank line."""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    head = f"event: {event}\n" if event and event != "message" else ""
    return (head + "data: " + payload + "\n\n").encode("utf-8")


def event_data(text: str) -> Any:
    """The stored form of one ``data:`` payload: parsed JSON, or the text itself."""
    if text == DONE:
        return DONE
    try:
        return json.loads(text)
    except ValueError:
        return text


def glance(text: str) -> Any:
    """``event_data`` for a look at an event as it passes (its type, an end marker).

    orjson parses an event three times faster than the standard library, and every
    event of a passing stream is looked at. It reads integers beyond 64 bits as floats
    (what is stored is ``event_data``'s exact parse); what it refuses (``NaN``, ``1e400``)
    goes to the standard library."""
    if text == DONE:
        return DONE
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return event_data(text)
