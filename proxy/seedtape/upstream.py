"""Forwarding to the real service (or the built-in simulator).

Failures that produced no response become OpenAI-shaped 502/504 answers here, so every
caller sees either an upstream response or a ProxyError, nothing else.

Requests go straight to an httpx transport, not through ``httpx.AsyncClient``: a proxy
needs none of the client's layers (base-URL merging, cookies, auth flows, redirects,
event hooks), and skipping them takes ~0.1 ms off every recorded request
(bench/record.py). The transport is still httpx's, so timeouts, connection pooling and
error types are the library's, and tests can pass any ``httpx.AsyncBaseTransport``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import httpx

from seedtape.config import SIM_UPSTREAM
from seedtape.errors import ProxyError


class Upstream:
    def __init__(self, base_url: str, timeout: float, transport: httpx.AsyncBaseTransport | None = None) -> None:
        if base_url == SIM_UPSTREAM:
            if transport is None:
                raise ValueError(
                    "upstream 'sim' is the built-in simulator: pass upstream_transport=seedtape.sim.transport(), "
                    "or run `seedtape serve --upstream sim`"
                )
            base_url = "http://sim.local"
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        # trust_env=False: no proxy or netrc from the environment; seedtape is the proxy.
        self._transport = transport or httpx.AsyncHTTPTransport(trust_env=False)
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 30.0)).as_dict()

    async def aclose(self) -> None:
        await self._transport.aclose()

    def url_for(self, path: str) -> str:
        return self.base_url + "/" + path.lstrip("/")

    async def open(
        self, method: str, path: str, query: str, headers: Sequence[tuple[str, str]], body: bytes, deadline: float | None = None
    ) -> tuple[httpx.Response, float]:
        """Send and return the response with its body not yet read, and the start time.

        ``path`` is the request path as the client sent it (percent-escapes and all),
        so upstream gets the path the key describes. ``deadline`` (event loop time)
        bounds the wait for the status line and headers, whatever httpx's per-read
        timeouts would allow.
        """
        url = self.url_for(path) + (f"?{query}" if query else "")
        # Header values go on as the bytes that came in (ASGI decodes them as latin-1);
        # httpx would otherwise insist on ASCII and fail on a client's non-ASCII value.
        raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        request = httpx.Request(method, url, headers=raw_headers, content=body, extensions={"timeout": self._timeout})
        started = time.perf_counter()
        try:
            if deadline is None:
                response = await self._transport.handle_async_request(request)
            else:
                async with asyncio.timeout_at(deadline):
                    response = await self._transport.handle_async_request(request)
            response.request = request
            return response, started
        except TimeoutError as exc:
            raise ProxyError(
                504, f"upstream {self.base_url} timed out: no answer within --upstream-timeout {self.timeout:g} s", "upstream_timeout"
            ) from exc
        except httpx.LocalProtocolError as exc:  # e.g. a header value HTTP/1.1 cannot carry
            raise ProxyError(400, f"request cannot be forwarded upstream: {exc}", "invalid_request_error") from exc
        except httpx.TimeoutException as exc:
            raise ProxyError(504, f"upstream {self.base_url} timed out ({type(exc).__name__})", "upstream_timeout") from exc
        except httpx.HTTPError as exc:
            raise ProxyError(502, f"upstream {self.base_url} unreachable: {type(exc).__name__}: {exc}", "upstream_error") from exc


def upstream_failure(exc: Exception, base_url: str) -> ProxyError:
    """The client-facing error for a failure while reading an upstream body."""
    if isinstance(exc, httpx.TimeoutException):
        return ProxyError(504, f"upstream {base_url} timed out while sending its answer", "upstream_timeout")
    return ProxyError(502, f"upstream {base_url} broke off its answer: {type(exc).__name__}", "upstream_error")
