"""A real ``redis-server`` (Debian's package) on a free loopback port, for the Teams tests.

No fake Redis anywhere: every test talks to this process. It runs in a temporary
folder with persistence off (``--save '' --appendonly no``), so a kill loses its data
like a crash of a cache would, and it is stopped when the test ends. Missing
``redis-server`` is a skip that says how to install it, or an error under CI.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from tests.faults._helpers import free_port

INSTALL_HINT = "redis-server is not installed: apt-get install redis-server (Debian's package; .ci/run installs it)"


def redis_server_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail(INSTALL_HINT + " -- required under CI")
        pytest.skip(INSTALL_HINT)
    return binary


@dataclass
class RedisServer:
    binary: str
    folder: Path
    password: str = ""
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    starts: int = field(default=0)

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password or None, socket_timeout=5)

    def start(self) -> None:
        """Start (or restart on the same port); return once it answers PING (bounded)."""
        for _ in range(3):
            if not self.port or self.starts == 0:
                self.port = self.port or free_port()
            args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder)]
            args += ["--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"]
            if self.password:
                args += ["--requirepass", self.password]
            log = (self.folder / "redis.log").open("ab")
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            log.close()
            if self._wait_ready(10.0):
                self.starts += 1
                return
            self.kill()
            if self.starts == 0:
                self.port = free_port()  # lost the port to someone else: try another
        raise RuntimeError(f"redis-server did not start: {(self.folder / 'redis.log').read_text(errors='replace')[-2000:]}")

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                return False
            try:
                if self.client().ping():
                    return True
            except redis.RedisError:
                pass
            time.sleep(0.02)
        return False

    def kill(self) -> None:
        """SIGKILL: what a crash or an OOM kill does (its data is gone: no persistence)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def pause(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)  # a Redis that accepts nothing and answers nothing: slow

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.resume()
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
