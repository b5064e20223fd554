"""Verify for Realtime: a live session compared with its recording, as transcripts.

Each side's server events are assembled per response (in the order responses were
created) into what a reader would compare: the text (``response.output_text.delta``),
the audio transcript (``response.output_audio_transcript.delta``), a digest of the
audio (the SHA-256 of the per-delta digests, so kept and hashed audio compare alike),
function calls, and the response status. The result has the shape of a chat
completion with one choice per response, so the HTTP drift comparison classifies it
unchanged: ``content`` drift with its word diff, ``model`` (from ``session.created``),
``unrecorded``; a Realtime session has no ``system_fingerprint``, so fingerprint
status is always ``unknown``. Event ids, timings and usage never count.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

from seedtape.drift.compare import compare
from seedtape.realtime.events import SERVER_AUDIO_DELTAS, audio_digest, is_audio_digest
from seedtape.realtime.tape import Tape, is_session

if TYPE_CHECKING:
    from seedtape.engine import Engine
    from seedtape.realtime.handshake import Handshake


class VerifiedSession(Protocol):
    """What verify reads of a live session (``realtime/session.py``)."""

    engine: Engine
    key: str | None
    cassette: str
    occurrence: int
    mode: str
    handshake: Handshake

    async def save(self, tape: Tape) -> Any: ...


TEXT_DELTAS = frozenset({"response.output_text.delta", "response.text.delta"})
TRANSCRIPT_DELTAS = frozenset({"response.output_audio_transcript.delta", "response.audio_transcript.delta"})


def assemble(events: Iterable[Any]) -> dict[str, Any]:
    """A session's server events as one chat-completion-shaped document (see above)."""
    model: str | None = None
    responses: dict[str, dict[str, Any]] = {}
    usage: dict[str, int] = {}
    for event in events:
        if not isinstance(event, dict) or event.get("dir") != "server" or not isinstance(event.get("data"), dict):
            continue
        data = event["data"]
        kind = data.get("type")
        if kind == "session.created":
            session = data.get("session") if isinstance(data.get("session"), dict) else {}
            model = session.get("model") if isinstance(session.get("model"), str) else model
            continue
        response = data.get("response") if isinstance(data.get("response"), dict) else {}
        response_id = str(data.get("response_id") or response.get("id") or "")
        if not response_id:
            continue
        slot = responses.setdefault(response_id, {"text": "", "transcript": "", "audio": [], "audio_bytes": 0, "status": None, "calls": []})
        delta = data.get("delta")
        if kind in TEXT_DELTAS and isinstance(delta, str):
            slot["text"] += delta
        elif kind in TRANSCRIPT_DELTAS and isinstance(delta, str):
            slot["transcript"] += delta
        elif kind in SERVER_AUDIO_DELTAS:
            digest = delta if is_audio_digest(delta) else audio_digest(delta) if isinstance(delta, str) else None
            if digest is not None:
                slot["audio"].append(digest["sha256"])
                slot["audio_bytes"] += int(digest["bytes"])
        elif kind == "response.done":
            slot["status"] = response.get("status")
            for item in response.get("output") or []:
                if isinstance(item, dict) and item.get("type") == "function_call":
                    slot["calls"].append({"type": "function", "function": {"name": item.get("name"), "arguments": item.get("arguments")}})
            for name, value in (response.get("usage") or {}).items():
                if isinstance(value, int):
                    usage[name] = usage.get(name, 0) + value
    choices = []
    for index, slot in enumerate(responses.values()):
        parts = [slot["text"], slot["transcript"]]
        if slot["audio"]:
            combined = hashlib.sha256("".join(slot["audio"]).encode()).hexdigest()
            parts.append(f"[audio {slot['audio_bytes']} bytes sha256:{combined[:16]}]")
        message: dict[str, Any] = {"role": "assistant", "content": " ".join(p for p in parts if p)}
        if slot["calls"]:
            message["tool_calls"] = slot["calls"]
        choices.append({"index": index, "message": message, "finish_reason": slot["status"]})
    document: dict[str, Any] = {"object": "chat.completion", "choices": choices}
    if model:
        document["model"] = model
    if usage:
        document["usage"] = usage
    return document


def as_episode(episode: dict[str, Any]) -> dict[str, Any]:
    """A session episode as the HTTP comparison reads episodes: one assembled body."""
    return {"status": episode.get("status"), "recorded_at": episode.get("recorded_at"), "body": assemble(episode.get("events") or [])}


async def verify_session(session: VerifiedSession, tape: Tape) -> None:
    """Compare a complete live session with the occurrence's recorded one; log it."""
    engine = session.engine
    assert session.key is not None
    # Read in a worker thread (a session with its audio is megabytes), the team's
    # episodes included; a broken file is nothing to compare with (replay names it).
    episodes = [e for e in await engine.recorded_episodes(session.cassette, session.key) if is_session(e)]
    number = min(session.occurrence, len(episodes))
    recorded = episodes[number - 1] if episodes else None
    live = tape.episode()
    compared = engine.redactor.episode(live) if engine.redactor else live
    result = compare(as_episode(recorded) if recorded else None, as_episode(compared), engine.settings.ignore_paths)
    h = session.handshake
    context = {
        "cassette": session.cassette,
        "key": session.key,
        "episode": number or None,
        "mode": session.mode,
        "request": {
            "api": h.api,
            "route": "realtime",
            "deployment": h.deployment,
            "api_version": h.api_version,
            "model": h.model,
            # A session has no seed and no temperature below 0.6, so no family rule could
            # call it deterministic: it is compared as the scripted conversation it is.
            "deterministic": True,
            "determinism": "realtime session: compared as recorded",
        },
    }
    await engine.note_drift(result, context)
    if result.drifted and engine.settings.update:
        await session.save(tape)
