"""Calling the proxy's ASGI app directly, without a socket.

The async clients use the HTTP library's own ``ASGITransport``. The sync clients need
an event loop to run the app on: one background loop thread per in-process proxy
(anyio's blocking portal), so the app's upstream client and locks always live on the
same loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, MutableMapping
from contextlib import ExitStack
from typing import Any, TypeVar
from urllib.parse import unquote

import anyio.from_thread

ASGIApp = Any
Message = MutableMapping[str, Any]
DEFAULT_PORTS = {"http": 80, "https": 443}
T = TypeVar("T")


async def call_asgi(
    app: ASGIApp,
    method: str,
    scheme: str,
    host: str,
    port: int | None,
    raw_path: bytes,
    query: bytes,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """One complete HTTP exchange with an ASGI app: status, headers, whole body.

    ``raw_path`` is the percent-encoded path without the query; the scope's ``path``
    is its decoded form, as a server would pass it (an Azure deployment name with a
    space must reach the router as a space).
    """
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "headers": [(k.lower(), v) for k, v in headers],
        "scheme": scheme,
        "path": unquote(raw_path.decode("latin-1")),
        "raw_path": raw_path,
        "query_string": query,
        "server": (host, port or DEFAULT_PORTS.get(scheme, 80)),
        "client": ("127.0.0.1", 123),
        "root_path": "",
    }
    sent_body = False
    done = anyio.Event()
    status = 500
    response_headers: list[tuple[bytes, bytes]] = []
    parts: list[bytes] = []

    async def receive() -> Message:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": body, "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal status, response_headers
        if message["type"] == "http.response.start":
            status, response_headers = message["status"], list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            parts.append(message.get("body", b""))
            if not message.get("more_body", False):
                done.set()

    await app(scope, receive, send)
    return status, response_headers, b"".join(parts)


class LoopThread:
    """Runs the sync clients' ASGI calls: in the caller's thread when it can, else on a
    background loop thread (anyio's blocking portal).

    Handing a call to another thread and waiting for it costs about 0.3 ms on CPython
    (bench/profile_replay.py), as much as the SDK's own work. A replay touches no
    upstream connection and no lock bound to a loop, so ``call(..., here=True)`` runs
    it on a private event loop of the calling thread instead. Everything else -- and a
    caller already inside a running event loop -- goes to the one background loop,
    where the app's upstream client and key locks live.
    """

    def __init__(self) -> None:
        self._stack = ExitStack()
        self._portal: anyio.from_thread.BlockingPortal | None = None
        self._local = threading.local()
        self._loops: list[asyncio.AbstractEventLoop] = []
        self._guard = threading.Lock()

    @property
    def portal(self) -> anyio.from_thread.BlockingPortal:
        with self._guard:
            if self._portal is None:
                self._portal = self._stack.enter_context(anyio.from_thread.start_blocking_portal())
            return self._portal

    def call(self, func: Callable[..., Coroutine[Any, Any, T]], *args: Any, here: bool = False) -> T:
        if here and asyncio._get_running_loop() is None:
            loop = getattr(self._local, "loop", None)
            if loop is None:
                loop = self._local.loop = asyncio.new_event_loop()
                with self._guard:
                    self._loops.append(loop)
            result: T = loop.run_until_complete(func(*args))
            return result
        outcome: T = self.portal.call(func, *args)
        return outcome

    def close(self) -> None:
        self._stack.close()
        with self._guard:
            loops, self._loops = self._loops, []
        for loop in loops:
            if not loop.is_running():
                loop.close()
