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

from seedtape.cassette import CassetteError, Recording, file_name, read_recording, utc_now, validate_name, write_recording
from seedtape.durability import FSYNC_POLICIES, BackgroundSync
from seedtape.prepared import Prepared, prepare

log = logging.getLogger("seedtape")
Stamp = tuple[int, int]
DISK_TIER_MIN_BYTES = 16 * 1024
_MAX_FOLDERS = 1024
_INDEX_FORMAT = "2"  # part of every diskcache key: entries pickled by another layout are never read  # validated cassette folders remembered (names come from request headers)


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

    def __init__(self, root: Path, cache_dir: Path | None, memory_size: int = 4096, fsync: str = "always") -> None:
        if fsync not in FSYNC_POLICIES:
            raise ValueError(f"unknown fsync policy {fsync!r}; expected one of {', '.join(FSYNC_POLICIES)}")
        self.root = Path(root)
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

    def load(self, cassette: str, key: str) -> Prepared | None:
        """The recording for a key, or None. Raises CassetteError for a broken file."""
        ident = self._file(cassette, key)
        try:
            st = os.stat(ident)
        except (FileNotFoundError, NotADirectoryError):
            return None
        stamp = (st.st_size, st.st_mtime_ns)
        cached = self._memory.get(ident)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        big = st.st_size >= DISK_TIER_MIN_BYTES
        prepared = self._disk_get(ident, stamp) if big else None
        if prepared is None:
            prepared = prepare(read_recording(ident))
            if big:
                self._disk_put(ident, (stamp, prepared))
        if prepared.recording.key != key:
            # Two keys sharing the first 16 hex digits: vanishingly rare, never served wrong.
            return None
        self._memory.put(ident, (stamp, prepared))
        return prepared

    def save_episode(self, cassette: str, key: str, request: dict[str, Any], occurrence: int, episode: dict[str, Any]) -> int:
        """Write the n-th occurrence's episode (read-modify-write; caller holds the key lock)."""
        path = self.path_for(cassette, key)
        recording = self._read_fresh(path, key) or Recording(key=key, request=request)
        recording.request = request
        number = recording.set_episode(occurrence, episode)
        write_recording(path, recording, durable=self.fsyncs_on_save)
        if self.background_sync is not None:
            self.background_sync.submit(str(path))
        self._memory.drop(str(path))
        return number

    def _read_fresh(self, path: Path, key: str) -> Recording | None:
        try:
            recording = read_recording(path)
        except FileNotFoundError:
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
        self, cassette: str, *, ordered: bool = True, limit: int | None = None
    ) -> Iterator[tuple[Path, Recording | CassetteError]]:
        """The files of one cassette, parsed; a broken file yields its error instead.

        ``ordered`` sorts by file name (the key); ``limit`` stops after that many, so a
        caller that needs a few of a million files reads only those few.
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
                yield path, read_recording(path)
            except CassetteError as exc:
                yield path, exc
            except FileNotFoundError:
                continue  # removed since the folder was listed

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
