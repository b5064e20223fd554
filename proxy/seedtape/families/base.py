"""One interface for every API family (as ``modes/base.py`` is for modes).

A family is everything seedtape must know about one OpenAI API to record, replay and
verify it: the paths it owns (after the URL shape, see ``routes.py``), how its request
body is read for the key, whether a request asked for the same answer every time,
how its stream ends and adds up to one answer, and what verify compares. The proxy
itself (engine, modes, store) never looks inside a body; it asks the family.

Defaults here are the chat completions API's, which most families share.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from seedtape.sse import DONE

# How a request body is read: parsed JSON; multipart form (fields plus a SHA-256 per
# file part, never the bytes); or no body (a GET/DELETE on an object id).
JSON, MULTIPART, NO_BODY = "json", "multipart", "none"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One path (and method) of a family.

    ``route`` is the key's ``route`` field and the name cassettes and reports show
    (``chat/completions``, ``responses/{id}/input_items``); ``pattern`` matches the path
    after the URL shape's prefix (``/v1/``, ``/openai/deployments/{d}/``, ...).
    """

    route: str
    method: str
    pattern: re.Pattern[str]
    body: str = JSON

    @property
    def on_object(self) -> bool:
        """A request about an object by id: its method and path stand in for a body."""
        return self.body == NO_BODY


def last_fingerprint(events: Sequence[Any]) -> str | None:
    """The ``system_fingerprint`` a chunk stream assembles to (the last chunk naming one
    wins, as in ``chat.assemble_stream``), found from the end without assembling."""
    for event in reversed(events):
        if isinstance(event, dict) and event.get("system_fingerprint"):
            value = event["system_fingerprint"]
            return value if isinstance(value, str) else None
    return None


def endpoint(route: str, method: str = "POST", body: str = JSON, pattern: str | None = None) -> Endpoint:
    """An endpoint whose path is its route unless a pattern is given (``{id}`` routes)."""
    return Endpoint(route, method, re.compile((pattern or re.escape(route)) + "/?"), body)


class StreamEnd(Enum):
    """What one stream event says about the stream it belongs to."""

    COMPLETE = "complete"  # the family's end marker: the stream is whole, save it
    ERROR = "error"  # the service ended the stream with an error: pass it on, do not save it


@dataclass(frozen=True, slots=True)
class Determinism:
    """Whether a request asked for the same answer every time, and why.

    ``reason`` is what the drift log and reports show beside the seed and temperature
    (``seed``, ``temperature 0``, ``embeddings: always``, ``no seed, temperature 0.7``).
    """

    deterministic: bool
    reason: str


@dataclass(frozen=True, slots=True)
class DriftPart:
    """One thing verify compares, as text: a message, a function call, a hash."""

    name: str
    text: str


class Family:
    name = ""
    endpoints: tuple[Endpoint, ...] = ()
    # ``x-seedtape-drift`` kinds drift/compare.py knows in detail (choices, vectors);
    # "parts" for families that say what to compare through ``drift_parts``.
    drift_kind = "parts"
    # What a 2xx non-stream answer may be: "json", "text" (stored as body_text),
    # "binary" (body_base64). Anything else is a broken answer (502, not recorded).
    answers: frozenset[str] = frozenset({"json"})

    def wants_stream(self, endpoint: Endpoint, body: Mapping[str, Any]) -> bool:
        """Did the request ask for a stream?"""
        return body.get("stream") is True

    def determinism(self, endpoint: Endpoint, body: Mapping[str, Any]) -> Determinism:
        """Did the caller ask for the same answer every time, and why (the family's rule)?

        The chat rule: ``seed`` set, or ``temperature`` 0. Families override this one
        method; :meth:`deterministic` only reads it, so auto mode's cache and verify's
        drift/variety split can never disagree.
        """
        if body.get("seed") is not None:
            return Determinism(True, "seed")
        if is_zero(body.get("temperature")):
            return Determinism(True, "temperature 0")
        return Determinism(False, f"no seed, temperature {temperature_text(body)}")

    def deterministic(self, endpoint: Endpoint, body: Mapping[str, Any]) -> bool:
        """Did the caller ask for the same answer every time (auto mode caches it)?

        Never overridden (tests/families checks): a family says why in :meth:`determinism`.
        """
        return self.determinism(endpoint, body).deterministic

    def stream_end(self, data: Any) -> StreamEnd | None:
        """Does this event end the stream? ``data: [DONE]`` for chat; an event with a
        top-level ``error`` is how the API breaks off a stream on purpose."""
        if data == DONE:
            return StreamEnd.COMPLETE
        if isinstance(data, dict) and data.get("error"):
            return StreamEnd.ERROR
        return None

    def assemble(self, events: Sequence[Any]) -> Any:
        """The one answer a complete stream stands for (what verify and ``show`` read)."""
        return {"events": [e for e in events if e != DONE]}

    def drift_parts(self, response: Any) -> list[DriftPart]:
        """What verify compares, for ``drift_kind == "parts"`` families."""
        return [DriftPart("body", str(response))]

    def fingerprint(self, response: Any) -> str | None:
        """The backend configuration the answer names (chat's ``system_fingerprint``)."""
        if isinstance(response, dict):
            value = response.get("system_fingerprint")
            return value if isinstance(value, str) and value else None
        return None

    def stream_fingerprint(self, events: Sequence[Any]) -> str | None:
        """``fingerprint`` of the answer a stream assembles to. A family says it without
        assembling where it can: a long stream is saved while its client waits for the
        end event, and assembling 100,000 chunks is most of that save."""
        return self.fingerprint(self.assemble(events))

    def produced_ids(self, response: Any) -> list[str]:
        """Ids of objects this answer created, that later requests may name (Responses)."""
        return []


def is_zero(value: Any) -> bool:
    """``0`` or ``0.0`` as a JSON number, or ``"0"`` as a multipart form field."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return False
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0


def temperature_text(body: Mapping[str, Any], default: str = "unset") -> str:
    """The request's temperature as reports show it: ``0.7``, or ``unset`` (the API's default)."""
    value = body.get("temperature")
    return default if value is None else str(value)


def is_positive(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return False
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
