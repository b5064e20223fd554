"""Running an ASGI app under a real uvicorn server in a background thread.

Used by ``seedtape demo``, ``seedtape probe --upstream sim``, the benchmarks and the
tests: a real socket on 127.0.0.1, bound before the server starts (so no other
process can take the port in between), and a clean shutdown.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
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
    """A uvicorn server that leaves signal handling to the main thread's owner."""

    def install_signal_handlers(self) -> None:  # older uvicorn; newer ones skip this off the main thread
        pass


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
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
