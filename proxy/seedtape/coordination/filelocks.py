"""Per-key ``flock`` locks that every process on one cassettes folder agrees on.

Two ``seedtape serve`` processes started in two terminals, a test run beside a
notebook, the pytest plugin's in-process proxy: none of them share memory, and
``--workers`` is not involved, yet they read, change and write the same cassette
files. A cassette write is a read-modify-write (another episode into the list), so
without a lock two writers each read the old file and the last rename wins: answers
their clients were told are ``recorded`` vanish. Single-flight (N identical requests,
one upstream call) has the same need across processes.

The locks are ``flock`` locks on small files under ``<cassettes>/.seedtape-locks/``,
next to what they protect, so every process using the folder finds them whatever its
cache directory. The kernel releases a lock when its holder dies, even by SIGKILL,
so a crashed proxy never leaves a key locked. Waiting never blocks the event loop:
the lock is polled without blocking (1 ms, doubling to 50 ms), and an in-process
asyncio lock in front of it means only one request per process polls for a given
key. ``flock`` locks belong to an open file description, so two event loops of one
process (the in-process proxy) exclude each other too.

A folder where lock files cannot be made (read-only, or not POSIX) gets in-process
locks only, said once in the log: replay needs no lock, and a write there would fail
anyway and be reported as ``unsaved``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

HAVE_FLOCK: bool = fcntl is not None
log = logging.getLogger("seedtape")
LOCKS_FOLDER = ".seedtape-locks"
_POLL_FIRST = 0.001
_POLL_MAX = 0.05
STALE_LOCK_SECONDS = 60.0


def lock_name(cassette: str, key: str) -> str:
    return hashlib.sha256(f"{cassette}\0{key}".encode()).hexdigest()[:40] + ".lock"


class CassetteLocks:
    """Key locks shared by every process (and thread) using one cassettes folder."""

    def __init__(self, cassettes_dir: Path) -> None:
        self.folder = Path(cassettes_dir) / LOCKS_FOLDER
        self._warned = False

    @asynccontextmanager
    async def hold(self, cassette: str, key: str) -> AsyncIterator[None]:
        """Hold the file lock of (cassette, key). The caller holds its in-process lock."""
        if not HAVE_FLOCK:  # pragma: no cover
            yield
            return
        path = self.folder / lock_name(cassette, key)
        try:
            fd = await acquire_file_lock(path)
        except OSError as exc:
            if not self._warned:
                self._warned = True
                log.warning(
                    "seedtape: cannot make lock files in %s (%s); other processes on this cassettes folder are not excluded",
                    self.folder,
                    exc.strerror or exc,
                )
            yield
            return
        try:
            yield
        finally:
            release_file_lock(fd, path)


@contextmanager
def holding(cassettes_dir: Path, cassette: str, key: str) -> Iterator[None]:
    """The file lock of (cassette, key), waited for: for a command that writes cassette
    files beside running proxies (``seedtape sync pull``), where blocking is fine. A
    folder where lock files cannot be made gets no exclusion, as in a proxy."""
    path = Path(cassettes_dir) / LOCKS_FOLDER / lock_name(cassette, key)
    fd = _wait_for_lock(path) if HAVE_FLOCK else None
    try:
        yield
    finally:
        if fd is not None:
            release_file_lock(fd, path)


def _wait_for_lock(path: Path) -> int | None:
    """``acquire_file_lock``'s blocking twin (same steps; a command may block)."""
    while True:
        try:
            fd = _open_lock_file(path)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if _is_current(fd, path):
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


async def acquire_file_lock(path: Path) -> int:
    """An exclusive ``flock`` on ``path``, polled so the event loop never blocks.

    The holder removes the file when it releases (so lock files do not pile up); a
    waiter that then gets the lock on the removed file sees it is no longer the file
    at ``path`` and starts again on the new one.
    """
    delay = _POLL_FIRST
    while True:
        fd = _open_lock_file(path)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, _POLL_MAX)
            if _is_current(fd, path):
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


def _open_lock_file(path: Path) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
    except FileNotFoundError:  # first use, or the folder was deleted while running
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)


def _is_current(fd: int, path: Path) -> bool:
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (on_disk.st_dev, on_disk.st_ino)


def release_file_lock(fd: int, path: Path) -> None:
    try:
        os.unlink(path)  # while still holding it: see acquire_file_lock
    except FileNotFoundError:
        pass
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def remove_stale_locks(cassettes_dir: Path, older_than: float = STALE_LOCK_SECONDS) -> list[Path]:
    """Lock files a killed process left behind (nobody holds them): removed at start-up."""
    removed: list[Path] = []
    folder = Path(cassettes_dir) / LOCKS_FOLDER
    if not HAVE_FLOCK or not folder.is_dir():
        return removed
    cutoff = time.time() - older_than
    for path in folder.glob("*.lock"):
        try:
            if path.stat().st_mtime >= cutoff:
                continue
            fd = os.open(path, os.O_RDWR)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if _is_current(fd, path):
                os.unlink(path)
                removed.append(path)
        except OSError:
            pass  # held by a live process
        finally:
            os.close(fd)
    return removed
