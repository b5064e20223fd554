"""The replay misses an in-process proxy answered, noted where they are answered."""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

# The error types a replay answers with when it has nothing to serve.
MISS_TYPES = frozenset({"seedtape_cassette_miss", "seedtape_unrecorded_route", "seedtape_episodes_exhausted"})


@dataclass(frozen=True, slots=True)
class Miss:
    """A request the replay could not serve, with the proxy's explanation."""

    type: str
    message: str


Message = MutableMapping[str, Any]


class MissRecorder:
    """ASGI middleware that notes every replay miss the app answers.

    The SDK turns a miss into ``openai.NotFoundError``, which a test may catch and
    swallow; noting the miss where it is answered lets the pytest plugin fail the test
    with the proxy's message whatever the test did with the exception.
    """

    def __init__(self, app: Any, sink: list[Miss]) -> None:
        self.app = app
        self.sink = sink

    async def __call__(self, scope: Message, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        watching = False
        parts: list[bytes] = []

        async def watch(message: Message) -> None:
            nonlocal watching
            if message["type"] == "http.response.start":
                # Only 404s marked as a cache miss can be one; everything else is passed on untouched.
                watching = message["status"] == 404 and (b"x-seedtape-cache", b"miss") in [
                    (k.lower(), v) for k, v in message.get("headers", [])
                ]
            elif watching and message["type"] == "http.response.body":
                parts.append(message.get("body", b""))
                if not message.get("more_body", False):
                    self._note(b"".join(parts))
            await send(message)

        await self.app(scope, receive, watch)

    def _note(self, body: bytes) -> None:
        try:
            error = json.loads(body)["error"]
        except (ValueError, KeyError, TypeError):
            return
        if isinstance(error, dict) and error.get("type") in MISS_TYPES:
            self.sink.append(Miss(str(error["type"]), str(error.get("message", ""))))
