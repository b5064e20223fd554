"""A tiny OpenAI/Azure-shaped upstream for the client_shim and plugin tests.

Stands in for the real service (and for the built-in simulator, which lives on another
branch): seeded requests answer the same text every time, unseeded ones a new text
per call, so episodes and caching can be told apart; streams are real SSE with an
optional usage chunk. It counts the calls it gets, which is how tests prove a replay
did not reach upstream.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

FINGERPRINT = "fp_fake0001"


class FakeUpstream:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self._counter = itertools.count(1)
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self.chat, methods=["POST"]),
                Route("/openai/v1/chat/completions", self.chat, methods=["POST"]),
                Route("/openai/deployments/{deployment}/chat/completions", self.chat, methods=["POST"]),
            ]
        )

    def text_for(self, body: dict[str, Any]) -> str:
        prompt = str((body.get("messages") or [{}])[-1].get("content", ""))
        salt = body["seed"] if body.get("seed") is not None else f"call{next(self._counter)}"
        digest = hashlib.sha256(f"{prompt}|{salt}".encode()).hexdigest()[:8]
        return f"Answer {digest} to: {prompt}"

    async def chat(self, request: Request) -> Response:
        body = json.loads(await request.body())
        deployment = request.path_params.get("deployment", "")
        self.calls.append({"path": request.url.path, "body": body, "headers": dict(request.headers)})
        model = body.get("model") or deployment or "fake-model"
        text = self.text_for(body)
        ident = "chatcmpl-" + hashlib.sha256(text.encode()).hexdigest()[:12]
        usage = {"prompt_tokens": 5, "completion_tokens": len(text.split()), "total_tokens": 5 + len(text.split())}
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(_events(ident, model, text, usage if include_usage else None), media_type="text/event-stream")
        return JSONResponse(
            {
                "id": ident,
                "object": "chat.completion",
                "created": 1_700_000_000,
                "model": model,
                "system_fingerprint": FINGERPRINT,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop", "logprobs": None}],
                "usage": usage,
            },
            headers={"x-request-id": "req-fake"},
        )


async def _events(ident: str, model: str, text: str, usage: dict[str, int] | None) -> AsyncIterator[bytes]:
    base = {"id": ident, "object": "chat.completion.chunk", "created": int(time.time()), "model": model, "system_fingerprint": FINGERPRINT}

    def frame(choices: list[dict[str, Any]], **extra: Any) -> bytes:
        return b"data: " + json.dumps({**base, "choices": choices, **extra}).encode() + b"\n\n"

    yield frame([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
    for word in text.split(" "):
        yield frame([{"index": 0, "delta": {"content": word + " "}, "finish_reason": None}])
    yield frame([{"index": 0, "delta": {}, "finish_reason": "stop"}])
    if usage is not None:
        yield frame([], usage=usage)
    yield b"data: [DONE]\n\n"
