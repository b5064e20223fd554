"""The redis-py asyncio client, configured so a dead or slow Redis costs little.

Every socket operation is bounded by ``timeout`` (connect included). redis-py's default
retry policy (three attempts with backoff, on timeouts too) would multiply that bound,
so it is replaced by one immediate retry on a connection error only: enough to step
over a pooled connection that died with a Redis restart, and nothing while Redis is down.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from seedtape.teams.url import PASSWORD_ENV


def connect(url: str, timeout: float) -> Redis:
    """A client for ``url`` (no connection is made until the first command)."""
    password = os.environ.get(PASSWORD_ENV) or None
    if urlsplit(url).password:
        password = None  # the URL's own wins (redis-py would prefer it anyway)
    return Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 1, (RedisConnectionError,)),
        health_check_interval=0,
        password=password,
    )
