"""The session recording format: one episode of a cassette file holds one session.

An episode of a Realtime key is an ordinary episode (``status`` 101, the switch to
WebSocket) whose ``events`` go both ways and which says how the session ended::

    {"recorded_at": "...Z", "status": 101, "headers": {}, "latency_ms": 12,
     "model": "gpt-realtime", "audio": "keep",
     "events": [{"ms": 0, "dir": "server", "data": {"type": "session.created", ...}},
                {"ms": 3, "dir": "client", "data": {"type": "session.update", ...}},
                ...],
     "end": {"by": "client", "code": 1000, "reason": ""}}

``ms`` is the offset from the handshake, in the order the proxy saw the events: a
server event is taped before it is passed to the client and a client event before it
is passed upstream, so whatever a side sent in reaction to an event comes after it
on the tape. Replay relies on that order.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from seedtape.cassette import utc_now
from seedtape.realtime.events import client_form, encode, parse_frame, playable, server_form

SWITCHING_PROTOCOLS = 101
# A session is complete, and may be recorded, when the client closed it normally or
# the service closed it with 1000. Anything else (the upstream dropped the socket,
# closed with an error code, the client vanished) is never recorded.
CLIENT_NORMAL_CLOSE = frozenset({1000, 1001, 1005})
SERVER_NORMAL_CLOSE = frozenset({1000})


def client_data(frame: str | bytes) -> Any:
    """A client frame as stored: the canonical event, or the raw text of a non-JSON frame."""
    parsed = parse_frame(frame)
    if isinstance(parsed, dict):
        return client_form(parsed)
    return frame.decode("latin-1") if isinstance(frame, bytes) else frame


class Tape:
    """The events of one live session as they pass through the proxy."""

    def __init__(self, audio: str = "keep") -> None:
        self.audio = audio
        self.started = time.perf_counter()
        self.events: list[dict[str, Any]] = []
        self.end: dict[str, Any] | None = None
        self.latency_ms = 0
        self.subprotocol: str | None = None
        self.size = 0  # bytes of the server frames (the audio): a big session is saved off the loop

    def _ms(self) -> int:
        return int((time.perf_counter() - self.started) * 1000)

    def client(self, data: Any) -> None:
        self.events.append({"ms": self._ms(), "dir": "client", "data": data})

    def server(self, frame: str | bytes) -> Any:
        self.size += len(frame)
        parsed = parse_frame(frame)
        data = server_form(parsed, self.audio) if isinstance(parsed, dict) else parsed
        self.events.append({"ms": self._ms(), "dir": "server", "data": data})
        return parsed

    def ended(self, by: str, code: int, reason: str = "") -> None:
        if self.end is None:
            self.end = {"by": by, "code": code, "reason": reason}

    @property
    def complete(self) -> bool:
        end = self.end
        if end is None:
            return False
        normal = CLIENT_NORMAL_CLOSE if end["by"] == "client" else SERVER_NORMAL_CLOSE
        return bool(end["code"] in normal)

    def model(self) -> str | None:
        for event in self.events:
            data = event["data"]
            if event["dir"] == "server" and isinstance(data, dict) and data.get("type") == "session.created":
                session = data.get("session")
                model = session.get("model") if isinstance(session, dict) else None
                return model if isinstance(model, str) else None
        return None

    def episode(self) -> dict[str, Any]:
        episode: dict[str, Any] = {
            "recorded_at": utc_now(),
            "status": SWITCHING_PROTOCOLS,
            "headers": {},
            "latency_ms": self.latency_ms,
            "audio": self.audio,
            "events": self.events,
            "end": self.end or {"by": "client", "code": 1000, "reason": ""},
        }
        model = self.model()
        if model:
            episode["model"] = model
        if self.subprotocol:
            episode["subprotocol"] = self.subprotocol
        return episode


def is_session(episode: dict[str, Any]) -> bool:
    events = episode.get("events")
    return episode.get("status") == SWITCHING_PROTOCOLS and isinstance(events, list)


@dataclass(frozen=True, slots=True)
class Step:
    """One recorded event, ready for replay: a frame to send, or a client event to expect."""

    client: bool
    ms: int
    frame: str  # server: the text frame to send
    expected: Any  # client: the stored form to match


@dataclass(frozen=True, slots=True)
class Session:
    """An episode prepared once: frames encoded, the prelude (server events before the
    first client event) known, the end decided."""

    number: int
    steps: tuple[Step, ...]
    prelude: int  # how many steps come before the first client event
    end_by: str
    end_code: int
    end_reason: str
    subprotocol: str | None = None

    @classmethod
    def prepare(cls, number: int, episode: dict[str, Any]) -> Session:
        steps = []
        for event in episode.get("events") or []:
            if not isinstance(event, dict):
                continue
            data = event.get("data")
            ms = int(event.get("ms") or 0)
            if event.get("dir") == "client":
                steps.append(Step(True, ms, "", data))
            else:
                frame = encode(playable(data)) if isinstance(data, dict) else str(data)
                steps.append(Step(False, ms, frame, None))
        prelude = next((i for i, s in enumerate(steps) if s.client), len(steps))
        end = episode.get("end")
        if not isinstance(end, dict):
            end = {}
        subprotocol = episode.get("subprotocol")
        return cls(
            number,
            tuple(steps),
            prelude,
            str(end.get("by") or "client"),
            int(end.get("code") or 1000),
            str(end.get("reason") or ""),
            subprotocol if isinstance(subprotocol, str) else None,
        )

    def prelude_frames(self) -> tuple[str, ...]:
        return tuple(step.frame for step in self.steps[: self.prelude])

    def client_events(self) -> int:
        return sum(1 for step in self.steps if step.client)
