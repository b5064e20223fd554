"""ASGI factories the HTTP benchmarks run under uvicorn in a separate process.

``bare_app``: the limit -- a Starlette app with one catch-all route that reads the
request body and answers fixed bytes (the very bytes seedtape's replay sends, with
the same headers), or for a stream the same SSE frames (all in one write, or
``frames_per_write`` at a time).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route


def bare_app() -> Starlette:
    spec = json.loads(Path(os.environ["BENCH_BARE_SPEC"]).read_text(encoding="utf-8"))
    body = bytes.fromhex(spec["body_hex"])
    headers = dict(spec["headers"])
    frames = [bytes.fromhex(f) for f in spec.get("frames_hex", [])]
    one_write = spec.get("one_write", True)
    per_write = int(spec.get("frames_per_write", 1))  # when not one_write

    async def answer(request: Request) -> Response:
        await request.body()
        if frames:
            if one_write:

                async def joined():
                    yield b"".join(frames)

                return StreamingResponse(joined(), headers=headers)

            async def each():
                for start in range(0, len(frames), per_write):
                    yield b"".join(frames[start : start + per_write])

            return StreamingResponse(each(), headers=headers)
        return Response(body, headers=headers)

    async def health(request: Request) -> Response:
        return Response(b"ok")

    return Starlette(routes=[Route("/_seedtape/health", health), Route("/{path:path}", answer, methods=["POST"])])


def forward_app() -> Starlette:
    """The floor of one more HTTP hop: read the body, POST it upstream with httpx, answer
    what came back (an event stream passed on as its bytes arrive). What any Python
    forwarding proxy pays before doing anything else."""
    import httpx

    upstream = os.environ["BENCH_FORWARD_UPSTREAM"]
    transport = httpx.AsyncHTTPTransport()
    timeout = httpx.Timeout(30.0).as_dict()

    async def answer(request: Request) -> Response:
        body = await request.body()
        sent = httpx.Request(
            "POST",
            upstream + request.url.path,
            content=body,
            headers=[(b"content-type", b"application/json")],
            extensions={"timeout": timeout},
        )
        got = await transport.handle_async_request(sent)
        if got.headers.get("content-type", "").startswith("text/event-stream"):

            async def relay():
                try:
                    async for chunk in got.stream:
                        yield chunk
                finally:
                    await got.aclose()

            return StreamingResponse(relay(), status_code=got.status_code, headers={"content-type": got.headers["content-type"]})
        content = await got.aread()
        return Response(content, status_code=got.status_code, headers={"content-type": got.headers.get("content-type", "")})

    async def health(request: Request) -> Response:
        return Response(b"ok")

    return Starlette(routes=[Route("/_seedtape/health", health), Route("/{path:path}", answer, methods=["POST"])])
