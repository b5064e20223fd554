"""When a recording reaches the disk: before its answer is sent, or just after.

A recording is always written whole and renamed into place before the client gets its
answer, so from then on every reader (another request, a worker, ``seedtape ls``)
sees it, and it survives seedtape crashing or being killed: the kernel holds it. What
``fsync`` adds is surviving a power cut or a kernel crash, and on this kind of disk it
costs two journal commits (~0.5-0.9 ms) per recording.

``--fsync background`` (the default) leaves those commits to one thread that makes
each recording durable within ~50 ms of its answer, as SQLite's
``synchronous=NORMAL`` or Redis's ``appendfsync everysec`` trade it: what a power cut
can cost is the last moments' recordings, never a recording already synced, and a
file cut short by one is reported by name on load and re-recorded, never served.
``--fsync always`` makes the answer wait for the commits. Shutdown waits for the
thread.
"""

from __future__ import annotations

import logging
import os
import threading

from seedtape.cassette import fsync_dir, fsync_path

log = logging.getLogger("seedtape")
# --fsync: "background" (just after the answer) or "always" (before it).
FSYNC_POLICIES = ("background", "always")
GATHER_SECONDS = 0.05
# A batch this big is synced with one sync() rather than an fsync per file: each
# fsync of a fresh file is its own journal commit (20 files: ~6 ms), one sync()
# commits them all at once (~0.8 ms; /tmp measurements in docs/performance.md).
SYNC_ALL_FROM = 4


class BackgroundSync:
    """Syncs written files in batches on one thread, started with the first file."""

    def __init__(self, gather_seconds: float = GATHER_SECONDS) -> None:
        self._gather = gather_seconds
        self._cond = threading.Condition()
        self._pending: list[str] = []
        self._submitted = 0
        self._synced = 0
        self._thread: threading.Thread | None = None
        self._closed = False
        self._flush_wanted = False
        self._idle = False  # waiting for work: only then does a submit need to wake it

    @property
    def pending(self) -> int:
        with self._cond:
            return self._submitted - self._synced

    def submit(self, path: str) -> None:
        with self._cond:
            closed = self._closed
            if not closed:
                self._pending.append(path)
                self._submitted += 1
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="seedtape-fsync", daemon=True)
                    self._thread.start()
                elif self._idle:
                    self._cond.notify_all()
        if closed:  # a save racing shutdown: synced here rather than dropped
            sync_files([path])

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything submitted so far is synced; False on timeout."""
        with self._cond:
            target = self._submitted
            self._flush_wanted = True
            self._cond.notify_all()
            done = self._cond.wait_for(lambda: self._synced >= target, timeout)
            self._flush_wanted = False
            return done

    def close(self, timeout: float = 30.0) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._idle = True
                self._cond.wait_for(lambda: self._pending or self._closed)
                self._idle = False
                # Let a burst gather, so it costs one journal commit (SYNC_ALL_FROM)
                # and the commits stay out of the way of the answers being sent.
                self._cond.wait_for(lambda: self._closed or self._flush_wanted, self._gather)
                batch, self._pending = self._pending, []
                if not batch and self._closed:
                    return
            try:
                sync_files(batch)
            except Exception:  # never leave flush() and shutdown waiting on a dead thread
                log.exception("seedtape: background fsync of %d recordings failed", len(batch))
            with self._cond:
                self._synced += len(batch)
                self._cond.notify_all()


def sync_files(paths: list[str]) -> None:
    """fsync each file, then each folder once (which makes the renames durable).

    A file gone since (replaced by a newer write, which syncs itself, or deleted) is
    skipped; a failure is logged with the path only and never stops the others.
    """
    if len(paths) >= SYNC_ALL_FROM and hasattr(os, "sync"):
        os.sync()  # every file's data and every rename, in one commit per file system
        return
    for path in dict.fromkeys(paths):
        fsync_path(path)
    for folder in dict.fromkeys(os.path.dirname(p) for p in paths):
        fsync_dir(folder)
