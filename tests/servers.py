"""Serve an ASGI app with a real uvicorn server on 127.0.0.1, for tests.

Tests that talk HTTP for real (the SDK over sockets, streaming with real delays,
connection resets, gzip on the wire) need a server, not an in-process transport. The
server runs in a background thread with its own event loop on a port the OS picks, so
parallel test runs never collide. Used for the simulator and for the proxy.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the test runner."""

    def install_signal_handlers(self) -> None:  # older uvicorn; newer ones skip this off the main thread
        pass


@contextlib.contextmanager
def serve_app(
    app: Any, host: str = "127.0.0.1", *, log_level: str = "warning", startup_timeout: float = 10.0
) -> Iterator[str]:
    """Run ``app`` until the block exits; yields its base URL, e.g. ``http://127.0.0.1:54321``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level=log_level, lifespan="off", timeout_graceful_shutdown=2)
    server = _QuietServer(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start on {host}:{port}")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@contextlib.contextmanager
def quiet_logger(name: str = "uvicorn.error") -> Iterator[None]:
    """Silence a logger for a block (e.g. uvicorn's traceback for a deliberate reset)."""
    logger = logging.getLogger(name)
    previous = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = previous
