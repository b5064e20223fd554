"""Sync transports that answer from the in-process proxy app, for both HTTP stacks.

openai 3.x sends through ``httpx2`` and still accepts legacy ``httpx`` clients; each
gets a transport class of its own kind, sharing :func:`call_asgi`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from seedtape.client.loop import ASGIApp, LoopThread, call_asgi

# Decides per request whether it may run in the caller's thread (a replay: see LoopThread).
RunsHere = Callable[[Any], bool]


def _exchange(loop: LoopThread, app: ASGIApp, request: Any, here: RunsHere) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    url = request.url
    return loop.call(
        call_asgi,
        app,
        request.method,
        url.scheme,
        url.host,
        url.port,
        url.raw_path.split(b"?")[0],
        url.query,
        list(request.headers.raw),
        request.read(),
        here=here(request),
    )


def _never(request: Any) -> bool:
    return False


def httpx2_transport(app: ASGIApp, loop: LoopThread, here: RunsHere = _never) -> Any:
    import httpx2

    class Httpx2InProcessTransport(httpx2.BaseTransport):
        def handle_request(self, request: httpx2.Request) -> httpx2.Response:
            status, headers, body = _exchange(loop, app, request, here)
            return httpx2.Response(status, headers=headers, content=body, request=request)

    return Httpx2InProcessTransport()


def httpx_transport(app: ASGIApp, loop: LoopThread, here: RunsHere = _never) -> Any:
    import httpx

    class HttpxInProcessTransport(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            status, headers, body = _exchange(loop, app, request, here)
            return httpx.Response(status, headers=headers, content=body, request=request)

    return HttpxInProcessTransport()
