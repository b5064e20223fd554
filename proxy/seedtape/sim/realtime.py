"""The simulator's Realtime endpoint: a GA Realtime session over a WebSocket, offline.

Paths as the services have them: ``/v1/realtime?model=`` (OpenAI),
``/openai/realtime?api-version=&deployment=`` and ``/openai/v1/realtime?model=``
(Azure). It speaks the GA event protocol the openai SDK's ``client.realtime`` uses
(the shapes observed against the real SDK): ``session.created`` on connect,
``session.update`` -> ``session.updated``, ``conversation.item.create`` ->
``conversation.item.added``/``done``, ``response.create`` -> the response events with
text deltas (and, with ``output_modalities: ["audio"]``, a tiny synthetic pcm16 audio
delta and its transcript), ``input_audio_buffer.append``/``commit``, and an ``error``
event for anything it does not know. The text comes from the same generator as the
chat routes, seeded, so the same conversation gives the same answer until the
fingerprint rotates (what verify tests need).

Faults for the proxy's error paths (``inject``): ``drop_mid_response`` drops the TCP
connection without a close frame after ``after_deltas`` text deltas, ``close`` closes
with ``code`` after ``after_deltas`` deltas.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections import deque
from collections.abc import Mapping
from typing import Any, Protocol

from starlette.responses import JSONResponse
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from seedtape.sim.faults import SimulatedReset


class Backend(Protocol):
    """What the Realtime side uses of the simulator: its config and its text sampler."""

    config: Any

    def _sample(self, body: Mapping[str, Any], messages: list[dict[str, Any]], max_words: int | None, index: int) -> str: ...


PATHS = ("/v1/realtime", "/openai/realtime", "/openai/v1/realtime")
FAULT_KINDS = frozenset({"drop_mid_response", "close"})
AUDIO_RATE = 24000
# 10 ms of a 440 Hz-ish square wave, pcm16 mono: a real, tiny, deterministic audio delta.
_TONE = b"".join((6000 if (i // 27) % 2 else -6000).to_bytes(2, "little", signed=True) for i in range(AUDIO_RATE // 100))


class RealtimeSimulator:
    """Realtime sessions of one simulator (its config, text generator and log)."""

    def __init__(self, simulator: Backend) -> None:
        self.simulator = simulator
        self.sessions = 0  # connections accepted
        self.client_events = 0
        self.handshakes: deque[dict[str, Any]] = deque(maxlen=100)  # credentials redacted
        self._faults: deque[dict[str, Any]] = deque()
        self._lock = threading.Lock()

    def routes(self) -> list[WebSocketRoute]:
        return [WebSocketRoute(path, self.endpoint) for path in PATHS]

    def inject(self, fault: Mapping[str, Any]) -> None:
        kind = fault.get("kind")
        if kind not in FAULT_KINDS:
            raise ValueError(f"realtime fault needs a 'kind' in {sorted(FAULT_KINDS)}, got {kind!r}")
        out = {"after_deltas": 2, "code": 1011, "reason": "simulated error", **fault}
        with self._lock:
            self._faults.append(out)

    def reset(self) -> None:
        with self._lock:
            self._faults.clear()
            self.sessions = 0
            self.client_events = 0
            self.handshakes.clear()

    def _take_fault(self) -> dict[str, Any] | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    async def endpoint(self, websocket: WebSocket) -> None:
        from seedtape.headers import CREDENTIAL_HEADERS

        headers = websocket.headers
        credential = headers.get("api-key", "").strip() or headers.get("authorization", "").partition(" ")[2].strip()
        with self._lock:
            self.handshakes.append(
                {
                    "path": websocket.url.path,
                    "query": dict(websocket.query_params),
                    "headers": {k: ("<redacted>" if k in CREDENTIAL_HEADERS else v) for k, v in headers.items()},
                }
            )
        if not credential:
            body = {"error": {"message": "Missing credentials (seedtape simulator).", "type": "invalid_request_error", "code": "401"}}
            await websocket.send_denial_response(JSONResponse(body, status_code=401))
            return
        query = websocket.query_params
        if websocket.url.path == "/openai/realtime" and not query.get("api-version"):
            await websocket.send_denial_response(JSONResponse({"error": {"message": "Resource not found", "code": "404"}}, status_code=404))
            return
        model = query.get("model") or query.get("deployment") or "gpt-realtime"
        await websocket.accept()
        with self._lock:
            self.sessions += 1
        session = _Session(self, websocket, model)
        try:
            await session.run()
        except WebSocketDisconnect:
            return


class _Session:
    """One connection's state: the session object, the conversation, ids."""

    def __init__(self, owner: RealtimeSimulator, websocket: WebSocket, model: str) -> None:
        self.owner = owner
        self.ws = websocket
        self.n = 0
        self.ids = 0
        self.items: list[dict[str, Any]] = []
        self.audio_in = bytearray()
        self.session: dict[str, Any] = {
            "type": "realtime",
            "object": "realtime.session",
            "id": self._id("sess"),
            "model": model,
            "output_modalities": ["audio"],
            "instructions": "",
            "tools": [],
            "tool_choice": "auto",
            "max_output_tokens": "inf",
            "tracing": None,
            "prompt": None,
            "expires_at": 0,
            "audio": {
                "input": {"format": {"type": "audio/pcm", "rate": AUDIO_RATE}, "transcription": None, "turn_detection": None},
                "output": {"format": {"type": "audio/pcm", "rate": AUDIO_RATE}, "voice": "alloy", "speed": 1.0},
            },
            "include": None,
        }

    def _id(self, prefix: str) -> str:
        self.ids += 1
        return f"{prefix}_sim{self.ids:04d}"

    async def send(self, event: dict[str, Any]) -> None:
        event = {"type": event.pop("type"), "event_id": f"event_{self.n}", **event}
        self.n += 1
        await self.ws.send_text(json.dumps(event, separators=(",", ":"), ensure_ascii=False))

    async def error(self, message: str, code: str, client_event_id: Any = None, param: str | None = None) -> None:
        error = {"type": "invalid_request_error", "code": code, "message": message, "param": param, "event_id": client_event_id}
        await self.send({"type": "error", "error": error})

    async def run(self) -> None:
        await self.send({"type": "session.created", "session": self.session})
        while True:
            text = await self.ws.receive_text()
            with self.owner._lock:
                self.owner.client_events += 1
            try:
                event = json.loads(text)
            except ValueError:
                await self.error("The event is not valid JSON.", "invalid_json")
                continue
            if not isinstance(event, dict):
                await self.error("The event must be a JSON object.", "invalid_event")
                continue
            await self.handle(event)

    async def handle(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        client_id = event.get("event_id")
        if kind == "session.update":
            changes = event.get("session")
            if not isinstance(changes, dict):
                await self.error("Missing required parameter: 'session'.", "missing_required_parameter", client_id, "session")
                return
            self.session.update({k: v for k, v in changes.items() if k != "type"})
            await self.send({"type": "session.updated", "session": self.session})
        elif kind == "conversation.item.create":
            item = event.get("item")
            if not isinstance(item, dict):
                await self.error("Missing required parameter: 'item'.", "missing_required_parameter", client_id, "item")
                return
            await self.add_item({**item, "object": "realtime.item", "status": "completed"})
        elif kind == "input_audio_buffer.append":
            audio = event.get("audio")
            try:
                self.audio_in += base64.b64decode(audio if isinstance(audio, str) else "", validate=True)
            except ValueError:
                await self.error("Invalid 'audio': not base64.", "invalid_value", client_id, "audio")
        elif kind == "input_audio_buffer.commit":
            item_id = self._id("item")
            await self.send({"type": "input_audio_buffer.committed", "previous_item_id": self._last_id(), "item_id": item_id})
            seconds = len(self.audio_in) / (2 * AUDIO_RATE)
            self.audio_in.clear()
            transcript = f"({seconds:.2f} seconds of audio)"
            item = {"id": item_id, "type": "message", "role": "user", "content": [{"type": "input_audio", "transcript": transcript}]}
            await self.add_item({**item, "object": "realtime.item", "status": "completed"})
        elif kind == "input_audio_buffer.clear":
            self.audio_in.clear()
            await self.send({"type": "input_audio_buffer.cleared"})
        elif kind == "response.create":
            options = event.get("response")
            await self.respond(options if isinstance(options, dict) else {})
        elif kind == "response.cancel":
            pass  # responses here finish before the next event is read
        else:
            await self.error(
                f"Invalid value: '{kind}'. Unknown client event type (seedtape simulator).", "invalid_value", client_id, "type"
            )

    def _last_id(self) -> str | None:
        return self.items[-1]["id"] if self.items else None

    async def add_item(self, item: dict[str, Any]) -> None:
        item.setdefault("id", self._id("item"))
        previous = self._last_id()
        self.items.append(item)
        await self.send({"type": "conversation.item.added", "previous_item_id": previous, "item": item})
        await self.send({"type": "conversation.item.done", "previous_item_id": previous, "item": item})

    def _text(self, instructions: str) -> str:
        messages: list[dict[str, Any]] = [{"role": "system", "content": instructions or "You are a helpful assistant."}]
        for item in self.items:
            for part in item.get("content") or []:
                if isinstance(part, dict):
                    words = part.get("text") or part.get("transcript")
                    if isinstance(words, str) and words:
                        messages.append({"role": item.get("role") or "user", "content": words})
        if len(messages) == 1:
            messages.append({"role": "user", "content": "Hello"})
        # Seeded: the same conversation gives the same words (until the fingerprint rotates).
        # The whole text: a rotated fingerprint changes its last part (as the chat routes').
        return " ".join(self.owner.simulator._sample({"seed": 0, "temperature": 0.8}, messages, None, 0).split())

    async def respond(self, options: dict[str, Any]) -> None:
        fault = self.owner._take_fault()
        config = self.owner.simulator.config
        delay = config.stream_delay_ms / 1000
        modalities = options.get("output_modalities") or self.session.get("output_modalities") or ["audio"]
        audio = "audio" in modalities
        instructions = options.get("instructions") or self.session.get("instructions") or ""
        text = self._text(str(instructions))
        response_id, item_id = self._id("resp"), self._id("item")
        response: dict[str, Any] = {
            "object": "realtime.response",
            "id": response_id,
            "status": "in_progress",
            "status_details": None,
            "output": [],
            "conversation_id": "conv_sim",
            "output_modalities": modalities,
            "max_output_tokens": "inf",
            "audio": {"output": {"format": {"type": "audio/pcm", "rate": AUDIO_RATE}, "voice": "alloy"}},
            "usage": None,
            "metadata": options.get("metadata"),
        }
        await self.send({"type": "response.created", "response": dict(response)})
        item: dict[str, Any] = {
            "id": item_id,
            "type": "message",
            "status": "in_progress",
            "role": "assistant",
            "object": "realtime.item",
            "content": [],
        }
        where = {"response_id": response_id, "item_id": item_id, "output_index": 0, "content_index": 0}
        previous = self._last_id()
        await self.send({"type": "response.output_item.added", "response_id": response_id, "output_index": 0, "item": dict(item)})
        await self.send({"type": "conversation.item.added", "previous_item_id": previous, "item": dict(item)})
        part = {"type": "audio", "transcript": ""} if audio else {"type": "text", "text": ""}
        await self.send({"type": "response.content_part.added", **where, "part": part})
        pieces = [w + " " for w in text.split(" ")[:-1]] + [text.split(" ")[-1]]
        if audio:
            await self.send({"type": "response.output_audio.delta", **where, "delta": base64.b64encode(_TONE).decode()})
        delta_type = "response.output_audio_transcript.delta" if audio else "response.output_text.delta"
        for n, piece in enumerate(pieces):
            if fault is not None and n >= int(fault["after_deltas"]):
                if fault["kind"] == "close":
                    await self.ws.close(int(fault["code"]), str(fault["reason"]))
                    raise WebSocketDisconnect(int(fault["code"]))
                # Raised after the handshake, uvicorn drops the TCP connection: no close frame.
                raise SimulatedReset("simulated connection drop mid-response (seedtape simulator fault)")
            if n and delay:
                await asyncio.sleep(delay)
            await self.send({"type": delta_type, **where, "delta": piece})
        if audio:
            await self.send({"type": "response.output_audio.done", **where})
            await self.send({"type": "response.output_audio_transcript.done", **where, "transcript": text})
            content = {"type": "output_audio", "transcript": text}
        else:
            await self.send({"type": "response.output_text.done", **where, "text": text})
            content = {"type": "output_text", "text": text}
        done_part = {"type": "audio", "transcript": text} if audio else {"type": "text", "text": text}
        await self.send({"type": "response.content_part.done", **where, "part": done_part})
        item = {**item, "status": "completed", "content": [content]}
        self.items.append(item)
        await self.send({"type": "response.output_item.done", "response_id": response_id, "output_index": 0, "item": item})
        await self.send({"type": "conversation.item.done", "previous_item_id": previous, "item": item})
        words_in = sum(len(str(m)) for m in self.items) // 20 + 1
        words_out = len(text.split())
        usage = {
            "total_tokens": words_in + words_out,
            "input_tokens": words_in,
            "output_tokens": words_out,
            "input_token_details": {"text_tokens": words_in, "audio_tokens": 0, "image_tokens": 0, "cached_tokens": 0},
            "output_token_details": {"text_tokens": words_out, "audio_tokens": 1 if audio else 0},
        }
        await self.send({"type": "response.done", "response": {**response, "status": "completed", "output": [item], "usage": usage}})
