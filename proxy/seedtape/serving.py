"""Running an ASGI app under a real uvicorn server in a background thread.

Used by ``seedtape demo``, ``seedtape probe --upstream sim``, the benchmarks and the
tests: a real socket on 127.0.0.1, bound before the server starts (so no other
process can take the port in between), and a clean shutdown.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("seedtape")
# Request head limits: the request line and headers together, and how many headers.
# The OpenAI SDK sends about 15 headers and 1-4 KB (an Azure AD token is the biggest).
MAX_HEADER_BYTES = 64 * 1024
MAX_HEADERS = 128


class _HeadTooLarge(Exception):
    pass


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a bound on the request head, answered by a 431.

    uvicorn has no such option for httptools (only ``h11_max_incomplete_event_size``
    for the slower h11 parser), and httptools gathers a header value in pieces until
    it ends: a 60 MB header held every other client of the proxy for 2-4 s. Bytes of
    an unfinished head are counted as they arrive and the connection is answered and
    closed once they pass ``max_header_size``; a head with more than ``max_headers``
    headers is refused the same way. Neither reaches the app (nor the token check).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._max_bytes = int(getattr(self.config, "seedtape_max_header_size", MAX_HEADER_BYTES))
        self._max_headers = int(getattr(self.config, "seedtape_max_headers", MAX_HEADERS))
        self._in_head = False  # a request's head has begun and not ended
        self._head_bytes = 0
        self._chunk = 0
        self._refused: str | None = None

    def data_received(self, data: bytes) -> None:
        if self._refused is not None:
            return
        self._chunk = len(data)
        super().data_received(data)
        if self._refused is None and self._in_head and self.parser is not None:
            self._head_bytes += len(data)
            if self._head_bytes > self._max_bytes:
                self._refuse(f"request headers are over {self._max_bytes} bytes (--max-header-size)")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head, self._head_bytes = True, 0

    def on_headers_complete(self) -> None:
        # Counted once, not per header: nothing on the hot path but two comparisons.
        if len(self.headers) > self._max_headers:
            self._refused = f"request has more than {self._max_headers} headers (--max-headers)"
        elif self._head_bytes + self._chunk > self._max_bytes and self._head_size() > self._max_bytes:
            # a whole head over the limit that came in one read (data_received counts unfinished ones)
            self._refused = f"request headers are over {self._max_bytes} bytes (--max-header-size)"
        self._in_head, self._head_bytes = False, 0
        if self._refused is not None:
            raise _HeadTooLarge(self._refused)  # stops the parser before the app starts; uvicorn then calls send_400_response
        super().on_headers_complete()

    def _head_size(self) -> int:
        return len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)

    def send_400_response(self, msg: str) -> None:
        if self._refused is not None:
            self._refuse(self._refused)
            return
        super().send_400_response(msg)

    def _refuse(self, message: str) -> None:
        """431, OpenAI-shaped, then close: the rest of the head is never read."""
        self._refused = message
        log.warning("seedtape: refused a request from %s: %s", self.client[0] if self.client else "?", message)
        body = json.dumps(
            {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": "headers_too_large"}}
        ).encode()
        head = [b"HTTP/1.1 431 Request Header Fields Too Large\r\n"]
        head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
        head += [
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n",
            b"x-should-retry: false\r\n",
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        self.transport.close()


def _no_delay(sock: socket.socket) -> None:
    """TCP_NODELAY on a listening socket; Linux passes it on to every accepted one.

    asyncio sets it itself only on sockets created with ``proto=IPPROTO_TCP``; a socket
    bound here or by uvicorn for ``--workers`` has proto 0, so without this every
    response written in two parts (head, then body) waits out the client's delayed
    ACK: about 40 ms per request (bench/http_replay.py --workers 2 measured 366 req/s).
    """
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _NoDelayConfig(uvicorn.Config):
    """uvicorn's config with TCP_NODELAY and the request head limits (read by
    ``LimitedHttpToolsProtocol``; attributes, so they travel to ``--workers``)."""

    def __init__(self, app: Any, *, max_header_size: int = MAX_HEADER_BYTES, max_headers: int = MAX_HEADERS, **options: Any) -> None:
        options.setdefault("http", LimitedHttpToolsProtocol)
        super().__init__(app, **options)
        self.seedtape_max_header_size = max_header_size
        self.seedtape_max_headers = max_headers

    def bind_socket(self) -> socket.socket:
        sock = super().bind_socket()
        _no_delay(sock)
        return sock


def run_server(app: Any, *, host: str, port: int, workers: int = 1, **options: Any) -> None:
    """``uvicorn.run`` with TCP_NODELAY on the listening socket (see ``_no_delay``) and
    the request head limits (``max_header_size``, ``max_headers``)."""
    config = _NoDelayConfig(app, host=host, port=port, workers=workers, **options)
    server = uvicorn.Server(config)
    if workers > 1:
        from uvicorn.supervisors import Multiprocess

        Multiprocess(config, sockets=[config.bind_socket()]).run()
        return
    server.run()
    if not server.started:
        raise SystemExit(3)  # uvicorn's STARTUP_FAILURE, as uvicorn.run does


class _ThreadServer(uvicorn.Server):
    """A uvicorn server for a background thread: no signal handlers, and a prompt stop.

    uvicorn looks at ``should_exit`` every 0.1 s and, once stopping, sleeps a fixed
    0.1 s before it waits for open connections: 0.16 s per stop, measured, and the
    test suite starts and stops a few hundred of these (teardowns were 50 s of a
    120 s run). :meth:`stop` wakes the main loop at once, and :meth:`shutdown` (the
    same steps as uvicorn's, 0.30 to 0.54) waits for connections and tasks only as
    long as they take. What is waited for is unchanged: requests in flight and
    background tasks (up to ``timeout_graceful_shutdown``), then the app's lifespan
    shutdown.
    """

    _loop: asyncio.AbstractEventLoop | None = None
    _wake: asyncio.Event | None = None

    def install_signal_handlers(self) -> None:  # older uvicorn; newer ones skip this off the main thread
        pass

    def stop(self) -> None:
        """Ask the server to exit; safe from any thread."""
        self.should_exit = True
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with suppress(RuntimeError):  # the loop has already closed
                loop.call_soon_threadsafe(wake.set)

    async def main_loop(self) -> None:
        """uvicorn's loop (``on_tick`` every 0.1 s until it says exit), woken early by :meth:`stop`."""
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 1) % 864000
            with suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=0.1)
            should_exit = await self.on_tick(counter)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's shutdown, polling every 5 ms where it sleeps 0.1 s."""
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()  # idle keep-alive connections close now, busy ones after their response
        try:
            await asyncio.wait_for(self._drain(), timeout=self.config.timeout_graceful_shutdown)
        except TimeoutError:
            for task in self.server_state.tasks:
                task.cancel(msg="Task cancelled, timeout graceful shutdown exceeded")
        if not self.force_exit:
            await self.lifespan.shutdown()

    async def _drain(self) -> None:
        while (self.server_state.connections or self.server_state.tasks) and not self.force_exit:
            await asyncio.sleep(0.005)
        for server in self.servers:
            await server.wait_closed()


@contextmanager
def serve_in_thread(app: Any, host: str = "127.0.0.1", port: int = 0, **options: Any) -> Iterator[str]:
    """Serve ``app`` until the block ends; yields its base URL (``http://host:port``)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    _no_delay(sock)
    sock.bind((host, port))
    port = sock.getsockname()[1]
    options.setdefault("log_level", "warning")
    options.setdefault("timeout_graceful_shutdown", 2)
    server = _ThreadServer(_NoDelayConfig(app, lifespan="on", **options))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError(f"uvicorn did not start on {host}:{port}")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        thread.join(timeout=10)
        sock.close()
