"""The proxy app inside the test process: real SDK clients, no port, no server.

Each async client gets an app of its own, bound to the event loop it runs on; the
sync clients share one app on a background loop thread. All of them read and write
the same cassette folder, and share one session, one set of occurrence counters
(so the n-th identical request is served episode n whichever client sent it), the
record of recordings used and the record of replay misses.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any, Self

import httpx
import openai
from openai import AsyncAzureOpenAI, AsyncOpenAI, AzureOpenAI, OpenAI

from seedtape.app import create_app
from seedtape.client.clients import DEFAULT_API_VERSION, DUMMY_KEY, _merge_headers
from seedtape.client.loop import ASGIApp, LoopThread
from seedtape.client.misses import Miss, MissRecorder
from seedtape.client.transports import httpx2_transport, httpx_transport
from seedtape.config import Settings, default_upstream
from seedtape.coordination import ThreadCoordinator
from seedtape.engine import Engine
from seedtape.errors import ProxyError
from seedtape.modes import MODE_HEADER, check_mode, mode_named
from seedtape.sim import transport_for

IN_PROCESS_URL = "http://seedtape.in-process"
STACKS = ("httpx2", "httpx")


def default_stack() -> str:
    """httpx2 when the installed openai SDK sends through it (openai >= 3), else httpx."""
    try:
        import openai._httpx2  # noqa: F401
    except ImportError:
        return "httpx"
    return "httpx2"


class InProcessProxy:
    """A seedtape proxy running inside this process (default: replay, offline).

    ``upstream_transport`` replaces the network for modes that call upstream (a stub
    upstream in tests); replay never calls upstream, whatever it is.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        http: str = "auto",
        upstream_transport: httpx.AsyncBaseTransport | None = None,
        **options: Any,
    ) -> None:
        if settings is None:
            options.setdefault("mode", "replay")
            # Replay never reaches upstream; the default only matters to a request that
            # asks for another mode with the x-seedtape-mode header.
            options.setdefault("upstream", default_upstream())
            settings = Settings(**options)
        elif options:
            raise TypeError("pass either settings or keyword options, not both")
        if not settings.session:
            # One session for every app of this proxy (create_app would pick one per app).
            settings = settings.with_(session=uuid.uuid4().hex[:12])
        if settings.store:
            # Its apps run on several event loops; a Redis client belongs to one (Teams).
            raise ValueError("a shared store (--store) is for seedtape serve; the in-process proxy uses local cassettes only")
        self.settings = settings
        check_mode(settings.mode)
        self.http = default_stack() if http == "auto" else http
        if self.http not in STACKS:
            raise ValueError("http must be 'httpx2', 'httpx' or 'auto'")
        self.upstream_transport = upstream_transport
        self.misses: list[Miss] = []
        self._coordinator = ThreadCoordinator(settings.max_sessions)
        self._started = time.time()  # one run for all its apps: see Engine.run_started
        self._engines: list[Engine] = []
        self._loop: LoopThread | None = None
        self._sync_app: ASGIApp | None = None

    @property
    def cassettes_dir(self) -> Path:
        return self.settings.cassettes_dir

    # For libraries that take a base URL and an HTTP client of their own (LangChain's
    # ChatOpenAI(base_url=..., http_client=...), pydantic-ai's providers, ...).
    base_url = IN_PROCESS_URL + "/v1"
    azure_endpoint = IN_PROCESS_URL

    def _new_app(self, loop_bound: bool = False) -> ASGIApp:
        transport = self.upstream_transport or transport_for(self.settings.upstream)
        if transport is None and loop_bound:
            # An async client's app runs on the caller's event loop, which is often gone
            # (a test's loop) before anyone could close pooled upstream connections:
            # with no keep-alive, none are left behind.
            transport = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_keepalive_connections=0))
        app = create_app(self.settings, upstream_transport=transport)
        engine: Engine = app.state.engine
        engine.coordinator = self._coordinator
        engine.run_started = self._started
        app.add_middleware(MissRecorder, sink=self.misses)
        self._engines.append(engine)
        return app

    def app(self) -> ASGIApp:
        """A fresh proxy app with these settings (for ASGI test clients of your own).

        It shares this proxy's session, counters, used-recordings and misses.
        """
        return self._new_app(loop_bound=True)

    def used(self) -> set[tuple[str, str]]:
        """(cassette, key) of every recording served or written through this proxy."""
        used: set[tuple[str, str]] = set()
        for engine in self._engines:
            used |= engine.used
        return used

    def stats(self) -> dict[str, int]:
        return self._coordinator.stats()

    def close(self) -> None:
        """Close the apps' cassette indexes and the sync clients' loop thread."""
        if self._loop is not None:
            engine = self._sync_app.state.engine if self._sync_app is not None else None
            if engine is not None:
                self._loop.portal.call(engine.aclose)
            self._loop.close()
            self._loop = None
            self._sync_app = None
        for engine in self._engines:
            engine.store.close()

    async def aclose(self) -> None:
        """Also close the async apps' upstream clients (call it on the loop that used them)."""
        for engine in self._engines:
            if self._sync_app is None or engine is not self._sync_app.state.engine:
                await engine.upstream.aclose()
        self.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # HTTP clients -----------------------------------------------------------
    def http_client(self) -> Any:
        """A sync ``httpx2.Client`` or ``httpx.Client`` answered by the in-process app."""
        if self._loop is None:
            self._loop = LoopThread()
            # Replays run in the callers' threads (see LoopThread); the shared
            # coordinator's counters take a thread lock, so they may.
            self._sync_app = self._new_app()
        if self.http == "httpx2":
            import httpx2

            return httpx2.Client(transport=httpx2_transport(self._sync_app, self._loop, self._replays), base_url=IN_PROCESS_URL)
        return httpx.Client(transport=httpx_transport(self._sync_app, self._loop, self._replays), base_url=IN_PROCESS_URL)

    def _replays(self, request: Any) -> bool:
        """Will the app answer this request in replay mode (no upstream, no key lock)?"""
        try:
            return mode_named(request.headers.get(MODE_HEADER), self.settings.mode).offline
        except ProxyError:
            return False  # the app answers the bad header itself

    def async_http_client(self) -> Any:
        """An async client over the library's own ``ASGITransport``, with an app of its own."""
        app = self._new_app(loop_bound=True)
        if self.http == "httpx2":
            import httpx2

            return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url=IN_PROCESS_URL)
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=IN_PROCESS_URL)

    # openai clients ---------------------------------------------------------
    def openai(self, *, cassette: str | None = None, mode: str | None = None, session: str | None = None, **kwargs: Any) -> OpenAI:
        kwargs = _merge_headers(kwargs, cassette, mode, session)
        return openai.OpenAI(
            base_url=IN_PROCESS_URL + "/v1", api_key=kwargs.pop("api_key", DUMMY_KEY), http_client=self.http_client(), **kwargs
        )

    def async_openai(
        self, *, cassette: str | None = None, mode: str | None = None, session: str | None = None, **kwargs: Any
    ) -> AsyncOpenAI:
        kwargs = _merge_headers(kwargs, cassette, mode, session)
        return openai.AsyncOpenAI(
            base_url=IN_PROCESS_URL + "/v1", api_key=kwargs.pop("api_key", DUMMY_KEY), http_client=self.async_http_client(), **kwargs
        )

    def azure(
        self,
        *,
        api_version: str = DEFAULT_API_VERSION,
        cassette: str | None = None,
        mode: str | None = None,
        session: str | None = None,
        **kwargs: Any,
    ) -> AzureOpenAI:
        kwargs = _merge_headers(kwargs, cassette, mode, session)
        return openai.AzureOpenAI(
            azure_endpoint=IN_PROCESS_URL,
            api_version=api_version,
            api_key=kwargs.pop("api_key", DUMMY_KEY),
            http_client=self.http_client(),
            **kwargs,
        )

    def async_azure(
        self,
        *,
        api_version: str = DEFAULT_API_VERSION,
        cassette: str | None = None,
        mode: str | None = None,
        session: str | None = None,
        **kwargs: Any,
    ) -> AsyncAzureOpenAI:
        kwargs = _merge_headers(kwargs, cassette, mode, session)
        return openai.AsyncAzureOpenAI(
            azure_endpoint=IN_PROCESS_URL,
            api_version=api_version,
            api_key=kwargs.pop("api_key", DUMMY_KEY),
            http_client=self.async_http_client(),
            **kwargs,
        )
