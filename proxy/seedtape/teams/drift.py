"""The team's drift log: a Redis stream per namespace, beside each proxy's drift.jsonl.

Every verified request appends one entry (the same JSON line as the local log; no
headers, so no credential). The stream is trimmed to its newest ``DRIFT_MAXLEN``
entries on every append, so it cannot grow without bound; ``seedtape report --store``
reads it whole, page by page.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

from redis.asyncio import Redis

from seedtape.drift import log as drift_log
from seedtape.teams.client import connect
from seedtape.teams.keys import Keys

DRIFT_MAXLEN = 10_000
_PAGE = 1000


async def append(client: Redis, keys: Keys, entry: Mapping[str, Any]) -> None:
    line = drift_log.encode(entry)
    await client.xadd(keys.drift, {"entry": line}, maxlen=DRIFT_MAXLEN, approximate=False)


async def read(client: Redis, keys: Keys) -> list[dict[str, Any]]:
    """Every entry, oldest first (at most DRIFT_MAXLEN, so at most that many pages)."""
    entries: list[dict[str, Any]] = []
    start = "-"
    for _ in range(DRIFT_MAXLEN // _PAGE + 2):
        page: list[Any] = await client.xrange(keys.drift, min=start, max="+", count=_PAGE) or []
        for _ident, fields in page:
            try:
                entry = json.loads(fields[b"entry"])
            except (KeyError, ValueError):
                continue
            if isinstance(entry, dict):
                entries.append(entry)
        if len(page) < _PAGE:
            break
        start = "(" + page[-1][0].decode()
    return entries


def read_from(url: str, namespace: str, timeout: float) -> list[dict[str, Any]]:
    """``seedtape report --store``: the namespace's drift log (redis errors propagate)."""

    async def run() -> list[dict[str, Any]]:
        client = connect(url, timeout)
        try:
            return await read(client, Keys(namespace))
        finally:
            await client.aclose()

    return asyncio.run(run())
