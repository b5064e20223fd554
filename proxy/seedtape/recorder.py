"""Forwarding a request upstream and, when asked, recording what came back.

A non-streamed answer is saved before the client gets it, so a client that saw
``x-seedtape-cache: recorded`` can trust the file is on disk. A stream is passed on
event by event as it arrives and saved just before its family's end marker is passed
on (``data: [DONE]`` for chat, ``response.completed`` for Responses, ...). A stream
that breaks first, or ends without its marker, is never saved, and its client's
connection is aborted: the SDK raises, exactly as it would against the broken
upstream, instead of returning a short answer as if it were whole.

Every exchange has a deadline: ``--upstream-timeout`` bounds it from the request to
the last byte, and ``--stream-idle-timeout`` bounds the silence between two events
of a stream. An answer is bounded too: ``--max-response`` decoded bytes (a gzip bomb
stops there) and ``--max-stream-events`` events. Before the first byte reaches the
client, breaking one of these is an OpenAI-shaped 504 or 502; once a stream has
started, it ends with an OpenAI-shaped error event (the SDK raises ``APIError`` with
the message) and nothing is saved.
"""

from __future__ import annotations

import asyncio
import codecs
import json
import logging
import time
import zlib
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
from httpx_sse._decoders import SSEDecoder, SSELineDecoder  # parsing stays httpx-sse's; see _Events
from starlette.responses import Response, StreamingResponse

from seedtape import bigjson
from seedtape.episode import make_episode
from seedtape.errors import ProxyError, error_body
from seedtape.exchange import Exchange
from seedtape.families import Family, StreamEnd
from seedtape.headers import client_response_headers
from seedtape.sse import encode_event, event_data, glance
from seedtape.upstream import Upstream, upstream_failure

log = logging.getLogger("seedtape")
# Called with a complete episode (or a function building one: a long stream's episode
# is built off the event loop) and the answer's size in bytes; returns the episode
# number it was saved as, or None when the disk refused it (the answer is "unsaved").
Build = Callable[[], dict[str, Any]]
Save = Callable[[dict[str, Any] | Build, int], Awaitable[int | None]]
UNSAVED = "unsaved"
# An answer this big is parsed in a worker thread, in pieces (bigjson.py).
OFF_LOOP_BYTES = 256 * 1024
YIELD_EVERY = 64  # stream events handled (and written at most) between two chances for other requests to run
DECODE_STEP = 1024 * 1024  # most decompressed bytes made at once


@dataclass(frozen=True, slots=True)
class Limits:
    """What one upstream exchange may take (Settings: --upstream-timeout and friends)."""

    timeout: float = 600.0
    idle: float | None = 300.0
    max_bytes: int = 128 * 1024 * 1024
    max_events: int = 100_000


# One stream event as kept while a stream passes: ms since the first, data as sent, SSE name.
Raw = tuple[int, str, str | None]


def stored_events(raw: list[Raw]) -> list[dict[str, Any]]:
    """Kept events as a cassette stores them (parsed data), a slice at a time."""
    events: list[dict[str, Any]] = []
    for ms, text, name in raw:
        event: dict[str, Any] = {"ms": ms, "data": event_data(text)}
        if name:
            event["event"] = name
        events.append(event)
        if len(events) % bigjson.SLICE == 0:
            bigjson.breathe()
    return events


class StreamStopped(ProxyError):
    """seedtape itself stopped an upstream answer: a deadline or a size limit."""


def _ms_since(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def is_event_stream(response: httpx.Response) -> bool:
    content_type: str = response.headers.get("content-type", "")
    return content_type.startswith("text/event-stream")


async def _open(upstream: Upstream, exchange: Exchange, deadline: float) -> tuple[httpx.Response, float]:
    return await upstream.open(exchange.method, exchange.path, exchange.query, exchange.forward_headers, exchange.raw, deadline)


def _deadline(limits: Limits) -> float:
    return asyncio.get_running_loop().time() + limits.timeout


async def forward(
    upstream: Upstream,
    exchange: Exchange,
    headers: dict[str, str],
    save: Save | None = None,
    record_errors: bool = False,
    keep_headers: frozenset[str] = frozenset(),
    limits: Limits = Limits(),
) -> Response:
    """Forward one recorded-route request; ``save`` is called for a recordable answer.

    ``headers`` are the ``x-seedtape-*`` headers for the client; ``x-seedtape-cache``
    and ``x-seedtape-episode`` in it are corrected when nothing was saved.
    """
    deadline = _deadline(limits)
    response, started = await _open(upstream, exchange, deadline)
    if 200 <= response.status_code < 300 and is_event_stream(response):
        events = _Events(upstream.base_url, response, deadline, limits)
        try:
            # The first event before the status goes out: an upstream that sends headers
            # and then nothing (or a drip) is a clean 504, not a stream left hanging.
            first = await events.next()
            if first is None:
                raise cut_short(exchange.family, upstream.base_url)
        except BaseException:
            await events.aclose()
            raise
        tee = _tee(upstream, exchange.family, events, first, started, save, keep_headers)
        return StreamingResponse(tee, status_code=response.status_code, headers=_merge(response, headers))
    content = await read_body(upstream.base_url, response, deadline, limits)
    ok = 200 <= response.status_code < 300
    stored = await stored_answer(exchange.family, response, content, ok)
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
        number = await save(episode, len(content))
        if number is None:
            _unsaved(headers)
        else:
            headers["x-seedtape-cache"] = "recorded"
            headers["x-seedtape-episode"] = str(number)
    else:
        _not_saved(headers)
    return Response(content, status_code=response.status_code, headers=_merge(response, headers))


async def read_body(base_url: str, response: httpx.Response, deadline: float, limits: Limits) -> bytes:
    """The whole decoded body, by the deadline and within ``--max-response``."""
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout_at(deadline):
            async for chunk in decoded(response):
                size += len(chunk)
                if size > limits.max_bytes:
                    raise too_large(base_url, limits)
                chunks.append(chunk)
    except TimeoutError as exc:
        raise late(base_url, limits) from exc
    except httpx.HTTPError as exc:
        raise upstream_failure(exc, base_url) from exc
    finally:
        await response.aclose()
    return b"".join(chunks)


def late(base_url: str, limits: Limits, idle: bool = False) -> StreamStopped:
    if idle:
        message = f"upstream {base_url} timed out: no stream event for {limits.idle:g} s (--stream-idle-timeout); nothing was recorded"
    else:
        message = (
            f"upstream {base_url} timed out: its answer did not end within --upstream-timeout {limits.timeout:g} s; nothing was recorded"
        )
    return StreamStopped(504, message, "upstream_timeout", "upstream_timeout")


def too_large(base_url: str, limits: Limits, events: bool = False) -> StreamStopped:
    if events:
        message = f"upstream {base_url} sent a stream of more than {limits.max_events} events (--max-stream-events); nothing was recorded"
    else:
        message = (
            f"upstream {base_url} sent an answer of more than {limits.max_bytes} bytes once decoded (--max-response); nothing was recorded"
        )
    return StreamStopped(502, message, "upstream_error", "response_too_large")


async def stored_answer(family: Family, response: httpx.Response, content: bytes, ok: bool) -> dict[str, Any] | None:
    """The answer as ``make_episode`` takes it (body, text or binary), or None when it
    is none of the kinds the family answers with. A big one is parsed off the loop."""
    if len(content) < OFF_LOOP_BYTES:
        return _stored_answer(family, response, content, ok)
    return await anyio.to_thread.run_sync(_stored_answer, family, response, content, ok)


def _stored_answer(family: Family, response: httpx.Response, content: bytes, ok: bool) -> dict[str, Any] | None:
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
        if len(content) >= OFF_LOOP_BYTES:
            try:
                return bigjson.loads(bigjson.decode_utf8(content))
            except UnicodeDecodeError:
                pass  # UTF-16 or -32 JSON: the standard library detects it
        return json.loads(content)
    except (ValueError, RecursionError):
        return None


def _not_saved(headers: dict[str, str]) -> None:
    if headers.get("x-seedtape-cache") == "recorded":
        headers["x-seedtape-cache"] = "miss"
    headers.pop("x-seedtape-episode", None)


def _unsaved(headers: dict[str, str]) -> None:
    """The answer was paid for and is passed on, but the disk refused it."""
    headers["x-seedtape-cache"] = UNSAVED
    headers.pop("x-seedtape-episode", None)


def _merge(response: httpx.Response, headers: dict[str, str]) -> dict[str, str]:
    merged = dict(client_response_headers(response.headers.multi_items()))
    merged.update(headers)
    return merged


def cut_short(family: Family, base_url: str) -> ProxyError:
    return ProxyError(
        502, f"upstream {base_url} ended its {family.name} stream before its end event; nothing was recorded", "upstream_error"
    )


async def decoded(response: httpx.Response) -> AsyncIterator[bytes]:
    """The body decoded, at most ``DECODE_STEP`` bytes per piece, with a pause between.

    Recorded routes ask upstream for gzip or deflate only (headers.py). httpx would
    inflate each network read in one call: 64 KB of a gzip bomb is 64 MB out, ~30 ms
    of the event loop; here it comes out a megabyte at a time, and the size limit
    stops it after the first pieces over ``--max-response``.
    """
    if response.is_stream_consumed:  # a response built whole (a stub transport): already decoded
        yield response.content
        return
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if encoding in ("", "identity"):
        async for chunk in response.aiter_raw():
            yield chunk
        return
    if encoding not in ("gzip", "x-gzip", "deflate"):
        async for chunk in response.aiter_bytes():  # not asked for; httpx knows more encodings
            yield chunk
        return
    gzip = encoding != "deflate"
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16 if gzip else zlib.MAX_WBITS)
    first = True
    async for raw in response.aiter_raw():
        data = raw
        while data:
            try:
                out = inflater.decompress(data, DECODE_STEP)
            except zlib.error as exc:
                if first and not gzip:  # "deflate" sent raw, without its zlib header (as httpx allows)
                    inflater, first = zlib.decompressobj(-zlib.MAX_WBITS), False
                    continue
                raise httpx.DecodingError(f"{encoding} answer cannot be decoded: {exc}") from exc
            first = False
            data = inflater.unconsumed_tail
            if out:
                yield out
            if data:
                await asyncio.sleep(0)
    tail = inflater.flush()
    if tail:
        yield tail


class _CountedText:
    """A response's text, counted against ``--max-response`` before the SSE parser
    buffers any of it."""

    def __init__(self, response: httpx.Response, base_url: str, limits: Limits) -> None:
        self._response = response
        self._base_url = base_url
        self._limits = limits
        self.size = 0

    async def aiter_text(self) -> AsyncGenerator[str, None]:
        text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        async for chunk in decoded(self._response):
            self.size += len(chunk)
            if self.size > self._limits.max_bytes:
                raise too_large(self._base_url, self._limits)
            yield text.decode(chunk)
        yield text.decode(b"", final=True)


class _Events:
    """An upstream stream as timed events, under the exchange's deadline and limits.

    Events are parsed a network read at a time (httpx-sse's line and event decoders,
    driven here rather than through its async iterator): what one read brought is
    known at once, so the relay passes it on in one write instead of one per event,
    and the deadline is armed once per read. A flood of 100,000 events arrives a
    thousand per read; per event, that was most of the proxy's time.
    """

    def __init__(self, base_url: str, response: httpx.Response, deadline: float, limits: Limits) -> None:
        self.response = response
        self.count = 0
        self._base_url = base_url
        self._deadline = deadline
        self._limits = limits
        self._text = _CountedText(response, base_url, limits)
        self._chunks = self._text.aiter_text()
        self._lines = SSELineDecoder()
        self._decoder = SSEDecoder()
        self._ready: deque[tuple[Raw, Any]] = deque()
        self._over: StreamStopped | None = None  # raised once the events before it are passed on
        self._ended = False
        self._first: float | None = None

    @property
    def size(self) -> int:
        return self._text.size

    async def next(self) -> tuple[Raw, Any] | None:
        """The next event (ms since the first, its data as sent, SSE name) and its data
        parsed for a look (``sse.glance``); None at the end. Callers keep the first part only: text is no work for
        the garbage collector, a parsed event is a dozen objects (see bigjson.quiet_gc)."""
        if not self._ready:
            idle = self._limits.idle
            limit = self._deadline if idle is None else min(self._deadline, asyncio.get_running_loop().time() + idle)
            while not self._ready and self._over is None and not self._ended:
                await self._read(limit)
        return self.ready()

    def ready(self) -> tuple[Raw, Any] | None:
        """The next event if it has already arrived, without waiting; else None."""
        if self._ready:
            return self._ready.popleft()
        if self._over is not None:
            raise self._over
        return None

    async def _read(self, limit: float) -> None:
        try:
            async with asyncio.timeout_at(limit):
                text = await anext(self._chunks, None)
        except TimeoutError as exc:
            raise late(self._base_url, self._limits, idle=limit < self._deadline) from exc
        except httpx.TimeoutException as exc:
            raise late(self._base_url, self._limits) from exc
        except httpx.HTTPError as exc:
            raise upstream_failure(exc, self._base_url) from exc
        if text is None:
            self._ended = True
            lines = self._lines.flush()
        else:
            lines = self._lines.decode(text) if text else []
        now = time.perf_counter()
        for line in lines:
            sse = self._decoder.decode(line.rstrip("\n"))
            if sse is None:
                continue
            self.count += 1
            if self.count > self._limits.max_events:
                self._over = too_large(self._base_url, self._limits, events=True)
                return
            self._first = self._first if self._first is not None else now
            name = sse.event if sse.event and sse.event != "message" else None
            self._ready.append(((int((now - self._first) * 1000), sse.data, name), glance(sse.data)))

    async def aclose(self) -> None:
        try:
            await self._chunks.aclose()
        finally:
            await self.response.aclose()


def error_event(error: ProxyError, named: bool) -> bytes:
    """seedtape's own error, as the last event of a stream it had to stop: the body of
    an OpenAI error, which the SDK raises as ``APIError`` with this message."""
    return encode_event(error_body(error.message, error.type, error.code, error.param), "error" if named else None)


async def _tee(
    upstream: Upstream,
    family: Family,
    source: _Events,
    first: tuple[Raw, Any],
    started: float,
    save: Save | None,
    keep_headers: frozenset[str],
) -> AsyncIterator[bytes]:
    kept: list[Raw] = []
    ended: StreamEnd | None = None
    response = source.response
    event: tuple[Raw, Any] | None = first
    out: list[bytes] = []  # the events that came in one network read, passed on in one write
    try:
        while event is not None:
            raw, data = event
            kept.append(raw)
            end = family.stream_end(data)
            if end is StreamEnd.COMPLETE and ended is None and save is not None:
                if out:
                    yield b"".join(out)
                    out = []
                build = _stream_episode(response, kept, _ms_since(started) - raw[0], keep_headers, family)
                if await save(build, source.size) is None:
                    # The header went out before the save; say it in the stream too (an
                    # SSE comment: parsers skip it) and in the log (Engine.save).
                    yield b": seedtape: this stream was not saved (disk error, see the proxy's log)\n\n"
            ended = ended or end
            out.append(_frame(raw))
            del data
            event = source.ready() if len(out) < YIELD_EVERY else None
            if event is None:
                full = len(out) >= YIELD_EVERY
                yield b"".join(out)
                out = []
                if full:
                    # More events may be waiting, read without a pause: let the other
                    # requests run in between.
                    await asyncio.sleep(0)
                event = await source.next()
    except StreamStopped as stopped:
        # seedtape's own limit or deadline: a clear error the SDK raises, nothing saved.
        log.warning("seedtape: %s", stopped.message)
        if out:
            yield b"".join(out)
        yield error_event(stopped, any(name for _, _, name in kept[:8]))
        return
    finally:
        await source.aclose()
    if ended is None:
        raise cut_short(family, upstream.base_url)  # aborts the client's connection the same way


def _stream_episode(response: httpx.Response, kept: list[Raw], latency: int, keep_headers: frozenset[str], family: Family) -> Build:
    """A complete stream's episode, built when called (in a worker thread for a long one)."""

    def build() -> dict[str, Any]:
        return make_episode(
            response.status_code,
            response.headers,
            events=stored_events(kept),
            latency_ms=latency,
            keep_headers=keep_headers,
            family=family,
        )

    return build


def _frame(raw: Raw) -> bytes:
    """An event as the client gets it: its data as upstream sent it (one line), or
    re-encoded when it spanned several ``data:`` lines."""
    text = raw[1]
    return encode_event(text if "\n" not in text and "\r" not in text else event_data(text), raw[2])


async def capture(
    upstream: Upstream,
    exchange: Exchange,
    keep_headers: frozenset[str] = frozenset(),
    limits: Limits = Limits(),
) -> tuple[dict[str, Any], httpx.Headers]:
    """Forward and read the whole answer into an episode, saving nothing (for verify).

    A stream is read to its end: verify compares the assembled answer, and its
    ``x-seedtape-drift`` header can only be known once the stream is complete.
    """
    family = exchange.family
    deadline = _deadline(limits)
    response, started = await _open(upstream, exchange, deadline)
    if 200 <= response.status_code < 300 and is_event_stream(response):
        source = _Events(upstream.base_url, response, deadline, limits)
        kept: list[Raw] = []
        complete = False
        try:
            while (event := await source.next()) is not None:
                kept.append(event[0])
                complete = complete or family.stream_end(event[1]) is StreamEnd.COMPLETE
                if source.count % YIELD_EVERY == 0:
                    await asyncio.sleep(0)
        finally:
            await source.aclose()
        if not complete:
            raise cut_short(family, upstream.base_url)
        build = _stream_episode(response, kept, _ms_since(started) - kept[-1][0], keep_headers, family)
        if len(kept) <= bigjson.SLICE:
            return build(), response.headers
        return await anyio.to_thread.run_sync(build), response.headers
    content = await read_body(upstream.base_url, response, deadline, limits)
    stored = await stored_answer(family, response, content, 200 <= response.status_code < 300)
    if stored is None:
        raise ProxyError(
            502, f"upstream {upstream.base_url} answered {response.status_code} with a body that is not JSON", "upstream_error"
        )
    episode = make_episode(
        response.status_code, response.headers, **stored, latency_ms=_ms_since(started), keep_headers=keep_headers, family=family
    )
    return episode, response.headers
