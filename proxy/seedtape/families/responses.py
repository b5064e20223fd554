"""The Responses API: ``POST .../responses`` and the requests about a response by id.

Paths: OpenAI ``/v1/responses``, Azure ``/openai/responses?api-version=`` (the SDK never
routes it through a deployment: the deployment travels as ``model``) and
``/openai/v1/responses``. ``GET responses/{id}``, ``GET responses/{id}/input_items``,
``DELETE responses/{id}`` and ``POST responses/{id}/cancel`` are keyed by their method
and path (and query), recorded like any request, and follow the episode rules: the
n-th poll of a ``background`` response replays the n-th recorded state.

There is no ``seed``: a create is deterministic when ``temperature`` is 0. A stream is
``event:``/``data:`` pairs with a ``sequence_number``, and ends after
``response.completed`` or ``response.incomplete`` (complete, recorded) or
``response.failed`` / an ``error`` event (passed on, not recorded) — never with
``data: [DONE]``. Verify compares the output text, each function call (arguments as
parsed JSON) and the status; ids, timestamps, sequence numbers and usage never count.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from seedtape.families.base import NO_BODY, Determinism, DriftPart, Endpoint, Family, StreamEnd, endpoint, is_zero, temperature_text

COMPLETE_EVENTS = frozenset({"response.completed", "response.incomplete"})
ERROR_EVENTS = frozenset({"response.failed", "error"})
_ID = r"responses/(?P<id>[^/]+)"
CREATE = endpoint("responses")


class Responses(Family):
    name = "responses"
    endpoints = (
        CREATE,
        endpoint("responses/{id}", "GET", NO_BODY, _ID),
        endpoint("responses/{id}", "DELETE", NO_BODY, _ID),
        endpoint("responses/{id}/input_items", "GET", NO_BODY, _ID + "/input_items"),
        endpoint("responses/{id}/cancel", "POST", NO_BODY, _ID + "/cancel"),
    )

    def wants_stream(self, endpoint: Endpoint, body: Mapping[str, Any]) -> bool:
        if endpoint.on_object:  # GET responses/{id}?stream=true resumes a background stream
            query = body.get("query") or {}
            return endpoint.method == "GET" and str(query.get("stream", "")).lower() == "true"
        return body.get("stream") is True

    def determinism(self, endpoint: Endpoint, body: Mapping[str, Any]) -> Determinism:
        # A request about an object reads state that changes (a background response
        # moves from queued to completed): never served from the cache past its episodes.
        if endpoint is not CREATE:
            return Determinism(False, "reads a stored response, whose state changes")
        if is_zero(body.get("temperature")):
            return Determinism(True, "temperature 0")
        return Determinism(False, f"temperature {temperature_text(body)} (the Responses API has no seed)")

    def stream_end(self, data: Any) -> StreamEnd | None:
        if not isinstance(data, dict):
            return None
        kind = data.get("type")
        if kind in COMPLETE_EVENTS:
            return StreamEnd.COMPLETE
        if kind in ERROR_EVENTS or (data.get("error") and kind is None):
            return StreamEnd.ERROR
        return None

    def assemble(self, events: Sequence[Any]) -> Any:
        """The final ``Response`` object: the terminal event carries it whole."""
        final: dict[str, Any] | None = None
        items: dict[int, Any] = {}
        for event in events:
            if not isinstance(event, dict):
                continue
            if isinstance(event.get("response"), dict):
                final = event["response"]
            if event.get("type") == "response.output_item.done" and isinstance(event.get("output_index"), int):
                items[event["output_index"]] = event.get("item")
        if final is None:
            return {"object": "response", "output": [items[i] for i in sorted(items)]}
        if not final.get("output") and items:  # the API may leave output out of the last event
            final = {**final, "output": [items[i] for i in sorted(items)]}
        return final

    def drift_parts(self, response: Any) -> list[DriftPart]:
        if not isinstance(response, dict):
            return [DriftPart("body", str(response))]
        parts = [DriftPart("status", str(response.get("status")))]
        for item in response.get("output") or []:
            if not isinstance(item, dict):
                continue
            if item.get("type") == "message":
                parts.append(DriftPart("output_text", output_text(item)))
            elif item.get("type") == "function_call":
                parts.append(DriftPart(f"function_call {item.get('name')}", canonical_arguments(item.get("arguments"))))
        return parts

    def fingerprint(self, response: Any) -> str | None:
        return None  # the Responses API names no backend configuration

    def stream_fingerprint(self, events: Sequence[Any]) -> str | None:
        return None

    def produced_ids(self, response: Any) -> list[str]:
        if isinstance(response, dict) and response.get("object") == "response" and isinstance(response.get("id"), str):
            return [response["id"]]
        return []


def output_text(item: Mapping[str, Any]) -> str:
    """What the SDK's ``output_text`` joins for one message item."""
    return "".join(
        part.get("text") or "" for part in item.get("content") or [] if isinstance(part, dict) and part.get("type") == "output_text"
    )


def canonical_arguments(arguments: Any) -> str:
    """Arguments as sorted JSON when they parse (spacing and key order are not drift)."""
    if not isinstance(arguments, str):
        return json.dumps(arguments, sort_keys=True, ensure_ascii=False)
    try:
        return json.dumps(json.loads(arguments), sort_keys=True, ensure_ascii=False)
    except ValueError:
        return arguments
