"""Coordinators: counters, single-flight and stats, behind one protocol (``base``).

``coordinator_for`` picks the one a server needs; the in-process proxy builds a
``ThreadCoordinator`` itself.
"""

from __future__ import annotations

from seedtape.config import Settings
from seedtape.coordination.base import STAT_NAMES, AsyncLockContext, Coordinator
from seedtape.coordination.local import LocalCoordinator
from seedtape.coordination.threads import ThreadCoordinator

__all__ = ["STAT_NAMES", "AsyncLockContext", "Coordinator", "LocalCoordinator", "ThreadCoordinator", "coordinator_for"]


def coordinator_for(settings: Settings) -> Coordinator:
    """One worker: in memory. Several: shared through the cache directory, under the
    run's session id (set once by the CLI parent, so every worker has the same)."""
    if settings.workers > 1:
        from seedtape.coordination.workers import WorkerCoordinator

        return WorkerCoordinator(settings.cache_dir, settings.session)
    return LocalCoordinator(settings.max_sessions)
