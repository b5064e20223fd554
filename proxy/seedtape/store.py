"""The cassette folder, read through a validated index.

Lookups never trust the index blindly: each one stats the cassette file and uses the
indexed copy only while its size and mtime match, so a ``git checkout`` or a hand edit
is seen on the next request without a restart. The index has two tiers: a bounded
in-process LRU, and the diskcache directory shared by workers and restarts. Both are
derived data; deleting them loses nothing.

The diskcache tier only holds recordings of ``DISK_TIER_MIN_BYTES`` or more. For a
typical chat completion (a 2 KB file) reading and encoding the file takes ~25 us while
a diskcache miss plus its write takes ~80 us and a hit ~17 us (docs/performance.md),
so small files are read straight from the cassette folder; big ones (long streams,
embeddings) are where parsing costs more than sqlite, and there the tier pays.
Nothing is read at start: a lookup is one ``stat`` and, the first time, one file read.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import os
import shutil
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import diskcache

from seedtape.cassette import (
    MAX_FILE_BYTES,
    PIECES_FROM_BYTES,
    CassetteError,
    Recording,
    dismantle,
    file_name,
    read_recording,
    utc_now,
    validate_name,
    write_recording,
)
from seedtape.durability import FSYNC_POLICIES, BackgroundSync
from seedtape.prepared import Prepared, prepare

log = logging.getLogger("seedtape")
Stamp = tuple[int, int]
DISK_TIER_MIN_BYTES = 16 * 1024
_MAX_FOLDERS = 1024  # validated cassette folders remembered (names come from request headers)
_INDEX_FORMAT = "3"  # part of every diskcache key: entries pickled by another layout are never read
# A lookup that must read a file this big or bigger is left to a worker thread by the
# engine (``load(..., inline_max=...)``): parsing and encoding it would hold the loop.
READ_INLINE_MAX = 256 * 1024


class Deferred:
    """``load`` would have to read a big file: ask again off the event loop."""


DEFERRED = Deferred()


class _LRU:
    """Bounded, and safe to share with the in-process sync clients' threads."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[str, tuple[Stamp, Prepared]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: str) -> tuple[Stamp, Prepared] | None:
        with self._lock:
            item = self._items.get(path)
            if item is not None:
                self._items.move_to_end(path)
            return item

    def put(self, path: str, item: tuple[Stamp, Prepared]) -> None:
        with self._lock:
            self._items[path] = item
            self._items.move_to_end(path)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def drop(self, path: str) -> None:
        with self._lock:
            self._items.pop(path, None)


class CassetteStore:
    """Cassette files by (cassette name, key), with the index in front of them."""

    def __init__(
        self, root: Path, cache_dir: Path | None, memory_size: int = 4096, fsync: str = "always", max_file_bytes: int = MAX_FILE_BYTES
    ) -> None:
        if fsync not in FSYNC_POLICIES:
            raise ValueError(f"unknown fsync policy {fsync!r}; expected one of {', '.join(FSYNC_POLICIES)}")
        self.root = Path(root)
        self.max_file_bytes = max_file_bytes
        self._memory = _LRU(memory_size)
        self._disk = _open_disk_index(cache_dir)
        self._folders: dict[str, str] = {}
        # None: every save is fsynced before it returns (see durability.py). That is the
        # default for code using the store directly; the server's is Settings.fsync.
        self.background_sync = BackgroundSync() if fsync == "background" else None

    @property
    def fsyncs_on_save(self) -> bool:
        """Does ``save_episode`` wait for the disk (``--fsync always``)?"""
        return self.background_sync is None

    def close(self) -> None:
        if self.background_sync is not None:
            self.background_sync.close()
        if self._disk is not None:
            self._disk.close()

    def path_for(self, cassette: str, key: str) -> Path:
        return self.root / validate_name(cassette) / file_name(key)

    def _file(self, cassette: str, key: str) -> str:
        """``path_for`` as a string, without pathlib on the hot path."""
        folder = self._folders.get(cassette)
        if folder is None:
            folder = str(self.root / validate_name(cassette)) + os.sep
            if len(self._folders) >= _MAX_FOLDERS:
                self._folders.clear()
            self._folders[cassette] = folder
        return folder + file_name(key)

    def load(self, cassette: str, key: str, inline_max: int | None = None) -> Prepared | Deferred | None:
        """The recording for a key, or None. Raises CassetteError for a broken file.

        ``inline_max``: when the indexed copy is stale and the file is at least this
        big, return ``DEFERRED`` instead of reading it (the caller asks again from a
        worker thread). Only a stale or first lookup reads; a hit is one ``stat``.
        """
        ident = self._file(cassette, key)
        try:
            st = os.stat(ident)
        except (FileNotFoundError, NotADirectoryError):
            return None
        stamp = (st.st_size, st.st_mtime_ns)
        cached = self._memory.get(ident)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        if inline_max is not None and st.st_size >= inline_max:
            return DEFERRED
        self.check_inside(ident)
        disk_tier = DISK_TIER_MIN_BYTES <= st.st_size < PIECES_FROM_BYTES  # bigger: pickling would hold the loop as long
        prepared = self._disk_get(ident, stamp) if disk_tier else None
        if prepared is None:
            recording = read_recording(ident, self.max_file_bytes, st)
            prepared = prepare(recording)
            if st.st_size >= PIECES_FROM_BYTES:
                dismantle(recording.episodes)  # in slices, here, rather than in one go wherever it is dropped
            if disk_tier:
                self._disk_put(ident, (stamp, prepared))
        if prepared.key != key:
            # Two keys sharing the first 16 hex digits: vanishingly rare, never served wrong.
            return None
        self._memory.put(ident, (stamp, prepared))
        return prepared

    def read(self, cassette: str, key: str) -> Recording | None:
        """The recording of a key parsed from its file (no index), or None."""
        path = self.path_for(cassette, key)
        self.check_inside(path)
        try:
            recording = read_recording(path, self.max_file_bytes)
        except (FileNotFoundError, NotADirectoryError):
            return None
        return recording if recording.key == key else None

    def check_inside(self, path: Path | str) -> None:
        """Refuse a cassette path that leads out of the cassettes folder (a symlinked
        file or folder pointing elsewhere): a cassette folder from a checkout must not
        make the proxy read or write other files of this machine."""
        root = os.path.realpath(self.root)
        real = os.path.realpath(path)
        if real != root and not real.startswith(root.rstrip(os.sep) + os.sep):
            raise CassetteError(f"{path}: leads out of the cassettes folder {self.root} (to {real}); refused")

    def writable(self, cassette: str) -> bool:
        """Can a recording be written into this cassette, as far as can be told before
        trying? (A folder that is a file, or read-only; a full disk shows only when
        writing.) Streams ask first: their headers go out before their save."""
        folder = os.path.abspath(self.root / validate_name(cassette))
        while not os.path.exists(folder):
            parent = os.path.dirname(folder)
            if parent == folder:
                return False
            folder = parent
        return os.path.isdir(folder) and os.access(folder, os.W_OK)

    def save_episode(
        self,
        cassette: str,
        key: str,
        request: dict[str, Any],
        occurrence: int,
        episode: dict[str, Any],
        keep_since: float | None = None,
    ) -> int:
        """Write the n-th occurrence's episode (read-modify-write; caller holds the key lock).

        ``keep_since``: episodes recorded since then are never overwritten (see
        ``Recording.set_episode``). Raises OSError when the file cannot be written.
        """
        path = self.path_for(cassette, key)
        if path.parent.exists():
            self.check_inside(path)
        recording = self._read_fresh(path, key) or Recording(key=key, request=request)
        recording.request = request
        number = recording.set_episode(occurrence, episode, keep_since)
        write_recording(path, recording, durable=self.fsyncs_on_save)
        if self.background_sync is not None:
            self.background_sync.submit(str(path))
        self._memory.drop(str(path))
        if recording.is_big():  # the episodes read from the file; the one passed in is the caller's
            dismantle([e for e in recording.episodes if e is not episode])
        return number

    def _read_fresh(self, path: Path, key: str) -> Recording | None:
        try:
            recording = read_recording(path, self.max_file_bytes)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except CassetteError as exc:
            # A broken file is replaced by the new recording, never merged into; the
            # broken one is kept beside it (no reader looks at *.broken-*) so a hand
            # edit that went wrong is not lost.
            aside = path.with_name(f"{path.name}.broken-{utc_now().replace(':', '')}")
            os.replace(path, aside)
            log.warning("seedtape: %s; re-recording it, the broken file is kept as %s", exc, aside.name)
            return None
        return recording if recording.key == key else None

    def cassettes(self) -> list[str]:
        """Every cassette name below the root (nested names like ``module/test`` too).

        ``os.walk`` (scandir) rather than ``rglob``: at a million files, building a Path
        for each one is what made ``seedtape ls`` slow.
        """
        if not self.root.is_dir():
            return []
        names = []
        for folder, _, files in os.walk(self.root):
            if folder != str(self.root) and any(_is_recording(f) for f in files):
                names.append(os.path.relpath(folder, self.root).replace(os.sep, "/"))
        return sorted(names)

    def count(self, cassette: str) -> int:
        """How many recording files a cassette has, without reading any of them."""
        return sum(1 for _ in self._names(cassette))

    def _names(self, cassette: str) -> Iterator[str]:
        folder = self.root / validate_name(cassette)
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    if _is_recording(entry.name):
                        yield entry.name
        except (FileNotFoundError, NotADirectoryError):
            return

    def recordings(
        self, cassette: str, *, ordered: bool = True, limit: int | None = None, max_bytes: int | None = None
    ) -> Iterator[tuple[Path, Recording | CassetteError]]:
        """The files of one cassette, parsed; a broken file yields its error instead.

        ``ordered`` sorts by file name (the key); ``limit`` stops after that many, so a
        caller that needs a few of a million files reads only those few. A file over
        ``max_bytes`` (default: the cassette file limit), one that is not a regular
        file, or one leading out of the cassettes folder yields its error unread.
        """
        folder = self.root / validate_name(cassette)
        names: Iterable[str]
        if ordered:
            names = sorted(self._names(cassette)) if limit is None else heapq.nsmallest(limit, self._names(cassette))
        else:
            names = self._names(cassette) if limit is None else itertools.islice(self._names(cassette), limit)
        for name in names:
            path = folder / name
            try:
                self.check_inside(path)
                yield path, read_recording(path, max_bytes or self.max_file_bytes)
            except CassetteError as exc:
                yield path, exc
            except (FileNotFoundError, NotADirectoryError):
                continue  # removed since the folder was listed
            except OSError as exc:
                yield path, CassetteError(f"{path}: cannot be read: {exc.strerror or exc}")

    def files(self, cassette: str, limit: int | None = None) -> Iterator[tuple[str, Stamp]]:
        """(path, (size, mtime)) of a cassette's recording files, unordered, unread."""
        folder = self.root / validate_name(cassette)
        seen = 0
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    if limit is not None and seen >= limit:
                        return
                    if not _is_recording(entry.name):
                        continue
                    try:
                        st = entry.stat()
                    except OSError:
                        continue
                    seen += 1
                    yield entry.path, (st.st_size, st.st_mtime_ns)
        except (FileNotFoundError, NotADirectoryError):
            return

    def read_path(self, path: str | Path, max_bytes: int | None = None) -> Recording:
        """One cassette file, parsed, if it is a regular file inside the cassettes folder."""
        self.check_inside(path)
        return read_recording(path, max_bytes or self.max_file_bytes)

    def find(self, key_prefix: str) -> list[tuple[str, Path]]:
        """Files whose key starts with a prefix, across cassettes (for ``seedtape show``)."""
        found = []
        for cassette in self.cassettes():
            for path in (self.root / cassette).glob(key_prefix[:16] + "*.json"):
                found.append((cassette, path))
        return found

    def _disk_get(self, ident: str, stamp: Stamp) -> Prepared | None:
        if self._disk is None:
            return None
        try:
            item = self._disk.get(_INDEX_FORMAT + ":" + ident)
        except Exception:  # a corrupted cache is only a slower lookup
            return None
        if isinstance(item, tuple) and len(item) == 2 and item[0] == stamp and isinstance(item[1], Prepared):
            return item[1]
        return None

    def _disk_put(self, ident: str, item: tuple[Stamp, Prepared]) -> None:
        if self._disk is None:
            return
        with contextlib.suppress(Exception):
            self._disk.set(_INDEX_FORMAT + ":" + ident, item)


def _is_recording(name: str) -> bool:
    return name.endswith(".json") and not name.startswith(".")


def _open_disk_index(cache_dir: Path | None) -> diskcache.Cache | None:
    if cache_dir is None:
        return None
    folder = Path(cache_dir) / "index"
    for attempt in (1, 2):
        try:
            return diskcache.Cache(str(folder), size_limit=2**30)
        except Exception:
            if attempt == 2:
                return None  # no index: every lookup reads the cassette file
            shutil.rmtree(folder, ignore_errors=True)  # corrupted: derived data, rebuilt from the cassettes
    return None
