"""Functions run in child processes (multiprocessing spawn) by the coordination tests.

They live in a small module of their own so a child imports little.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any


def count_occurrences(cache_dir: str, run: str, n: int, out: Any) -> None:
    """Take ``n`` occurrence numbers of one key; report them."""
    from seedtape.coordination.workers import WorkerCoordinator

    coordinator = WorkerCoordinator(Path(cache_dir), run)
    out.put([coordinator.next_occurrence("session", "cassette", "key") for _ in range(n)])
    coordinator.close()


def locked_increments(cache_dir: str, run: str, counter: str, n: int) -> None:
    """``n`` read-modify-writes of a counter file, each under the shared key lock."""
    from seedtape.coordination.workers import WorkerCoordinator

    coordinator = WorkerCoordinator(Path(cache_dir), run)
    path = Path(counter)

    async def main() -> None:
        for _ in range(n):
            async with coordinator.key_lock("cassette", "write:key"):
                value = int(path.read_text())
                await asyncio.sleep(0.001)  # widen the window a lost update would need
                path.write_text(str(value + 1))

    asyncio.run(main())
    coordinator.close()


def hold_lock_forever(cache_dir: str, run: str, ready: str) -> None:
    """Take the key lock, say so, and never let go (until killed)."""
    from seedtape.coordination.workers import WorkerCoordinator

    coordinator = WorkerCoordinator(Path(cache_dir), run)

    async def main() -> None:
        async with coordinator.key_lock("cassette", "key"):
            Path(ready).write_text(str(os.getpid()))
            time.sleep(3600)

    asyncio.run(main())
