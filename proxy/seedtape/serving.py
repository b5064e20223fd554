"""Running an ASGI app under a real uvicorn server in a background thread.

Used by ``seedtape demo``, ``seedtape probe --upstream sim``, the benchmarks and the
tests: a real socket on 127.0.0.1, bound before the server starts (so no other
process can take the port in between), and a clean shutdown.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import uvicorn


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
    def bind_socket(self) -> socket.socket:
        sock = super().bind_socket()
        _no_delay(sock)
        return sock


def run_server(app: Any, *, host: str, port: int, workers: int = 1, **options: Any) -> None:
    """``uvicorn.run`` with TCP_NODELAY on the listening socket (see ``_no_delay``)."""
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
    server = _ThreadServer(uvicorn.Config(app, lifespan="on", **options))
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
