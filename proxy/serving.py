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


class _ThreadServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the main thread's owner."""

    def install_signal_handlers(self) -> None:  # older uvicorn; newer ones skip this off the main thread
        pass


@contextmanager
def serve_in_thread(app: Any, host: str = "127.0.0.1", port: int = 0, **options: Any) -> Iterator[str]:
    """Serve ``app`` until the block ends; yields its base URL (``http://host:port``)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
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
