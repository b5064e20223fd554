"""What concurrent requests must agree on, whichever coordinator keeps it.

Occurrence counters (the n-th identical request of a session gets episode n),
single-flight locks per key, and statistics. Every coordinator implements this one
protocol: ``local`` (one event loop), ``threads`` (several loops in one process: the
in-process proxy), ``workers`` (several processes sharing the cache directory).
"""

from __future__ import annotations

from types import TracebackType
from typing import Protocol

STAT_NAMES = (
    "requests",
    "hits",
    "misses",
    "recorded",
    "unsaved",
    "upstream_calls",
    "verified",
    "drifted",
    "variety",
    "unrecorded",
    "errors",
    "bypassed",
)


class Coordinator(Protocol):
    def next_occurrence(self, session: str, cassette: str, key: str) -> int: ...

    def release_occurrence(self, session: str, cassette: str, key: str, occurrence: int) -> None:
        """Give back an occurrence whose request failed (nothing recorded or served).

        A client retrying after a 429 or a reset must get the same episode number
        again, as if the failed attempt never happened. Only the latest occurrence can
        be given back; an older one (others came after it) is kept.
        """
        ...

    def claim_episode(self, session: str, cassette: str, key: str, episode: int) -> bool:
        """True the first time this session writes episode ``episode`` of the key.

        Re-recording rewrites episode n with the n-th request, but an episode this
        session already wrote (an answer that completed out of order and was appended
        there) is another client's answer: it must not be overwritten. Called under
        the key's write lock.
        """
        ...

    def key_lock(self, cassette: str, key: str) -> AsyncLockContext: ...

    def incr(self, stat: str, amount: int = 1) -> None: ...

    def stats(self) -> dict[str, int]: ...


class AsyncLockContext(Protocol):
    async def __aenter__(self) -> object: ...

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> bool | None: ...
