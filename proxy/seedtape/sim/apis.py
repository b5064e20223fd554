"""The simulator's answers for the API families beyond chat: Responses, moderations,
audio (transcriptions, translations, speech) and images.

Shapes follow what the openai SDK parses (its types and the wire format it expects):
Responses objects and their typed stream events with ``sequence_number`` and no
``[DONE]``; ``transcript.text.*`` events; a real WAV or MP3 for speech; a real PNG for
images. Text comes from the same seed-aware generator as chat (``sim/text.py``), so a
Responses request at temperature 0 answers the same text every time and one above 0
varies, the way the service does.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import random
import struct
import time
import uuid
import wave
import zlib
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from seedtape.sim import text as sim_text

# (body, messages, max words, choice index) -> text; the simulator's seed-aware sampler.
Sampler = Callable[[Mapping[str, Any], list[dict[str, Any]], "int | None", int], str]
MAX_STORED = 1024
FLAG_WORDS = {
    "violence": {"kill", "attack", "hurt", "murder", "weapon"},
    "hate": {"hate", "racist"},
    "harassment": {"idiot", "stupid", "loser"},
    "self-harm": {"suicide"},
}
ALL_CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)


class ApiError(ValueError):
    """An error the service itself would answer (status, message, code)."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


# --- Responses ----------------------------------------------------------------------------


def input_messages(body: Mapping[str, Any], history: Sequence[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """The Responses ``input`` (and ``instructions``) as chat messages, after the history
    of a ``previous_response_id`` chain."""
    messages = list(history)
    if isinstance(body.get("instructions"), str):
        messages.insert(0, {"role": "system", "content": body["instructions"]})
    raw = body.get("input")
    if isinstance(raw, str):
        messages.append({"role": "user", "content": raw})
    elif isinstance(raw, list):
        for item in raw:
            if not isinstance(item, dict):
                continue
            if item.get("type") == "function_call_output":
                messages.append({"role": "tool", "content": str(item.get("output", ""))})
            elif "role" in item:
                content = item.get("content")
                if isinstance(content, list):
                    content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
                messages.append({"role": str(item["role"]), "content": content or ""})
    if not any(m.get("role") in ("user", "tool") for m in messages):
        raise ApiError(400, "Missing required parameter: 'input'.", "missing_required_parameter")
    return messages


def input_items(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``GET responses/{id}/input_items``: the input as items with ids."""
    raw = body.get("input")
    items = [{"role": "user", "content": [{"type": "input_text", "text": raw}]}] if isinstance(raw, str) else list(raw or [])
    out = []
    for item in items:
        if isinstance(item, dict):
            entry = {"type": "message", "status": "completed", **item, "id": "msg_" + uuid.uuid4().hex[:24]}
            if isinstance(entry.get("content"), str):
                entry["content"] = [{"type": "input_text", "text": entry["content"]}]
            out.append(entry)
    return out


def _function_tools(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [t for t in body.get("tools") or [] if isinstance(t, dict) and t.get("type") == "function" and t.get("name")]


def _calls(body: Mapping[str, Any], messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Function calls the model makes: tools the last user turn names (or tool_choice forces)."""
    tools = _function_tools(body)
    choice = body.get("tool_choice")
    if not tools or choice == "none" or messages[-1].get("role") != "user":
        return []
    prompt = sim_text.message_text(messages[-1])
    if isinstance(choice, dict) and choice.get("name"):
        chosen = [t for t in tools if t.get("name") == choice["name"]]
    else:
        asked = sim_text.words_of(prompt)
        chosen = [t for t in tools if asked & sim_text.words_of(f"{t.get('name', '')} {t.get('description', '')}")]
        if not chosen and choice == "required":
            chosen = tools[:1]
    key = {"input": body.get("input"), "tools": body.get("tools"), "model": body.get("model")}
    return [
        {
            "type": "function_call",
            "id": "fc_" + uuid.uuid4().hex[:24],
            "call_id": "call_" + uuid.uuid4().hex[:24],
            "name": t["name"],
            "arguments": sim_text.tool_arguments({"name": t["name"], "parameters": t.get("parameters") or {}}, prompt, key),
            "status": "completed",
        }
        for t in chosen
    ]


def _structured(text: str, body: Mapping[str, Any]) -> str:
    """``text.format`` json_schema (``responses.parse``) gets an object filling the schema."""
    fmt = (body.get("text") or {}).get("format") if isinstance(body.get("text"), dict) else None
    if not isinstance(fmt, dict) or fmt.get("type") not in ("json_schema", "json_object"):
        return text
    schema = fmt.get("schema")
    if isinstance(schema, dict):
        value = sim_text.value_for_schema(schema, "", text, random.Random(sim_text.stable_hash("json", text)))
        return json.dumps(value, ensure_ascii=False)
    return json.dumps({"answer": text}, ensure_ascii=False)


def create_response(body: Mapping[str, Any], sample: Sampler, model: str, history: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A completed ``Response`` for a create request."""
    if not body.get("model"):
        raise ApiError(400, "Missing required parameter: 'model'.", "missing_required_parameter")
    temperature = body.get("temperature")
    if temperature is not None and (
        isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 <= temperature <= 2
    ):
        raise ApiError(400, f"Invalid 'temperature': {temperature!r}. Expected a number between 0 and 2.", "invalid_value")
    messages = input_messages(body, history)
    max_words = body.get("max_output_tokens") if isinstance(body.get("max_output_tokens"), int) else None
    calls = _calls(body, messages)
    output: list[dict[str, Any]] = list(calls)
    status, incomplete = "completed", None
    if not calls:
        sampling = {"model": body.get("model"), "messages": messages, "temperature": temperature}
        text = sample(sampling, messages, max_words, 0)
        words = text.split()
        if max_words is not None and len(words) > max_words:
            text, status, incomplete = " ".join(words[:max_words]), "incomplete", {"reason": "max_output_tokens"}
        text = _structured(text, body)
        output.append(
            {
                "type": "message",
                "id": "msg_" + uuid.uuid4().hex[:24],
                "status": "completed" if status == "completed" else "incomplete",
                "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
            }
        )
    used_in = sum(len(sim_text.message_text(m).split()) + 4 for m in messages)
    used_out = sum(len(json.dumps(item).split()) for item in output)
    return {
        "id": "resp_" + uuid.uuid4().hex,
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "background": bool(body.get("background")),
        "error": None,
        "incomplete_details": incomplete,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": model,
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "store": body.get("store", True),
        "temperature": 1.0 if temperature is None else temperature,
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": list(body.get("tools") or []),
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": {
            "input_tokens": used_in,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": used_out,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": used_in + used_out,
        },
        "user": None,
        "metadata": body.get("metadata") or {},
    }


def response_events(final: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The typed events a streamed create sends, numbered, ending with the terminal event."""
    events: list[dict[str, Any]] = []
    opening = {**final, "status": "in_progress", "output": [], "usage": None, "incomplete_details": None}
    events.append({"type": "response.created", "response": opening})
    events.append({"type": "response.in_progress", "response": opening})
    for index, item in enumerate(final.get("output") or []):
        if item.get("type") == "function_call":
            events.append(
                {"type": "response.output_item.added", "output_index": index, "item": {**item, "arguments": "", "status": "in_progress"}}
            )
            args = str(item.get("arguments", ""))
            for at in range(0, len(args), 8):
                events.append(
                    {
                        "type": "response.function_call_arguments.delta",
                        "item_id": item["id"],
                        "output_index": index,
                        "delta": args[at : at + 8],
                    }
                )
            events.append(
                {"type": "response.function_call_arguments.done", "item_id": item["id"], "output_index": index, "arguments": args}
            )
        else:
            text = item["content"][0]["text"]
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            events.append(
                {"type": "response.output_item.added", "output_index": index, "item": {**item, "status": "in_progress", "content": []}}
            )
            events.append(
                {"type": "response.content_part.added", "item_id": item["id"], "output_index": index, "content_index": 0, "part": part}
            )
            for piece in _pieces(text):
                events.append(
                    {
                        "type": "response.output_text.delta",
                        "item_id": item["id"],
                        "output_index": index,
                        "content_index": 0,
                        "delta": piece,
                        "logprobs": [],
                    }
                )
            events.append(
                {
                    "type": "response.output_text.done",
                    "item_id": item["id"],
                    "output_index": index,
                    "content_index": 0,
                    "text": text,
                    "logprobs": [],
                }
            )
            events.append(
                {
                    "type": "response.content_part.done",
                    "item_id": item["id"],
                    "output_index": index,
                    "content_index": 0,
                    "part": {**part, "text": text},
                }
            )
        events.append({"type": "response.output_item.done", "output_index": index, "item": item})
    terminal = "response.completed" if final.get("status") == "completed" else "response.incomplete"
    events.append({"type": terminal, "response": dict(final)})
    return [{**event, "sequence_number": number} for number, event in enumerate(events)]


def _pieces(text: str) -> list[str]:
    words = text.split(" ")
    return [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]


class StoredResponses:
    """Responses the simulator created, for retrieve, input_items, delete and cancel.

    A ``background`` response is answered ``queued`` at first; each retrieve moves it
    one state on (queued, in_progress, completed), which is what a polling client sees.
    Bounded: the oldest are forgotten.
    """

    def __init__(self) -> None:
        self._items: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def add(self, final: dict[str, Any], body: Mapping[str, Any], messages: list[dict[str, Any]]) -> dict[str, Any]:
        states = ["queued", "in_progress", "completed"] if body.get("background") else []
        self._items[final["id"]] = {"final": final, "states": states, "input": input_items(body), "messages": messages}
        while len(self._items) > MAX_STORED:
            self._items.popitem(last=False)
        return self.current(final["id"], advance=False)

    def history(self, response_id: str) -> list[dict[str, Any]]:
        entry = self._get(response_id)
        said = [
            {"role": "assistant", "content": item["content"][0]["text"]}
            for item in entry["final"].get("output") or []
            if item.get("type") == "message"
        ]
        return [*entry["messages"], *said]

    def _get(self, response_id: str) -> dict[str, Any]:
        entry = self._items.get(response_id)
        if entry is None:
            raise ApiError(404, f"Response with id '{response_id}' not found.", "response_not_found")
        return entry

    def current(self, response_id: str, advance: bool = True) -> dict[str, Any]:
        entry = self._get(response_id)
        states = entry["states"]
        if not states:
            return dict(entry["final"])
        state = states.pop(0) if advance and len(states) > 1 else states[0]
        if state == "completed":
            return dict(entry["final"])
        return {**entry["final"], "status": state, "output": [], "usage": None}

    def items(self, response_id: str) -> dict[str, Any]:
        data = self._get(response_id)["input"]
        return {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": False,
        }

    def delete(self, response_id: str) -> dict[str, Any]:
        self._get(response_id)
        del self._items[response_id]
        return {"id": response_id, "object": "response", "deleted": True}

    def cancel(self, response_id: str) -> dict[str, Any]:
        entry = self._get(response_id)
        if not entry["final"].get("background"):
            raise ApiError(400, "Only responses created with background=true can be cancelled.", "invalid_request")
        entry["states"] = []
        entry["final"] = {**entry["final"], "status": "cancelled", "output": []}
        return dict(entry["final"])


# --- moderations --------------------------------------------------------------------------


def moderation(body: Mapping[str, Any]) -> dict[str, Any]:
    raw = body.get("input")
    texts = (
        [raw]
        if isinstance(raw, str)
        else [t if isinstance(t, str) else str(t.get("text", "")) for t in raw or [] if isinstance(t, (str, dict))]
    )
    if not texts:
        raise ApiError(400, "Missing required parameter: 'input'.", "missing_required_parameter")
    results = []
    for text in texts:
        said = sim_text.words_of(text)
        hits = {name for name, words in FLAG_WORDS.items() if said & words}
        categories = {name: name in hits for name in ALL_CATEGORIES}
        scores = {name: (0.91 if name in hits else 0.0002) for name in ALL_CATEGORIES}
        results.append(
            {
                "flagged": bool(hits),
                "categories": categories,
                "category_scores": scores,
                "category_applied_input_types": {name: ["text"] for name in ALL_CATEGORIES},
            }
        )
    return {"id": "modr-" + uuid.uuid4().hex[:24], "model": body.get("model") or "omni-moderation-latest", "results": results}


# --- audio --------------------------------------------------------------------------------

_SPOKEN = (
    "look at all those chickens",
    "the quick brown fox jumps over the lazy dog",
    "seedtape replays this answer offline",
    "the weather in paris is mild today",
    "please record the meeting notes",
    "red pandas sleep in the bamboo forest",
)


def transcript(form: Mapping[str, Any], entropy: random.Random, translate: bool) -> str:
    """What the audio says: chosen by the file's hash (the same file, the same words);
    a temperature above 0 varies the ending, as sampling does."""
    file = form.get("file")
    digest = file.get("sha256", "") if isinstance(file, dict) else ""
    rng = random.Random(sim_text.stable_hash("audio", digest, form.get("prompt"), form.get("language"), translate))
    words = rng.choice(_SPOKEN).split()
    if _positive(form.get("temperature")) and entropy.random() < 0.5:
        words = [*words[:-1], entropy.choice(["today", "again", "now", "please"])]
    sentence = " ".join(words)
    return sentence[:1].upper() + sentence[1:] + "."


def _positive(value: Any) -> bool:
    try:
        return float(value) > 0
    except (TypeError, ValueError):
        return False


def transcription_answer(text: str, form: Mapping[str, Any]) -> tuple[str, Any]:
    """``(kind, payload)``: kind "json" (a dict), "text" (a str) or "stream" (events)."""
    fmt = str(form.get("response_format") or "json")
    seconds = round(0.4 * len(text.split()), 2)
    if str(form.get("stream", "")).lower() == "true":
        events: list[Any] = [{"type": "transcript.text.delta", "delta": piece, "logprobs": None} for piece in _pieces(text)]
        usage = {"type": "tokens", "input_tokens": 12, "output_tokens": len(text.split()), "total_tokens": 12 + len(text.split())}
        events.append({"type": "transcript.text.done", "text": text, "usage": usage})
        return "stream", events
    if fmt == "text":
        return "text", text + "\n"
    if fmt == "srt":
        return "text", f"1\n00:00:00,000 --> 00:00:{seconds:06.3f}\n{text}\n\n".replace(".", ",", 1)
    if fmt == "vtt":
        return "text", f"WEBVTT\n\n00:00:00.000 --> 00:00:{seconds:06.3f}\n{text}\n\n"
    if fmt == "verbose_json":
        segment = {"id": 0, "start": 0.0, "end": seconds, "text": " " + text, "tokens": [], "temperature": 0.0}
        return "json", {
            "task": "transcribe",
            "language": form.get("language") or "english",
            "duration": seconds,
            "text": text,
            "segments": [segment],
        }
    return "json", {"text": text, "usage": {"type": "duration", "seconds": math.ceil(seconds)}}


def speech(body: Mapping[str, Any]) -> tuple[bytes, str]:
    """A short real audio file for the input text: the same text gives the same bytes."""
    text = body.get("input")
    if not isinstance(text, str) or not text:
        raise ApiError(400, "Missing required parameter: 'input'.", "missing_required_parameter")
    digest = hashlib.sha256(json.dumps([text, body.get("voice"), body.get("model")], sort_keys=True).encode()).hexdigest()
    fmt = body.get("response_format") or "mp3"
    if fmt == "wav" or fmt == "pcm":
        return _wav(text, digest), "audio/wav"
    return _mp3(text, digest), "audio/mpeg"


def _wav(text: str, digest: str, rate: int = 8000) -> bytes:
    seconds = min(2.0, 0.08 * len(text.split()) + 0.1)
    pitch = 220 + int(digest[:4], 16) % 440
    frames = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * pitch * n / rate))) for n in range(int(seconds * rate)))
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(frames)
    return out.getvalue()


def _mp3(text: str, digest: str) -> bytes:
    """An ID3v2.3 tag naming the text's hash, then MPEG-1 Layer III frames of silence."""
    title = f"seedtape sim {digest[:16]}".encode("latin-1")
    frame = b"TIT2" + struct.pack(">I", len(title) + 1) + b"\x00\x00" + b"\x00" + title
    size = len(frame)
    syncsafe = bytes([(size >> 21) & 0x7F, (size >> 14) & 0x7F, (size >> 7) & 0x7F, size & 0x7F])
    tag = b"ID3\x03\x00\x00" + syncsafe + frame
    silent = b"\xff\xfb\x90\x64" + bytes(413)  # 128 kbit/s, 44.1 kHz, 26 ms of silence
    return tag + silent * max(4, 3 * len(text.split()))


def speech_events(audio: bytes) -> list[dict[str, Any]]:
    """``stream_format: sse``: the audio in base64 pieces, then the usage."""
    pieces = [audio[at : at + 4096] for at in range(0, len(audio), 4096)]
    events: list[dict[str, Any]] = [{"type": "speech.audio.delta", "audio": base64.b64encode(p).decode("ascii")} for p in pieces]
    events.append(
        {"type": "speech.audio.done", "usage": {"input_tokens": 8, "output_tokens": len(pieces) * 10, "total_tokens": 8 + len(pieces) * 10}}
    )
    return events


# --- images -------------------------------------------------------------------------------


def images(body: Mapping[str, Any], entropy: random.Random, edit: bool) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
    """An ``ImagesResponse`` (and its stream events when ``stream`` is asked for).

    Every image is a real 8x8 PNG whose colours come from the prompt and a fresh draw:
    asking again is asking for another image, as with the service.
    """
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise ApiError(400, "Missing required parameter: 'prompt'.", "missing_required_parameter")
    try:
        count = int(body.get("n") or 1)
    except (TypeError, ValueError):
        count = 1
    if not 1 <= count <= 10:
        raise ApiError(400, "Invalid 'n': must be between 1 and 10.", "invalid_value")
    model = str(body.get("model") or "gpt-image-1")
    as_url = body.get("response_format") == "url" or (model.startswith("dall-e") and body.get("response_format") != "b64_json")
    data = []
    for _ in range(count):
        png = _png(prompt, entropy.getrandbits(32))
        if as_url:
            data.append({"url": f"https://sim.local/images/{hashlib.sha256(png).hexdigest()[:16]}.png", "revised_prompt": prompt})
        else:
            data.append({"b64_json": base64.b64encode(png).decode("ascii")})
    usage = {
        "input_tokens": len(prompt.split()),
        "input_tokens_details": {"image_tokens": 0, "text_tokens": len(prompt.split())},
        "output_tokens": 64 * count,
        "total_tokens": len(prompt.split()) + 64 * count,
    }
    answer = {"created": int(time.time()), "data": data, "size": body.get("size") or "1024x1024", "usage": usage}
    if str(body.get("stream", "")).lower() != "true" or as_url:
        return answer, None
    kind = "image_edit" if edit else "image_generation"
    common = {"background": "auto", "created_at": answer["created"], "output_format": "png", "quality": "low", "size": answer["size"]}
    events = [{"type": f"{kind}.partial_image", "b64_json": item["b64_json"], "partial_image_index": 0, **common} for item in data]
    events += [{"type": f"{kind}.completed", "b64_json": item["b64_json"], "usage": usage, **common} for item in data]
    return answer, events


def _png(prompt: str, salt: int, side: int = 8) -> bytes:
    rng = random.Random(sim_text.stable_hash("image", prompt, salt))
    rows = b"".join(b"\x00" + bytes(rng.randrange(256) for _ in range(side * 3)) for _ in range(side))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
