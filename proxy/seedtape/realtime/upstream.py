"""The upstream end of a Realtime session: a WebSocket to the service (or the simulator).

Two connectors behind one small interface: :class:`WebsocketsConnector` opens a real
WebSocket with the ``websockets`` library (the one the openai SDK itself uses for
Realtime: RFC 6455 done right, pings, close handshake, a maintained asyncio client),
and :class:`ASGIConnector` talks to an ASGI app in process, which is how
``--upstream sim`` reaches the built-in simulator with no socket.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any, Protocol

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.typing import Subprotocol

# Handshake headers the proxy's own WebSocket library sets; the client's are not passed on.
HANDSHAKE_HEADERS = frozenset(
    {
        "host",
        "upgrade",
        "connection",
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "sec-websocket-protocol",
        "sec-websocket-accept",
        "content-length",
        "transfer-encoding",
        "keep-alive",
        "te",
        "trailer",
        "proxy-connection",
    }
)
ASGIApp = Callable[[MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]


class UpstreamClosed(Exception):
    """The upstream WebSocket ended: its close code (1006 when it just dropped)."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"upstream closed with {code} {reason}".strip())
        self.code = code
        self.reason = reason


class UpstreamRefused(Exception):
    """The handshake failed: the upstream's HTTP answer, or 502/504 for no answer."""

    def __init__(self, status: int, message: str, body: bytes = b"", content_type: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.body = body
        self.content_type = content_type


class UpstreamSocket(Protocol):
    subprotocol: str | None

    async def send(self, frame: str | bytes) -> None: ...

    async def recv(self) -> str | bytes:
        """The next frame; UpstreamClosed when the connection is over."""
        ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...


class Connector(Protocol):
    async def connect(self, path: str, query: str, headers: Sequence[tuple[str, str]], subprotocols: Sequence[str]) -> UpstreamSocket: ...


def forward_headers(headers: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """The client's handshake headers to pass on: credentials yes, ``x-seedtape-*`` and the
    WebSocket mechanics no (same rule as HTTP: credentials forwarded, never stored)."""
    return [(k, v) for k, v in headers if k.lower() not in HANDSHAKE_HEADERS and not k.lower().startswith("x-seedtape-")]


class _WebsocketsSocket:
    def __init__(self, connection: ClientConnection) -> None:
        self._connection = connection
        self.subprotocol: str | None = connection.subprotocol

    async def send(self, frame: str | bytes) -> None:
        try:
            await self._connection.send(frame)
        except ConnectionClosed as exc:
            raise _closed(exc) from exc

    async def recv(self) -> str | bytes:
        try:
            return await self._connection.recv()
        except ConnectionClosed as exc:
            raise _closed(exc) from exc

    async def close(self, code: int = 1000, reason: str = "") -> None:
        with contextlib.suppress(Exception):
            await self._connection.close(code, reason)


def _closed(exc: ConnectionClosed) -> UpstreamClosed:
    if exc.rcvd is None:
        return UpstreamClosed(1006, "the connection was dropped without a close frame")
    return UpstreamClosed(exc.rcvd.code, exc.rcvd.reason)


class WebsocketsConnector:
    """A real WebSocket to ``base_url`` (http -> ws, https -> wss)."""

    def __init__(self, base_url: str, timeout: float) -> None:
        base = base_url.rstrip("/")
        if base.startswith("https://"):
            base = "wss://" + base[len("https://") :]
        elif base.startswith("http://"):
            base = "ws://" + base[len("http://") :]
        self.base_url = base
        self.timeout = timeout

    async def connect(self, path: str, query: str, headers: Sequence[tuple[str, str]], subprotocols: Sequence[str]) -> UpstreamSocket:
        url = self.base_url + "/" + path.lstrip("/") + (f"?{query}" if query else "")
        try:
            connection = await websockets.connect(
                url,
                additional_headers=forward_headers(headers),
                subprotocols=[Subprotocol(p) for p in subprotocols] or None,
                user_agent_header=None,  # the client's own User-Agent is among the forwarded headers
                compression=None,  # as the openai SDK: no permessage-deflate
                max_size=None,
                open_timeout=min(self.timeout, 30.0),
                proxy=None,  # seedtape is the proxy: no proxy from the environment
            )
        except InvalidStatus as exc:
            response = exc.response
            content_type = response.headers.get("content-type", "")
            raise UpstreamRefused(
                response.status_code,
                f"upstream {self.base_url} refused the WebSocket: HTTP {response.status_code}",
                response.body or b"",
                content_type,
            ) from exc
        except TimeoutError as exc:
            raise UpstreamRefused(504, f"upstream {self.base_url} did not answer the WebSocket handshake in time") from exc
        except (OSError, InvalidHandshake) as exc:
            raise UpstreamRefused(502, f"upstream {self.base_url} unreachable: {type(exc).__name__}: {exc}") from exc
        return _WebsocketsSocket(connection)


class _ASGISocket:
    """The client end of an in-process ASGI WebSocket."""

    def __init__(self) -> None:
        self.subprotocol: str | None = None
        self.to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None
        self.closed: UpstreamClosed | None = None

    async def send(self, frame: str | bytes) -> None:
        if self.closed is not None:
            raise self.closed
        key = "text" if isinstance(frame, str) else "bytes"
        await self.to_app.put({"type": "websocket.receive", key: frame})

    async def recv(self) -> str | bytes:
        if self.closed is not None:
            raise self.closed
        message = await self.from_app.get()
        if message["type"] == "websocket.send":
            text = message.get("text")
            return text if text is not None else bytes(message.get("bytes") or b"")
        self.closed = UpstreamClosed(int(message.get("code", 1000)), str(message.get("reason") or ""))
        raise self.closed

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.closed is None:
            self.closed = UpstreamClosed(code, reason)
        await self.to_app.put({"type": "websocket.disconnect", "code": code, "reason": reason})
        if self.task is not None and not self.task.done():
            try:
                await asyncio.wait_for(asyncio.shield(self.task), 2.0)
            except TimeoutError:
                self.task.cancel()
            except Exception:
                pass


class ASGIConnector:
    """An ASGI app (the simulator) as the upstream, in process: no socket at all."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.base_url = "ws://sim.local"

    async def connect(self, path: str, query: str, headers: Sequence[tuple[str, str]], subprotocols: Sequence[str]) -> UpstreamSocket:
        socket = _ASGISocket()
        scope = {
            "type": "websocket",
            "asgi": {"version": "3.0"},
            "scheme": "ws",
            "http_version": "1.1",
            "path": "/" + path.lstrip("/"),
            "raw_path": ("/" + path.lstrip("/")).encode(),
            "query_string": query.encode("latin-1"),
            "root_path": "",
            "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in forward_headers(headers)]
            + [(b"host", b"sim.local")],
            "client": ("127.0.0.1", 0),
            "server": ("sim.local", 80),
            "subprotocols": list(subprotocols),
            "state": {},
            "extensions": {"websocket.http.response": {}},
        }
        opened: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        await socket.to_app.put({"type": "websocket.connect"})
        body = bytearray()

        async def receive() -> dict[str, Any]:
            return await socket.to_app.get()

        async def send(message: Any) -> None:
            kind = message["type"]
            if not opened.done():
                if kind == "websocket.http.response.body":
                    body.extend(message.get("body", b""))
                    if not message.get("more_body"):
                        opened.set_result({"type": "refused", "status": status_holder[0], "body": bytes(body)})
                    return
                if kind == "websocket.http.response.start":
                    status_holder[0] = int(message["status"])
                    return
                opened.set_result(message)
                return
            await socket.from_app.put(message)

        status_holder = [403]

        async def run() -> None:
            try:
                await self.app(scope, receive, send)
            except Exception:
                await socket.from_app.put({"type": "websocket.close", "code": 1006, "reason": "upstream dropped the connection"})
            else:
                await socket.from_app.put({"type": "websocket.close", "code": 1006, "reason": "upstream ended without a close frame"})
            if not opened.done():
                opened.set_result({"type": "websocket.close", "code": 1006})

        socket.task = asyncio.ensure_future(run())
        first = await opened
        if first["type"] == "websocket.accept":
            socket.subprotocol = first.get("subprotocol")
            return socket
        socket.task.cancel()
        if first["type"] == "refused":
            raise UpstreamRefused(
                first["status"],
                f"upstream {self.base_url} refused the WebSocket: HTTP {first['status']}",
                first["body"],
                "application/json",
            )
        raise UpstreamRefused(403, f"upstream {self.base_url} refused the WebSocket")


def connector_for(base_url: str, timeout: float, transport: Any = None) -> Connector:
    """The simulator in process when the HTTP upstream is an in-process ASGI app, else a real WebSocket."""
    app = getattr(transport, "app", None)
    if app is not None and callable(app):
        return ASGIConnector(app)
    return WebsocketsConnector(base_url, timeout)
