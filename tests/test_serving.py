"""``serve_in_thread``: a prompt stop that still lets requests in flight finish."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from seedtape.serving import serve_in_thread


def app_with(events: list[str], arrived: threading.Event) -> Starlette:
    async def slow(request: Request) -> PlainTextResponse:
        arrived.set()
        await asyncio.sleep(0.3)
        events.append("answered")
        return PlainTextResponse("done")

    async def fast(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        events.append("lifespan shutdown")

    return Starlette(routes=[Route("/slow", slow), Route("/fast", fast)], lifespan=lifespan)


def test_stop_waits_for_a_request_in_flight_then_runs_the_lifespan_shutdown() -> None:
    events: list[str] = []
    arrived = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        with serve_in_thread(app_with(events, arrived)) as url:
            answer = pool.submit(httpx.get, url + "/slow", timeout=5)
            assert arrived.wait(5)
        assert events == ["answered", "lifespan shutdown"], "the stop waited for the answer, then shut the app down"
        assert answer.result().text == "done"


def test_an_idle_keep_alive_connection_does_not_hold_the_stop() -> None:
    events: list[str] = []
    with httpx.Client() as client:
        with serve_in_thread(app_with(events, threading.Event())) as url:
            assert client.get(url + "/fast").text == "ok"  # the connection stays open, idle
            started = time.monotonic()
        elapsed = time.monotonic() - started
    assert elapsed < 1.5, f"waited {elapsed:.2f}s: the idle connection was waited on like a busy one (timeout 2 s)"
    assert events == ["lifespan shutdown"]
