"""A built-in upstream that imitates Azure OpenAI and OpenAI (``--upstream sim``).

It lets a machine with no Azure account run the demo and the whole test suite: same
routes and response shapes as the real services, ``seed`` honoured the way Azure's
"reproducible output" page describes (see ``sim/text.py``), ``system_fingerprint`` that a
test can rotate, real streaming with real delays, and injectable faults (rate limits,
resets, broken bodies, slow answers, gzip) for the proxy's error paths.

Shapes: the two ``/openai/...`` routes answer like Azure (``prompt_filter_results``,
``content_filter_results``, the empty first stream chunk); ``/v1/...`` answers like
OpenAI. Text does not depend on ``stream``, ``stop`` or ``n``: a streamed and
a non-streamed request with the same seed give the same text (their cache keys still
differ, because ``stream`` is in the body).

Two options serve the proxy's own tests, off by default: ``echo`` answers with the
prompt (so a test can follow a value through recording, redaction and replay) and
``keep_requests`` keeps each request as received, in memory, to check what the proxy
forwarded (:class:`Received`).
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import json
import logging
import random
import re
import struct
import threading
import time
import uuid
import zlib
from collections import Counter, deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from seedtape.errors import ProxyError
from seedtape.families.base import MULTIPART, NO_BODY
from seedtape.form import read_form
from seedtape.headers import CREDENTIAL_HEADERS
from seedtape.routes import Match, Target, match_route
from seedtape.sim import apis
from seedtape.sim import text as sim_text
from seedtape.sim.faults import SimulatedReset
from seedtape.sim.realtime import RealtimeSimulator

# end_stream_early: a stream that stops cleanly after ``after_chunks`` events, without
# its end event ([DONE], response.completed): the cut a proxy must not pass off as whole.
# drip: the status line and headers at once, then the body one byte every
# ``interval_ms`` (a stream: its first ``after_chunks`` events at once, then the drip):
# an answer that never quite stalls, which per-read timeouts never catch.
# flood: a stream with ``events`` more copies of its second event (its first delta)
# before the rest: a very long stream. gzip_bomb: a JSON answer padded with ``mb``
# megabytes of spaces, sent gzip-compressed (about a thousandth of that on the wire).
FAULT_KINDS = frozenset(
    {"reset_mid_stream", "end_stream_early", "truncated_json", "not_json", "delay", "gzip", "drip", "flood", "gzip_bomb"}
)
SAFE = {"filtered": False, "severity": "safe"}
FILTERS = {"hate": SAFE, "self_harm": SAFE, "sexual": SAFE, "violence": SAFE}
AZURE_401 = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key "
    "for an active subscription and use a correct regional API endpoint for your resource."
)
EMBEDDING_MODEL = "text-embedding-3-small"


@dataclass
class SimConfig:
    """What the simulated backend looks like; every field can be changed at run time."""

    fingerprint: str = "fp_sim0001"  # system_fingerprint it reports
    model: str = "gpt-4o-2024-08-06"  # model reported (Azure deployments report the underlying model)
    seed_drift: float = 0.0  # chance a seeded ~50-token answer still differs; longer ones drift more
    greedy_drift: float = 0.0  # the same for temperature-0 requests without a seed
    drift_prefix: int = 0  # words every answer shares before drift may start (0: the last 40% may drift)
    fingerprint_every: int = 0  # rotate system_fingerprint after every N API requests (0: never)
    stream_delay_ms: float = 0.0  # sleep between streamed chunks
    first_byte_delay_ms: float = 0.0  # sleep before the status line and headers
    omit_fingerprint: bool = False  # newer models omit system_fingerprint
    # For tests of the proxy (both off by default, and then nothing above changes):
    echo: bool = False  # answer with the prompt (the last user message) instead of a generated text
    keep_requests: bool = False  # keep every API request in memory as received (Simulator.received)


KEPT_REQUESTS = 10_000  # keep_requests holds at most this many, the oldest dropped first


@dataclass(frozen=True)
class Received:
    """One API request as the simulator got it, kept when ``SimConfig.keep_requests`` is on.

    For a test to check what the proxy sent upstream: the path, the body, and every
    header as sent, credentials included (a test checks that the caller's key is forwarded
    and seedtape's own headers are not). Held in memory only: never written, logged,
    or shown by an admin route; :meth:`Simulator.reset` forgets it.
    """

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: Any  # the parsed JSON body; None when it is empty or not JSON
    raw_path: bytes = b""  # the path as it came on the wire (percent-escapes kept)


class _ResetLogFilter(logging.Filter):
    """Turn uvicorn's traceback for a deliberate reset into one line; real errors untouched."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], SimulatedReset):
            record.msg, record.args, record.exc_info, record.levelno, record.levelname = (
                "seedtape simulator: %s",
                (record.exc_info[1],),
                None,
                logging.WARNING,
                "WARNING",
            )
        return True


def _quiet_resets() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _ResetLogFilter) for f in logger.filters):
        logger.addFilter(_ResetLogFilter())


def error_body(message: str, type_: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def error_response(status: int, message: str, type_: str, code: str | None = None, **headers: str) -> JSONResponse:
    return JSONResponse(error_body(message, type_, code), status_code=status, headers=headers)


def _status_error(status: int, target: Target, fault: Mapping[str, Any]) -> JSONResponse:
    """The error a real service would send for this status (a "status" fault)."""
    azure = target.api != "openai"
    retry = fault.get("retry_after")
    if status == 429:
        wait = retry if retry is not None else 1
        message = (
            f"Requests to the ChatCompletions_Create Operation under Azure OpenAI API version "
            f"{target.api_version or 'v1'} have exceeded call rate limit of your current OpenAI S0 pricing tier. "
            f"Please retry after {wait} seconds."
            if azure
            else "Rate limit reached for requests (seedtape simulator). Please try again later."
        )
        type_, code = "requests", "429" if azure else "rate_limit_exceeded"
    elif status == 401:
        message, type_, code = (
            (AZURE_401, "invalid_request_error", "401")
            if azure
            else ("Incorrect API key provided (seedtape simulator).", "invalid_request_error", "invalid_api_key")
        )
    elif status >= 500:
        message, type_, code = (
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
            None,
        )
    else:
        message, type_, code = (
            f"Request failed with status {status} (seedtape simulator).",
            "invalid_request_error",
            None,
        )
    headers = {"retry-after": str(retry)} if retry is not None else {}
    return error_response(status, str(fault.get("message", message)), type_, code, **headers)


def normalize_fault(fault: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a fault and fill its defaults, so a typo fails at inject() time, not later."""
    if not isinstance(fault, Mapping):
        raise ValueError("a fault is a JSON object")
    out = dict(fault)
    count = out.setdefault("count", 1)
    if not isinstance(count, int) or count < 1:
        raise ValueError("fault 'count' must be a positive integer")
    if "status" in out:
        if not isinstance(out["status"], int) or not 400 <= out["status"] <= 599:
            raise ValueError("fault 'status' must be an HTTP error status (400-599)")
        return out
    kind = out.get("kind")
    if kind not in FAULT_KINDS:
        raise ValueError(f"fault needs 'status' or a 'kind' in {sorted(FAULT_KINDS)}, got {kind!r}")
    if kind in ("reset_mid_stream", "end_stream_early"):
        out.setdefault("after_chunks", 3)
    if kind == "drip":
        out.setdefault("interval_ms", 1000)
        out.setdefault("after_chunks", 0)
    if kind == "flood":
        out.setdefault("events", 100_000)
    if kind == "gzip_bomb":
        out.setdefault("mb", 300)
    if kind == "delay":
        out.setdefault("ms", 1000)
    return out


def _words(text: str) -> int:
    return len(text.split())


def _truncate(text: str, stop: Any, max_words: int | None) -> tuple[str, str]:
    """Apply ``stop`` then ``max_tokens`` (one token per word), returning (text, finish_reason)."""
    stops = [stop] if isinstance(stop, str) else [s for s in stop or [] if isinstance(s, str) and s]
    cut = min((text.find(s) for s in stops if s in text), default=-1)
    if cut >= 0:
        text = text[:cut]
    pieces = re.findall(r"\S+\s*", text)
    if max_words is not None and len(pieces) > max_words:
        return "".join(pieces[:max_words]).rstrip(), "length"
    return text.rstrip(), "stop"


def _pieces(text: str) -> list[str]:
    """Stream deltas of a word or two, each carrying its leading whitespace like real ones."""
    words = re.findall(r"\s*\S+", text)
    out, i = [], 0
    while i < len(words):
        size = 2 if i % 3 == 2 else 1
        out.append("".join(words[i : i + size]))
        i += size
    return out


class Simulator:
    """The simulated service: a config, call counters, a fault queue and the ASGI app.

    What a test may inspect: ``calls`` and ``calls_by_route`` (API requests, refused ones
    included), ``requests`` (the last 100, credential values redacted), and with
    ``SimConfig.keep_requests`` on, ``received`` (every request as sent, see :class:`Received`).
    """

    def __init__(self, config: SimConfig | None = None, entropy_seed: int | None = None) -> None:
        self.config = config or SimConfig()
        self.calls = 0
        self.calls_by_route: Counter[str] = Counter()
        self.requests: deque[dict[str, Any]] = deque(maxlen=100)  # credentials redacted
        self.received: list[Received] = []  # only with config.keep_requests; credentials as sent, memory only
        self._faults: deque[dict[str, Any]] = deque()
        self.responses = apis.StoredResponses()  # for retrieve, input_items, delete, cancel
        self._lock = threading.Lock()  # tests poke the simulator from another thread than uvicorn's
        # What a real service leaves to chance (unseeded samples, seed drift); a test
        # that measures rates fixes it, so its sample is the same on every run.
        self._entropy = random.Random(entropy_seed)
        _quiet_resets()
        admin = [
            Route("/_sim/state", self._state, methods=["GET"]),
            Route("/_sim/config", self._set_config, methods=["POST"]),
            Route("/_sim/rotate", self._rotate, methods=["POST"]),
            Route("/_sim/fault", self._fault, methods=["POST"]),
            Route("/_sim/reset", self._reset, methods=["POST"]),
        ]
        models = [Route(p, self._models, methods=["GET"]) for p in ("/v1/models", "/openai/v1/models", "/openai/models")]
        catch_all = Route("/{path:path}", self._dispatch, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
        self.realtime = RealtimeSimulator(self)  # the Realtime API's WebSocket sessions (sim/realtime.py)
        self.app = Starlette(routes=[*admin, *models, *self.realtime.routes(), catch_all])

    # --- control (Python API, also behind the /_sim/ routes) -------------------------

    def rotate_fingerprint(self, new: str | None = None) -> str:
        """Change the backend configuration: a new fingerprint, and seeded texts change late on."""
        old = self.config.fingerprint
        self.config.fingerprint = new or "fp_" + hashlib.sha256(old.encode()).hexdigest()[:10]
        return self.config.fingerprint

    def inject(self, fault: dict[str, Any]) -> None:
        """Queue a fault for the next API request(s); ``count`` repeats it. Raises ValueError."""
        normalized = normalize_fault(fault)
        with self._lock:
            self._faults.append(normalized)

    def reseed(self, entropy_seed: int | None) -> None:
        """Fix (or free, with None) what the simulator leaves to chance from now on."""
        with self._lock:
            self._entropy.seed(entropy_seed)

    def reset(self) -> None:
        """Forget faults, counters and the request logs (a session-scoped server between tests)."""
        with self._lock:
            self._faults.clear()
            self.calls = 0
            self.calls_by_route.clear()
            self.requests.clear()
            self.received.clear()
        self.realtime.reset()

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "config": asdict(self.config),
                "calls": self.calls,
                "calls_by_route": dict(self.calls_by_route),
                "fingerprint": self.config.fingerprint,
                "pending_faults": [dict(f) for f in self._faults],
            }

    def update_config(self, changes: Mapping[str, Any]) -> None:
        """Set SimConfig fields from JSON values, checking names and types."""
        types = {f.name: f.type for f in fields(SimConfig)}
        for name, value in changes.items():
            kind = types.get(name)
            if kind is None:
                raise ValueError(f"unknown config field {name!r}")
            if kind == "bool" and not isinstance(value, bool):
                raise ValueError(f"{name} must be true or false")
            if kind == "float" and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
                raise ValueError(f"{name} must be a non-negative number")
            if kind == "int" and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ValueError(f"{name} must be a non-negative integer")
            if kind == "str" and (not isinstance(value, str) or not value):
                raise ValueError(f"{name} must be a non-empty string")
            if name in ("seed_drift", "greedy_drift") and value > 1:
                raise ValueError(f"{name} is a probability in [0, 1]")
        for name, value in changes.items():
            setattr(self.config, name, float(value) if types[name] == "float" else value)

    def _take_fault(self) -> dict[str, Any] | None:
        with self._lock:
            if not self._faults:
                return None
            fault = self._faults[0]
            fault["count"] -= 1
            if fault["count"] <= 0:
                self._faults.popleft()
            return fault

    # --- admin routes -------------------------------------------------------------------

    async def _state(self, request: Request) -> Response:
        return JSONResponse(self.state())

    async def _set_config(self, request: Request) -> Response:
        body = await _json_object(request)
        if isinstance(body, Response):
            return body
        try:
            self.update_config(body)
        except ValueError as exc:
            return error_response(400, str(exc), "invalid_request_error")
        return JSONResponse(self.state())

    async def _rotate(self, request: Request) -> Response:
        body = await _json_object(request, allow_empty=True)
        if isinstance(body, Response):
            return body
        previous = self.config.fingerprint
        return JSONResponse({"previous": previous, "fingerprint": self.rotate_fingerprint(body.get("fingerprint"))})

    async def _fault(self, request: Request) -> Response:
        body = await _json_object(request)
        if isinstance(body, Response):
            return body
        try:
            self.inject(body)
        except ValueError as exc:
            return error_response(400, str(exc), "invalid_request_error")
        return JSONResponse({"queued": len(self._faults)})

    async def _reset(self, request: Request) -> Response:
        self.reset()
        return JSONResponse(self.state())

    async def _keep(self, request: Request) -> None:
        """Remember the request as received when ``keep_requests`` is on (see :class:`Received`)."""
        if not self.config.keep_requests:
            return
        raw = await request.body()  # Starlette keeps it: the handler reads the same bytes again
        try:
            body = json.loads(raw) if raw.strip() else None
        except (ValueError, UnicodeDecodeError):
            body = None
        raw_path = request.scope.get("raw_path") or b""
        kept = Received(request.method, request.url.path, str(request.query_params), dict(request.headers), body, raw_path)
        with self._lock:
            self.received.append(kept)
            del self.received[:-KEPT_REQUESTS]

    async def _models(self, request: Request) -> Response:
        await self._keep(request)
        if not _has_credential(request):
            return error_response(401, AZURE_401, "invalid_request_error", "401")
        created = 1715367049
        data = [{"id": m, "object": "model", "created": created, "owned_by": "system"} for m in (self.config.model, EMBEDDING_MODEL)]
        return JSONResponse({"object": "list", "data": data})

    # --- the API ------------------------------------------------------------------------

    async def _dispatch(self, request: Request) -> Response:
        await self._keep(request)
        found = match_route(request.method, request.url.path, request.query_params.get("api-version", ""))
        target = found.target if found is not None else None
        if target is None:
            return error_response(
                404,
                f"Unknown request URL: {request.method} {request.url.path}.",
                "invalid_request_error",
                "unknown_url",
            )
        with self._lock:
            every = self.config.fingerprint_every
            if every and self.calls and self.calls % every == 0:  # the backend moves on a schedule
                self.rotate_fingerprint()
            self.calls += 1
            self.calls_by_route[target.route] += 1
            self.requests.append(_redacted(request, target))
        if not _has_credential(request):
            if target.api == "openai":
                return error_response(
                    401,
                    "You didn't provide an API key. You need to provide your API key in an "
                    "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                    "invalid_request_error",
                )
            return error_response(401, AZURE_401, "invalid_request_error", "401")
        if target.api == "azure" and not target.api_version:
            return error_response(404, "Resource not found", "invalid_request_error", "404")
        fault = self._take_fault()
        if fault and fault.get("kind") == "delay":
            await asyncio.sleep(float(fault["ms"]) / 1000)
            fault = None
        if self.config.first_byte_delay_ms:
            await asyncio.sleep(self.config.first_byte_delay_ms / 1000)
        if fault and "status" in fault:
            return _status_error(fault["status"], target, fault)
        if found is not None and found.family.name not in ("chat", "completions", "embeddings"):
            return await self._family(request, found, fault)
        body = await _json_object(request)
        if isinstance(body, Response):
            return body
        handler = {"chat/completions": self._chat, "completions": self._legacy, "embeddings": self._embeddings}[target.route]
        try:
            result = handler(body, target)
        except ValueError as exc:
            return error_response(400, str(exc), "invalid_request_error")
        headers = _response_headers(target)
        if isinstance(result, list):
            return self._stream(result, headers, fault)
        return _apply_body_fault(result, headers, fault)

    async def _family(self, request: Request, found: Match, fault: Mapping[str, Any] | None) -> Response:
        """Responses, moderations, audio and images (sim/apis.py builds the answers)."""
        target, route = found.target, found.target.route
        headers = _response_headers(target)
        try:
            if found.endpoint.body == MULTIPART:
                form, _ = read_form(await request.body(), request.headers.get("content-type"))
                body: dict[str, Any] = form
            elif found.endpoint.body == NO_BODY:
                body = {}
            else:
                parsed = await _json_object(request)
                if isinstance(parsed, Response):
                    return parsed
                body = parsed
            return self._answer(request.method, route, found.subpath, body, headers, fault)
        except apis.ApiError as exc:
            return error_response(exc.status, str(exc), "invalid_request_error", exc.code)
        except ProxyError as exc:  # a form that cannot be read
            return error_response(400, exc.message, "invalid_request_error")

    def _answer(
        self, method: str, route: str, subpath: str, body: dict[str, Any], headers: dict[str, str], fault: Mapping[str, Any] | None
    ) -> Response:
        if route == "responses":
            previous = body.get("previous_response_id")
            with self._lock:
                history = self.responses.history(previous) if isinstance(previous, str) else []
            final = apis.create_response(body, self._sample, self.config.model, history)
            with self._lock:
                first = self.responses.add(final, body, apis.input_messages(body, history))
            if body.get("stream"):
                return self._stream(apis.response_events(first if body.get("background") else final), headers, fault, named=True)
            return _apply_body_fault(first, headers, fault)
        if route.startswith("responses/{id}"):
            response_id = subpath.split("/")[1]
            with self._lock:
                if route == "responses/{id}/input_items":
                    answer = self.responses.items(response_id)
                elif route == "responses/{id}/cancel":
                    answer = self.responses.cancel(response_id)
                elif method == "DELETE":
                    answer = self.responses.delete(response_id)
                else:
                    answer = self.responses.current(response_id)
            return _apply_body_fault(answer, headers, fault)
        if route == "moderations":
            return _apply_body_fault(apis.moderation(body), headers, fault)
        if route in ("audio/transcriptions", "audio/translations"):
            text = apis.transcript(body, self._entropy, translate=route.endswith("translations"))
            kind, payload = apis.transcription_answer(text, body)
            if kind == "stream":
                return self._stream(payload, headers, fault)
            if kind == "text":
                return Response(payload, media_type="text/plain; charset=utf-8", headers=headers)
            return _apply_body_fault(payload, headers, fault)
        if route == "audio/speech":
            audio, content_type = apis.speech(body)
            if body.get("stream_format") == "sse":
                return self._stream(apis.speech_events(audio), headers, fault)
            return Response(audio, media_type=content_type, headers=headers)
        answer, events = apis.images(body, self._entropy, edit=route == "images/edits")
        if events is not None:
            return self._stream(events, headers, fault)
        return _apply_body_fault(answer, headers, fault)

    def _sample(self, body: Mapping[str, Any], messages: list[dict[str, Any]], max_words: int | None, index: int) -> str:
        if self.config.echo:
            return sim_text.last_user_text(messages)
        req = sim_text.TextRequest.from_body(body, messages, max_words)
        return sim_text.generate(
            req,
            fingerprint=self.config.fingerprint,
            choice_index=index,
            entropy=self._entropy,
            seed_drift=self.config.seed_drift,
            greedy_drift=self.config.greedy_drift,
            drift_prefix=self.config.drift_prefix,
        )

    def _envelope(self, obj: str, prefix: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": prefix + uuid.uuid4().hex[:24],
            "object": obj,
            "created": int(time.time()),
            "model": self.config.model,
        }
        if not self.config.omit_fingerprint:
            out["system_fingerprint"] = self.config.fingerprint
        return out

    def _chat(self, body: dict[str, Any], target: Target) -> dict[str, Any] | list[Any]:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
            raise ValueError("'messages' must be a non-empty array of message objects")
        n, max_words = _common_params(body, target, default_max=None)
        azure = target.api != "openai"
        choices = []
        for i in range(n):
            calls = _tool_calls(body, messages)
            if calls:
                message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None, "tool_calls": calls}
                finish = "tool_calls"
            else:
                text, finish = _truncate(self._sample(body, messages, max_words, i), body.get("stop"), max_words)
                message = {"role": "assistant", "content": _maybe_json(text, body), "refusal": None}
            choice = {"index": i, "message": message, "finish_reason": finish, "logprobs": None}
            if azure:
                choice["content_filter_results"] = FILTERS
            choices.append(choice)
        out = self._envelope("chat.completion", "chatcmpl-")
        out["choices"] = choices
        out["usage"] = _usage(messages, choices)
        if azure:
            out["prompt_filter_results"] = [{"prompt_index": 0, "content_filter_results": FILTERS}]
        return self._chat_chunks(out, body, azure) if body.get("stream") else out

    def _chat_chunks(self, full: dict[str, Any], body: Mapping[str, Any], azure: bool) -> list[Any]:
        """The SSE events a streamed answer consists of (the full answer cut into deltas)."""
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        head = {k: v for k, v in full.items() if k in ("id", "created", "model", "system_fingerprint")}
        head["object"] = "chat.completion.chunk"
        events: list[Any] = []
        if azure:  # Azure opens every stream with the prompt's filter results and nothing else
            events.append(
                {
                    "choices": [],
                    "created": 0,
                    "id": "",
                    "model": "",
                    "object": "",
                    **_pick(full, "prompt_filter_results"),
                }
            )
        per_choice = []
        for choice in full["choices"]:
            i, message = choice["index"], choice["message"]

            def delta(d: dict[str, Any], finish: str | None = None, filters: Any = None) -> dict[str, Any]:
                out = {"index": i, "delta": d, "finish_reason": finish, "logprobs": None}  # noqa: B023
                if azure:  # role, tool-call and final chunks carry empty filter results, content chunks full ones
                    out["content_filter_results"] = filters or {}
                return out

            content = message["content"]
            seq = [delta({"role": "assistant", "content": "" if content is not None else None, "refusal": None})]
            for t, call in enumerate(message.get("tool_calls") or []):
                name, args = call["function"]["name"], call["function"]["arguments"]
                opening = {"index": t, "id": call["id"], "type": "function"}
                seq.append(delta({"tool_calls": [{**opening, "function": {"name": name, "arguments": ""}}]}))
                for at in range(0, len(args), 8):
                    seq.append(delta({"tool_calls": [{"index": t, "function": {"arguments": args[at : at + 8]}}]}))
            seq.extend(delta({"content": piece}, filters=FILTERS) for piece in _pieces(content or ""))
            seq.append(delta({}, choice["finish_reason"]))
            per_choice.append(seq)
        usage_field = {"usage": None} if include_usage else {}
        for step in range(max(len(s) for s in per_choice)):  # interleave choices like the real service
            events.extend({**head, "choices": [seq[step]], **usage_field} for seq in per_choice if step < len(seq))
        if include_usage:
            events.append({**head, "choices": [], "usage": full["usage"]})
        return [*events, "[DONE]"]

    def _legacy(self, body: dict[str, Any], target: Target) -> dict[str, Any] | list[Any]:
        prompt = body.get("prompt", "")
        prompts = [prompt] if isinstance(prompt, str) else [p for p in prompt if isinstance(p, str)] if isinstance(prompt, list) else []
        if not prompts:
            raise ValueError("'prompt' must be a string or an array of strings")
        n, max_words = _common_params(body, target, default_max=16)  # the legacy API's default
        azure = target.api != "openai"
        choices = []
        for p, text_prompt in enumerate(prompts):
            messages = [{"role": "user", "content": text_prompt}]
            for j in range(n):
                text, finish = _truncate(self._sample({**body, "prompt": text_prompt}, messages, max_words, j), body.get("stop"), max_words)
                choice = {"text": " " + text, "index": p * n + j, "finish_reason": finish, "logprobs": None}
                if azure:
                    choice["content_filter_results"] = FILTERS
                choices.append(choice)
        out = self._envelope("text_completion", "cmpl-")
        out["choices"] = choices
        prompt_tokens = sum(_words(p) for p in prompts)
        completion_tokens = sum(_words(str(c["text"])) for c in choices)
        out["usage"] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        if not body.get("stream"):
            return out
        events: list[Any] = []
        for choice in choices:
            for piece in _pieces(str(choice["text"])):
                events.append({**out, "choices": [{**choice, "text": piece, "finish_reason": None}]})
            events.append({**out, "choices": [{**choice, "text": "", "finish_reason": choice["finish_reason"]}]})
        for event in events:
            event.pop("usage", None)
        return [*events, "[DONE]"]

    def _embeddings(self, body: dict[str, Any], target: Target) -> dict[str, Any]:
        raw = body.get("input")
        if isinstance(raw, str) or (isinstance(raw, list) and raw and all(isinstance(t, int) for t in raw)):
            items = [raw]
        elif isinstance(raw, list) and raw:
            items = raw
        else:
            raise ValueError("'input' must be a string, an array of strings or an array of token arrays")
        dims = body.get("dimensions") or 16
        if not isinstance(dims, int) or not 1 <= dims <= 3072:
            raise ValueError("'dimensions' must be an integer between 1 and 3072")
        model = body.get("model") or EMBEDDING_MODEL
        data, tokens = [], 0
        for i, item in enumerate(items):
            rng = random.Random(sim_text.stable_hash("embedding", model, item))
            vector = [rng.gauss(0, 1) for _ in range(dims)]
            norm = sum(v * v for v in vector) ** 0.5 or 1.0
            vector = [round(v / norm, 6) for v in vector]
            tokens += len(item) if isinstance(item, list) else _words(str(item))
            value: Any = vector
            if body.get("encoding_format") == "base64":  # what the SDK asks for by default
                value = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode("ascii")
            data.append({"object": "embedding", "index": i, "embedding": value})
        return {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    # --- responses and faults -----------------------------------------------------------

    def _stream(self, events: list[Any], headers: dict[str, str], fault: Mapping[str, Any] | None, named: bool = False) -> Response:
        """SSE: ``data:`` lines; ``named`` adds the ``event: <type>`` line the Responses API sends."""
        delay = self.config.stream_delay_ms / 1000
        kind = fault.get("kind") if fault else None
        reset_after = int(fault["after_chunks"]) if fault and kind == "reset_mid_stream" else None
        end_after = int(fault["after_chunks"]) if fault and kind == "end_stream_early" else None
        if fault and kind == "flood" and len(events) >= 2:
            return self._flood(events, int(fault["events"]), headers, named)
        if fault and kind == "drip":
            return _drip([_frame(e, named) for e in events], int(fault["after_chunks"]), float(fault["interval_ms"]), "text/event-stream")

        async def body() -> AsyncIterator[bytes]:
            for n, event in enumerate(events):
                if reset_after is not None and (n >= reset_after or event == "[DONE]"):
                    raise SimulatedReset("simulated connection reset mid-stream (seedtape simulator fault)")
                if end_after is not None and (n >= end_after or n == len(events) - 1):
                    return  # a clean end, with the end event never sent
                if n and delay:
                    await asyncio.sleep(delay)
                elif n % 1000 == 999:
                    await asyncio.sleep(0)  # a flood still lets the simulator's other requests run
                yield _frame(event, named)

        headers = {**headers, "cache-control": "no-cache"}
        if kind == "gzip":
            headers["content-encoding"] = "gzip"
            return StreamingResponse(_gzip_stream(body()), media_type="text/event-stream", headers=headers)
        return StreamingResponse(body(), media_type="text/event-stream", headers=headers)

    def _flood(self, events: list[Any], extra: int, headers: dict[str, str], named: bool) -> Response:
        """The stream with ``extra`` more copies of its second event, encoded once and
        sent a thousand at a time: the simulator's own cost stays small."""
        first, repeated = _frame(events[0], named), _frame(events[1], named)
        rest = b"".join(_frame(e, named) for e in events[1:])

        async def body() -> AsyncIterator[bytes]:
            yield first
            for sent in range(0, extra, 1000):
                yield repeated * min(1000, extra - sent)
                await asyncio.sleep(0)
            yield rest

        return StreamingResponse(body(), media_type="text/event-stream", headers={**headers, "cache-control": "no-cache"})


def create_simulator(config: SimConfig | None = None, entropy_seed: int | None = None) -> Simulator:
    """A fresh simulator (its own counters, faults and app)."""
    return Simulator(config, entropy_seed)


def run_simulator(host: str = "127.0.0.1", port: int = 8788, config: SimConfig | None = None) -> None:
    """Serve a simulator with uvicorn until interrupted (for ``seedtape sim``)."""
    import uvicorn

    uvicorn.run(create_simulator(config).app, host=host, port=port, log_level="info")


# --- helpers ----------------------------------------------------------------------------


async def _json_object(request: Request, allow_empty: bool = False) -> dict[str, Any] | Response:
    raw = await request.body()
    if allow_empty and not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return error_response(
            400,
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly.)",
            "invalid_request_error",
        )
    if not isinstance(body, dict):
        return error_response(400, "The request body must be a JSON object.", "invalid_request_error")
    return body


def _pick(mapping: Mapping[str, Any], *names: str) -> dict[str, Any]:
    return {n: mapping[n] for n in names if n in mapping}


def _has_credential(request: Request) -> bool:
    if request.headers.get("api-key", "").strip():
        return True
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(token.strip())


def _redacted(request: Request, target: Target) -> dict[str, Any]:
    """What a test may inspect about a request: never a credential's value."""
    headers = {k: ("<redacted>" if k.lower() in CREDENTIAL_HEADERS else v) for k, v in request.headers.items()}
    return {
        "method": request.method,
        "path": request.url.path,
        "query": str(request.query_params),
        "api": target.api,
        "route": target.route,
        "headers": headers,
    }


def _response_headers(target: Target) -> dict[str, str]:
    request_id = str(uuid.uuid4())
    if target.api == "openai":
        return {"x-request-id": request_id, "openai-version": "2020-10-01", "openai-processing-ms": "12"}
    return {"x-request-id": request_id, "apim-request-id": request_id, "x-ms-region": "Sim Local"}


def _common_params(body: Mapping[str, Any], target: Target, default_max: int | None) -> tuple[int, int | None]:
    if target.api == "openai" and not body.get("model"):
        raise ValueError("you must provide a model parameter")
    temperature = body.get("temperature")
    if temperature is not None and (
        isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 <= temperature <= 2
    ):
        raise ValueError(f"{temperature!r} is not a valid temperature: it must be a number between 0 and 2")
    n = body.get("n") or 1
    if not isinstance(n, int) or not 1 <= n <= 128:
        raise ValueError("'n' must be an integer between 1 and 128")
    max_words = body.get("max_completion_tokens") or body.get("max_tokens") or default_max
    if max_words is not None and (not isinstance(max_words, int) or max_words < 1):
        raise ValueError("'max_tokens' must be a positive integer")
    return n, max_words


def _tool_calls(body: Mapping[str, Any], messages: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """Tool calls the model would make: forced by tool_choice, or tools the last user turn asks for."""
    tools = [t["function"] for t in body.get("tools") or [] if isinstance(t, dict) and isinstance(t.get("function"), dict)]
    choice = body.get("tool_choice")
    if not tools or choice == "none" or messages[-1].get("role") != "user":
        return None
    prompt = sim_text.message_text(messages[-1])
    if isinstance(choice, dict):
        wanted = (choice.get("function") or {}).get("name")
        chosen = [t for t in tools if t.get("name") == wanted]
    else:
        asked = sim_text.words_of(prompt)
        chosen = [t for t in tools if asked & sim_text.words_of(f"{t.get('name', '')} {t.get('description', '')}")]
        if not chosen and choice == "required":
            chosen = tools[:1]
        if body.get("parallel_tool_calls") is False:
            chosen = chosen[:1]
    if not chosen:
        return None
    key = {k: v for k, v in body.items() if k not in sim_text.PRESENTATION_FIELDS}
    return [
        {
            "id": "call_" + uuid.uuid4().hex[:24],
            "type": "function",
            "function": {"name": t.get("name", ""), "arguments": sim_text.tool_arguments(t, prompt, key)},
        }
        for t in chosen
    ]


def _maybe_json(text: str, body: Mapping[str, Any]) -> str:
    """Honour response_format: JSON mode wraps the text; a json_schema gets a filled-in object."""
    fmt = body.get("response_format") or {}
    if not isinstance(fmt, dict) or fmt.get("type") not in ("json_object", "json_schema"):
        return text
    schema = (fmt.get("json_schema") or {}).get("schema")
    if isinstance(schema, dict):
        value = sim_text.value_for_schema(schema, "", text, random.Random(sim_text.stable_hash("json", text)))
        return json.dumps(value, ensure_ascii=False)
    return json.dumps({"answer": text}, ensure_ascii=False)


def _usage(messages: list[dict[str, Any]], choices: list[dict[str, Any]]) -> dict[str, Any]:
    prompt = sum(_words(sim_text.message_text(m)) + 4 for m in messages) + 3
    completion = 0
    for choice in choices:
        message = choice["message"]
        completion += _words(message["content"] or "")
        completion += sum(len(c["function"]["arguments"]) // 4 + 5 for c in message.get("tool_calls") or [])
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _frame(event: Any, named: bool) -> bytes:
    data = event if isinstance(event, str) else json.dumps(event, separators=(",", ":"), ensure_ascii=False)
    head = f"event: {event['type']}\n" if named and isinstance(event, dict) and "type" in event else ""
    return f"{head}data: {data}\n\n".encode()


def _drip(frames: list[bytes], at_once: int, interval_ms: float, media_type: str) -> Response:
    """The first ``at_once`` frames, then the rest a byte every ``interval_ms``."""

    async def body() -> AsyncIterator[bytes]:
        for frame in frames[:at_once]:
            yield frame
        for byte in b"".join(frames[at_once:]):
            await asyncio.sleep(interval_ms / 1000)
            yield bytes([byte])

    return StreamingResponse(body(), media_type=media_type)


def _bomb(data: bytes, mb: float) -> bytes:
    """``data`` with ``mb`` megabytes of spaces in a padding field, gzip-compressed a
    megabyte at a time (the whole text is never in memory)."""
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
    parts = [compressor.compress(data[:-1] + b',"padding":"')]
    block = b" " * (1024 * 1024)
    whole, rest = divmod(int(mb * 1024 * 1024), len(block))
    parts += [compressor.compress(block) for _ in range(whole)]
    parts += [compressor.compress(block[:rest] + b'"}'), compressor.flush()]
    return b"".join(parts)


def _apply_body_fault(payload: dict[str, Any], headers: dict[str, str], fault: Mapping[str, Any] | None) -> Response:
    """A complete JSON answer, or the broken variant a body fault asks for."""
    data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    kind = fault.get("kind") if fault else None
    if kind == "drip" and fault is not None:
        return _drip([data], 0, float(fault["interval_ms"]), "application/json")
    if kind == "gzip_bomb" and fault is not None:
        return Response(_bomb(data, float(fault["mb"])), media_type="application/json", headers={**headers, "content-encoding": "gzip"})
    if kind == "truncated_json":
        return Response(data[: len(data) // 2], media_type="application/json", headers=headers)
    if kind == "not_json":
        html = b"<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>"
        return Response(html, media_type="text/html", headers=headers)
    if kind == "gzip":
        return Response(gzip.compress(data), media_type="application/json", headers={**headers, "content-encoding": "gzip"})
    if kind == "reset_mid_stream":  # a non-streamed answer: cut the body half way and drop the connection

        async def broken() -> AsyncIterator[bytes]:
            yield data[: len(data) // 2]
            raise SimulatedReset("simulated connection reset mid-body (seedtape simulator fault)")

        return StreamingResponse(broken(), media_type="application/json", headers=headers)
    return Response(data, media_type="application/json", headers=headers)


async def _gzip_stream(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Real gzip over a stream, flushed per event so the client can decode as it goes."""
    compressor = zlib.compressobj(wbits=31)
    async for chunk in chunks:
        yield compressor.compress(chunk) + compressor.flush(zlib.Z_SYNC_FLUSH)
    yield compressor.flush()


if __name__ == "__main__":  # python -m seedtape.sim.simulator [--host H] [--port P]
    import argparse

    parser = argparse.ArgumentParser(description="seedtape's Azure OpenAI / OpenAI simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8788)
    options = parser.parse_args()
    run_simulator(options.host, options.port)
