"""ASGI factories the HTTP benchmarks run under uvicorn in a separate process.

``bare_app``: the limit -- a Starlette app with one catch-all route that reads the
request body and answers fixed bytes (the very bytes seedtape's replay sends, with
the same headers), or for a stream the same SSE frames.
"""

from __future__ import annotations

import json
import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route


def bare_app() -> Starlette:
    spec = json.loads(open(os.environ["BENCH_BARE_SPEC"], encoding="utf-8").read())
    body = bytes.fromhex(spec["body_hex"])
    headers = dict(spec["headers"])
    frames = [bytes.fromhex(f) for f in spec.get("frames_hex", [])]
    one_write = spec.get("one_write", True)

    async def answer(request: Request) -> Response:
        await request.body()
        if frames:
            if one_write:
                async def joined():
                    yield b"".join(frames)
                return StreamingResponse(joined(), headers=headers)

            async def each():
                for frame in frames:
                    yield frame
            return StreamingResponse(each(), headers=headers)
        return Response(body, headers=headers)

    async def health(request: Request) -> Response:
        return Response(b"ok")

    return Starlette(routes=[Route("/_seedtape/health", health), Route("/{path:path}", answer, methods=["POST"])])
