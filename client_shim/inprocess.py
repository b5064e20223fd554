"""The proxy app inside the test process: real SDK clients, no port, no server.

Each async client gets an app of its own, bound to the event loop it runs on; the
sync clients share one app on a background loop thread. All of them read and write
the same cassette folder.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import openai

from seedtape.app import create_app
from seedtape.config import Settings
from seedtape.coordination import AsyncLockContext, Coordinator
from seedtape.exchange import MODE_HEADER

from ._asgi import ASGIApp, LoopThread
from .clients import DEFAULT_API_VERSION, DUMMY_KEY, _merge_headers
from .transports import httpx2_transport, httpx_transport

IN_PROCESS_URL = "http://seedtape.in-process"


def default_stack() -> str:
    """httpx2 when the installed openai SDK sends through it (openai >= 3), else httpx."""
    try:
        import openai._httpx2  # noqa: F401
    except ImportError:
        return "httpx"
    return "httpx2"


class ThreadSafeCoordinator:
    """A coordinator whose counters may be used from several threads at once."""

    def __init__(self, inner: Coordinator) -> None:
        self._inner = inner
        self._lock = threading.Lock()

    def next_occurrence(self, session: str, cassette: str, key: str) -> int:
        with self._lock:
            return self._inner.next_occurrence(session, cassette, key)

    def key_lock(self, cassette: str, key: str) -> AsyncLockContext:
        return self._inner.key_lock(cassette, key)  # only ever taken on the background loop

    def incr(self, stat: str, amount: int = 1) -> None:
        with self._lock:
            self._inner.incr(stat, amount)

    def stats(self) -> dict[str, int]:
        with self._lock:
            return self._inner.stats()


class InProcessProxy:
    """A seedtape proxy running inside this process (default: replay, offline)."""

    def __init__(self, settings: Settings | None = None, *, http: str = "auto", **options: Any) -> None:
        if settings is None:
            options.setdefault("mode", "replay")
            options.setdefault("upstream", "sim" if options["mode"] == "replay" else Settings().upstream)
            settings = Settings(**options)
        self.settings = settings
        self.http = default_stack() if http == "auto" else http
        if self.http not in ("httpx2", "httpx"):
            raise ValueError("http must be 'httpx2', 'httpx' or 'auto'")
        self._loop: LoopThread | None = None
        self._sync_app: ASGIApp | None = None

    @property
    def cassettes_dir(self) -> Path:
        return self.settings.cassettes_dir

    def app(self) -> ASGIApp:
        """A fresh proxy app with these settings (for ASGI test clients of your own)."""
        return create_app(self.settings)

    def close(self) -> None:
        if self._loop is not None:
            self._loop.close()
            self._loop = None

    def __enter__(self) -> InProcessProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # HTTP clients -----------------------------------------------------------
    def http_client(self) -> Any:
        if self._loop is None:
            self._loop = LoopThread()
            self._sync_app = create_app(self.settings)
            # Replays run in the callers' threads (see LoopThread), so the counters
            # they share with the background loop take a thread lock.
            engine = self._sync_app.state.engine
            engine.coordinator = ThreadSafeCoordinator(engine.coordinator)
        if self.http == "httpx2":
            import httpx2

            return httpx2.Client(transport=httpx2_transport(self._sync_app, self._loop, self._replays), base_url=IN_PROCESS_URL)
        import httpx

        return httpx.Client(transport=httpx_transport(self._sync_app, self._loop, self._replays), base_url=IN_PROCESS_URL)

    def _replays(self, request: Any) -> bool:
        """Will the app answer this request in replay mode (no upstream, no key lock)?"""
        return request.headers.get(MODE_HEADER, self.settings.mode).strip().lower() == "replay"

    def async_http_client(self) -> Any:
        app = create_app(self.settings)
        if self.http == "httpx2":
            import httpx2

            return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url=IN_PROCESS_URL)
        import httpx

        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=IN_PROCESS_URL)

    # openai clients ---------------------------------------------------------
    def openai(self, *, cassette: str | None = None, mode: str | None = None, session: str | None = None, **kwargs: Any) -> openai.OpenAI:
        kwargs = _merge_headers(kwargs, cassette, mode, session)
        return openai.OpenAI(base_url=IN_PROCESS_URL + "/v1", api_key=kwargs.pop("api_key", DUMMY_KEY), http_client=self.http_client(), **kwargs)

    def async_openai(self, *, cassette: str | None = None, mode: str | None = None, session: str | None = None, **kwargs: Any) -> openai.AsyncOpenAI:
        kwargs = _merge_headers(kwargs, cassette, mode, session)
        return openai.AsyncOpenAI(
            base_url=IN_PROCESS_URL + "/v1", api_key=kwargs.pop("api_key", DUMMY_KEY), http_client=self.async_http_client(), **kwargs
        )

    def azure(self, *, api_version: str = DEFAULT_API_VERSION, cassette: str | None = None, mode: str | None = None,
              session: str | None = None, **kwargs: Any) -> openai.AzureOpenAI:
        kwargs = _merge_headers(kwargs, cassette, mode, session)
        return openai.AzureOpenAI(
            azure_endpoint=IN_PROCESS_URL, api_version=api_version, api_key=kwargs.pop("api_key", DUMMY_KEY),
            http_client=self.http_client(), **kwargs,
        )

    def async_azure(self, *, api_version: str = DEFAULT_API_VERSION, cassette: str | None = None, mode: str | None = None,
                    session: str | None = None, **kwargs: Any) -> openai.AsyncAzureOpenAI:
        kwargs = _merge_headers(kwargs, cassette, mode, session)
        return openai.AsyncAzureOpenAI(
            azure_endpoint=IN_PROCESS_URL, api_version=api_version, api_key=kwargs.pop("api_key", DUMMY_KEY),
            http_client=self.async_http_client(), **kwargs,
        )
