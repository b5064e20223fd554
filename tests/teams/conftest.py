"""Fixtures of the Teams tests: a real redis-server per test, and proxies using it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RunningProxy
from tests.teams._redis import RedisServer, redis_server_binary


def _server(tmp_path: Path, name: str, password: str = "") -> Iterator[RedisServer]:
    folder = tmp_path / name
    folder.mkdir()
    server = RedisServer(redis_server_binary(), folder, password=password)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    yield from _server(tmp_path, "redis")


@pytest.fixture
def team_proxy(redis_server: RedisServer, proxy_factory: Callable[..., RunningProxy], tmp_path: Path) -> Callable[..., RunningProxy]:
    """A proxy (in-process uvicorn) on the shared store, with a cassette folder of its own.

    Redis is set up first so it is stopped last, after the proxies' final flush.
    """
    count = 0

    def start(**options: Any) -> RunningProxy:
        nonlocal count
        count += 1
        options.setdefault("store", redis_server.url)
        options.setdefault("cassettes_dir", tmp_path / f"cassettes-{count}")
        options.setdefault("cache_dir", tmp_path / f"cache-{count}")
        return proxy_factory(**options)

    return start
