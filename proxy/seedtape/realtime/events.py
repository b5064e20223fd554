"""Realtime events as they are stored and matched: canonical client events, audio digests.

A client event is stored in the form it is matched in: ``event_id`` dropped (the SDK
leaves it out, other clients number their events), top-level nulls dropped, keys
sorted, integral floats as ints (the key's ``canonical``), and every base64 ``audio``
string replaced by ``{"sha256": ..., "bytes": ...}`` of the decoded audio. A live
event is put in the same form before it is compared, so a replay matches what was
sent, not how it was spelled, and a cassette never holds the microphone's audio.

Server events are stored as they came, audio included (a replay plays the same
audio), unless the audio policy is ``hash``: then every audio delta is stored as its
digest too, and a replay sends silence of the same length in its place.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from seedtape.key import canonical

# Server events whose ``delta`` is base64 audio (GA name, then the beta interface's).
SERVER_AUDIO_DELTAS = frozenset({"response.output_audio.delta", "response.audio.delta"})
ABSENT = object()
_SHOWN = 60


def audio_digest(value: str) -> dict[str, Any]:
    """SHA-256 and size of base64 audio (of the text itself if it is not base64)."""
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        data = value.encode("utf-8", "surrogatepass")
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def is_audio_digest(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"sha256", "bytes"} and isinstance(value.get("bytes"), int)


def silence(digest: Mapping[str, Any]) -> str:
    """Base64 of as many zero bytes as the hashed audio had (pcm16 silence)."""
    return base64.b64encode(bytes(int(digest.get("bytes", 0)))).decode("ascii")


def _hash_audio(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: (audio_digest(v) if k == "audio" and isinstance(v, str) else _hash_audio(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [_hash_audio(v) for v in node]
    return node


def client_form(event: Mapping[str, Any]) -> dict[str, Any]:
    """The stored and matched form of a client event (see the module docstring)."""
    kept = {k: v for k, v in event.items() if k != "event_id" and v is not None}
    form: dict[str, Any] = canonical(_hash_audio(kept))
    return form


def server_form(event: dict[str, Any], audio: str) -> dict[str, Any]:
    """A server event as stored: as it came, or with its audio hashed (``audio="hash"``)."""
    if audio != "hash":
        return event
    out = _hash_audio(event)
    if event.get("type") in SERVER_AUDIO_DELTAS and isinstance(event.get("delta"), str):
        out["delta"] = audio_digest(event["delta"])
    hashed: dict[str, Any] = out
    return hashed


def playable(event: dict[str, Any]) -> dict[str, Any]:
    """A stored server event as a replay sends it: hashed audio becomes silence."""
    if not _has_digest(event):
        return event
    return _unhash(event)  # type: ignore[no-any-return]


def _has_digest(node: Any) -> bool:
    if isinstance(node, dict):
        return is_audio_digest(node) or any(_has_digest(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_digest(v) for v in node)
    return False


def _unhash(node: Any) -> Any:
    if is_audio_digest(node):
        return silence(node)
    if isinstance(node, dict):
        return {k: _unhash(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_unhash(v) for v in node]
    return node


def parse_frame(frame: str | bytes) -> Any:
    """A frame's JSON, or the frame itself when it is not JSON (kept as it came)."""
    try:
        return json.loads(frame)
    except (ValueError, UnicodeDecodeError):
        return frame


def encode(event: Any) -> str:
    """A server event as the text frame a replay sends (compact, UTF-8)."""
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))


def short(value: Any) -> str:
    if value is ABSENT:
        return "(absent)"
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def differences(wanted: Any, recorded: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """Every leaf where two JSON values differ: ``(dot.path, wanted, recorded)``.

    Objects are compared key by key and lists item by item, so a changed prompt is
    named by where it is (``item.content.0.text``), not as a whole event.
    """
    if isinstance(wanted, dict) and isinstance(recorded, dict):
        out: list[tuple[str, Any, Any]] = []
        for name in sorted(set(wanted) | set(recorded)):
            sub = f"{path}.{name}" if path else str(name)
            out += differences(wanted.get(name, ABSENT), recorded.get(name, ABSENT), sub)
        return out
    if isinstance(wanted, list) and isinstance(recorded, list) and len(wanted) == len(recorded):
        out = []
        for index, (a, b) in enumerate(zip(wanted, recorded, strict=True)):
            out += differences(a, b, f"{path}.{index}" if path else str(index))
        return out
    if wanted is recorded or (wanted is not ABSENT and recorded is not ABSENT and wanted == recorded):
        return []
    return [(path or "(event)", wanted, recorded)]


def describe(diffs: list[tuple[str, Any, Any]], limit: int = 6) -> str:
    """``path: wanted != recorded; ...`` for a message (the first ``limit``)."""
    parts = [f"{path}: {short(a)} != {short(b)}" for path, a, b in diffs[:limit]]
    if len(diffs) > limit:
        parts.append(f"... and {len(diffs) - limit} more")
    return "; ".join(parts)
