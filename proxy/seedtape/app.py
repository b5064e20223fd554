"""The ASGI application: recorded routes go to a mode, everything else is forwarded.

Routing is a single classification (``routes.match_route``) rather than a route
table, because every path that is not recorded must still be forwarded untouched.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from seedtape._version import __version__
from seedtape.cassette import remove_stale_temp_files
from seedtape.config import Settings
from seedtape.coordination.filelocks import remove_stale_locks
from seedtape.engine import Engine
from seedtape.errors import ProxyError, error_response
from seedtape.exchange import Exchange, raw_path, read_body, read_exchange
from seedtape.headers import client_response_headers, upstream_request_headers
from seedtape.modes import MODE_HEADER, Mode, check_mode, mode_named
from seedtape.realtime.gateway import RealtimeGateway
from seedtape.replayer import seedtape_headers
from seedtape.routes import match_route
from seedtape.security import TokenGuard
from seedtape.teams.admin import fleet_stats, store_health

log = logging.getLogger("seedtape")


def create_app(
    settings: Settings | None = None,
    *,
    upstream_transport: httpx.AsyncBaseTransport | None = None,
) -> Starlette:
    settings = settings or Settings()
    check_mode(settings.mode)
    if not settings.session:
        settings = settings.with_(session=uuid.uuid4().hex[:12])
    engine = Engine(settings, upstream_transport)

    async def proxy(request: Request) -> Response:
        path = request.scope["path"]
        # No query string (the OpenAI shapes): skip building query_params.
        api_version = request.query_params.get("api-version", "") if request.scope["query_string"] else ""
        match = match_route(request.method, path, api_version)
        exchange: Exchange | None = None
        try:
            # A control character (%00, %0d%0a) in the decoded path or api-version would
            # split a log line, and no OpenAI path has one (isprintable: C-fast).
            if not path.isprintable() or not api_version.isprintable():
                raise ProxyError(
                    400, "the request path holds a control character (such as %00 or %0A); refused", "invalid_request_error", "invalid_path"
                )
            if match is None:
                return await forward_untouched(engine, request, settings)
            engine.coordinator.incr("requests")
            mode = request_mode(request, settings)
            exchange = await read_exchange(request, match, settings, mode.name, mode.offline)
            exchange.occurrence = await engine.next_occurrence(exchange)
            response = await mode.handle(engine, exchange)
            if response.status_code >= 400 and response.headers.get("x-seedtape-cache") not in ("hit", "recorded"):
                engine.give_back(exchange)  # an upstream error passed through: the retry is the same occurrence
            return response
        except ProxyError as exc:
            engine.coordinator.incr("errors")
            if exchange is not None:
                engine.give_back(exchange)
            return _error_with_headers(exc, request, settings)
        except Exception as exc:  # never a traceback in a response; the log has it
            engine.coordinator.incr("errors")
            log.exception("seedtape: internal error on %s %s", request.method, path)
            if exchange is not None:
                engine.give_back(exchange)
            return error_response(
                500, f"seedtape internal error: {type(exc).__name__}", "seedtape_internal_error", headers={"x-should-retry": "false"}
            )

    async def health(request: Request) -> Response:
        body = {"status": "ok", "version": __version__, "mode": settings.mode, "session": settings.session}
        if engine.team is not None:  # Teams: the store's state; 503 when it is required and away
            return store_health(engine.team, body)
        return JSONResponse(body)

    async def stats(request: Request) -> Response:
        if request.query_params.get("scope") == "fleet":
            return await fleet_stats(engine.team)
        body = {
            **engine.coordinator.stats(),
            "bypassed_paths": dict(engine.bypassed),
            "mode": settings.mode,
            "cassettes_dir": str(settings.cassettes_dir),
            "cassette": settings.cassette,
            "pid": os.getpid(),
        }
        if engine.team is not None:
            body["store"] = engine.team.describe()
        return JSONResponse(body)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        for leftover in remove_stale_temp_files(settings.cassettes_dir) + remove_stale_locks(settings.cassettes_dir):
            log.warning("seedtape: removed %s, a temporary file an earlier crash left behind", leftover)
        await engine.start()
        try:
            yield
        finally:
            await engine.aclose()

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    app = _ProxyApp(
        routes=[
            Route("/_seedtape/health", health, methods=["GET"]),
            Route("/_seedtape/stats", stats, methods=["GET"]),
            Route("/{path:path}", proxy, methods=methods),
        ],
        lifespan=lifespan,
        middleware=[Middleware(TokenGuard, expected_sha256=settings.auth_token_sha256)] if settings.auth_token_sha256 else [],
    )
    app.proxy_handler, app.proxy_methods = proxy, frozenset(methods)
    app.websocket_handler = RealtimeGateway(engine, upstream_transport)  # every WebSocket: realtime/gateway.py
    app.state.engine = engine
    return app


class _ProxyApp(Starlette):
    """The routes above, with the catch-all proxy route called without the router.

    Every request outside ``/_seedtape/`` ends in ``proxy``, which turns every error
    into a response itself; the router, both exception middlewares and the route
    wrapper around it only cost time on each replay (~7 us, bench/profile_replay.py).
    Admin paths, other methods and lifespan still go through Starlette, and so does
    everything once a middleware is installed (the auth token guard, the pytest
    plugin's miss recorder): a fast path must never skip a check.
    """

    proxy_handler: Callable[[Request], Awaitable[Response]]
    proxy_methods: frozenset[str] = frozenset()
    websocket_handler: Callable[[Scope, Receive, Send], Awaitable[None]]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            not self.user_middleware
            and scope["type"] == "http"
            and scope["method"] in self.proxy_methods
            and not scope["path"].startswith("/_seedtape/")
        ):
            scope["app"] = self
            response = await self.proxy_handler(Request(scope, receive))
            await response(scope, receive, send)
            return
        if scope["type"] == "websocket":  # after the HTTP fast path: it costs HTTP nothing
            scope["app"] = self
            await self.websocket_handler(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def request_mode(request: Request, settings: Settings) -> Mode:
    return mode_named(request.headers.get(MODE_HEADER), settings.mode)


def _error_with_headers(exc: ProxyError, request: Request, settings: Settings) -> Response:
    try:
        mode = request_mode(request, settings).name
    except ProxyError:
        mode = settings.mode
    exc.headers = {**seedtape_headers(mode, "miss"), **exc.headers}
    return exc.response()


async def forward_untouched(engine: Engine, request: Request, settings: Settings) -> Response:
    """Any path that is not recorded: forwarded as it is, streamed back, never stored.

    Except in replay mode, whose promise is that nothing reaches the network.
    """
    mode = request_mode(request, settings)
    if mode.offline:
        raise ProxyError(
            404,
            f"{request.method} {request.scope['path']} is not a recorded route, and replay mode never calls upstream",
            "seedtape_unrecorded_route",
            "unrecorded_route",
        )
    engine.note_bypass(request.method, request.scope["path"])
    body = await read_body(request, settings.max_body)
    headers = upstream_request_headers(request.headers.items(), keep_encoding=True)
    query = request.scope["query_string"].decode("latin-1")
    response, _ = await engine.upstream.open(request.method, raw_path(request.scope), query, headers, body)
    engine.coordinator.incr("upstream_calls")
    merged = dict(client_response_headers(response.headers.multi_items(), decoded=False))
    merged.update(seedtape_headers(mode.name, "bypass"))

    async def raw() -> AsyncIterator[bytes]:
        try:
            async for chunk in response.aiter_raw():
                yield chunk
        finally:
            await response.aclose()

    return StreamingResponse(raw(), status_code=response.status_code, headers=merged)
