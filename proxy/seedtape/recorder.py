"""Forwarding a request upstream and, when asked, recording what came back.

A non-streamed answer is saved before the client gets it, so a client that saw
``x-seedtape-cache: recorded`` can trust the file is on disk. A stream is passed on
event by event as it arrives and saved just before its family's end marker is passed
on (``data: [DONE]`` for chat, ``response.completed`` for Responses, ...). A stream
that breaks first, or ends without its marker, is never saved, and its client's
connection is aborted: the SDK raises, exactly as it would against the broken
upstream, instead of returning a short answer as if it were whole.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
from httpx_sse import EventSource
from starlette.responses import Response, StreamingResponse

from seedtape.episode import make_episode
from seedtape.errors import ProxyError
from seedtape.exchange import Exchange
from seedtape.families import Family, StreamEnd
from seedtape.headers import client_response_headers
from seedtape.sse import encode_event, event_data
from seedtape.upstream import Upstream, upstream_failure

# Called with a complete episode; returns the episode number it was saved as.
Save = Callable[[dict[str, Any]], Awaitable[int]]


def _ms_since(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def is_event_stream(response: httpx.Response) -> bool:
    content_type: str = response.headers.get("content-type", "")
    return content_type.startswith("text/event-stream")


async def _open(upstream: Upstream, exchange: Exchange) -> tuple[httpx.Response, float]:
    return await upstream.open(exchange.method, exchange.path, exchange.query, exchange.forward_headers, exchange.raw)


async def forward(
    upstream: Upstream,
    exchange: Exchange,
    headers: dict[str, str],
    save: Save | None = None,
    record_errors: bool = False,
    keep_headers: frozenset[str] = frozenset(),
) -> Response:
    """Forward one recorded-route request; ``save`` is called for a recordable answer.

    ``headers`` are the ``x-seedtape-*`` headers for the client; ``x-seedtape-cache``
    and ``x-seedtape-episode`` in it are corrected when nothing was saved.
    """
    response, started = await _open(upstream, exchange)
    if 200 <= response.status_code < 300 and is_event_stream(response):
        tee = _tee(upstream, exchange.family, response, started, save, keep_headers)
        return StreamingResponse(tee, status_code=response.status_code, headers=_merge(response, headers))
    try:
        content = await response.aread()
    except httpx.HTTPError as exc:
        raise upstream_failure(exc, upstream.base_url) from exc
    finally:
        await response.aclose()
    ok = 200 <= response.status_code < 300
    stored = _stored_answer(exchange.family, response, content, ok)
    if ok and stored is None:
        raise ProxyError(
            502,
            f"upstream {upstream.base_url} answered {response.status_code} with a body that is not JSON "
            f"({len(content)} bytes, content-type {response.headers.get('content-type', 'none')!r}); nothing was recorded",
            "upstream_error",
        )
    if save is not None and stored is not None and (ok or record_errors):
        episode = make_episode(
            response.status_code,
            response.headers,
            **stored,
            latency_ms=_ms_since(started),
            keep_headers=keep_headers,
            family=exchange.family,
        )
        headers["x-seedtape-episode"] = str(await save(episode))
    else:
        _not_saved(headers)
    return Response(content, status_code=response.status_code, headers=_merge(response, headers))


def _stored_answer(family: Family, response: httpx.Response, content: bytes, ok: bool) -> dict[str, Any] | None:
    """The answer as ``make_episode`` takes it (body, text or binary), or None when it
    is none of the kinds the family answers with."""
    content_type = response.headers.get("content-type", "")
    if ok and "text" in family.answers and content_type.startswith("text/"):
        # Before JSON: a plain-text transcript that happens to parse ("42\n") is text.
        try:
            return {"text": content.decode("utf-8")}
        except UnicodeDecodeError:
            return None
    body = _json_or_none(content)
    if body is not None:
        return {"body": body}
    if not ok:
        return None
    if "binary" in family.answers:
        return {"binary": content}
    return None


def _json_or_none(content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        return None


def _not_saved(headers: dict[str, str]) -> None:
    if headers.get("x-seedtape-cache") == "recorded":
        headers["x-seedtape-cache"] = "miss"
    headers.pop("x-seedtape-episode", None)


def _merge(response: httpx.Response, headers: dict[str, str]) -> dict[str, str]:
    merged = dict(client_response_headers(response.headers.multi_items()))
    merged.update(headers)
    return merged


def cut_short(family: Family, base_url: str) -> ProxyError:
    return ProxyError(
        502, f"upstream {base_url} ended its {family.name} stream before its end event; nothing was recorded", "upstream_error"
    )


async def _tee(
    upstream: Upstream, family: Family, response: httpx.Response, started: float, save: Save | None, keep_headers: frozenset[str]
) -> AsyncIterator[bytes]:
    events: list[dict[str, Any]] = []
    ended: StreamEnd | None = None
    try:
        async for event in _timed_events(response):
            events.append(event)
            end = family.stream_end(event["data"])
            if end is StreamEnd.COMPLETE and ended is None and save is not None:
                latency = _ms_since(started) - event["ms"]
                episode = make_episode(
                    response.status_code, response.headers, events=events, latency_ms=latency, keep_headers=keep_headers, family=family
                )
                await save(episode)
            ended = ended or end
            yield encode_event(event["data"], event.get("event"))
    except httpx.HTTPError as exc:
        # Re-raised so the server aborts the client's connection: a broken upstream
        # stream must look broken to the client too, not like a short answer.
        raise upstream_failure(exc, upstream.base_url) from exc
    finally:
        await response.aclose()
    if ended is None:
        raise cut_short(family, upstream.base_url)  # aborts the client's connection the same way


async def capture(
    upstream: Upstream, exchange: Exchange, keep_headers: frozenset[str] = frozenset()
) -> tuple[dict[str, Any], httpx.Headers]:
    """Forward and read the whole answer into an episode, saving nothing (for verify).

    A stream is read to its end: verify compares the assembled answer, and its
    ``x-seedtape-drift`` header can only be known once the stream is complete.
    """
    family = exchange.family
    response, started = await _open(upstream, exchange)
    try:
        if 200 <= response.status_code < 300 and is_event_stream(response):
            events = [event async for event in _timed_events(response)]
            if not any(family.stream_end(e["data"]) is StreamEnd.COMPLETE for e in events):
                raise cut_short(family, upstream.base_url)
            latency = _ms_since(started) - events[-1]["ms"]
            episode = make_episode(
                response.status_code, response.headers, events=events, latency_ms=latency, keep_headers=keep_headers, family=family
            )
            return episode, response.headers
        content = await response.aread()
    except httpx.HTTPError as exc:
        raise upstream_failure(exc, upstream.base_url) from exc
    finally:
        await response.aclose()
    stored = _stored_answer(family, response, content, 200 <= response.status_code < 300)
    if stored is None:
        raise ProxyError(
            502, f"upstream {upstream.base_url} answered {response.status_code} with a body that is not JSON", "upstream_error"
        )
    episode = make_episode(
        response.status_code, response.headers, **stored, latency_ms=_ms_since(started), keep_headers=keep_headers, family=family
    )
    return episode, response.headers


async def _timed_events(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """Upstream SSE events (parsed by httpx-sse) as stored: data and ms since the first."""
    first: float | None = None
    async for sse in EventSource(response).aiter_sse():
        now = time.perf_counter()
        first = first if first is not None else now
        event: dict[str, Any] = {"ms": int((now - first) * 1000), "data": event_data(sse.data)}
        if sse.event and sse.event != "message":
            event["event"] = sse.event
        yield event
