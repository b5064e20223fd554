"""Calling the proxy's ASGI app directly, without a socket.

The async clients use the HTTP library's own ``ASGITransport``. The sync clients need
an event loop to run the app on: one background loop thread per in-process proxy
(anyio's blocking portal), so the app's upstream client and locks always live on the
same loop.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from contextlib import ExitStack
from typing import Any
from urllib.parse import unquote

import anyio.from_thread

ASGIApp = Any
Message = MutableMapping[str, Any]
DEFAULT_PORTS = {"http": 80, "https": 443}


async def call_asgi(
    app: ASGIApp, method: str, scheme: str, host: str, port: int | None, raw_path: bytes, query: bytes,
    headers: list[tuple[bytes, bytes]], body: bytes,
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """One complete HTTP exchange with an ASGI app: status, headers, whole body.

    ``raw_path`` is the percent-encoded path without the query; the scope's ``path``
    is its decoded form, as a server would pass it (an Azure deployment name with a
    space must reach the router as a space).
    """
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "headers": [(k.lower(), v) for k, v in headers], "scheme": scheme,
        "path": unquote(raw_path.decode("latin-1")), "raw_path": raw_path, "query_string": query,
        "server": (host, port or DEFAULT_PORTS.get(scheme, 80)), "client": ("127.0.0.1", 123), "root_path": "",
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
    """A background event loop that sync callers hand their ASGI calls to."""

    def __init__(self) -> None:
        self._stack = ExitStack()
        self.portal = self._stack.enter_context(anyio.from_thread.start_blocking_portal())

    def close(self) -> None:
        self._stack.close()
