"""The cassette folder, read through a validated index.

Lookups never trust the index blindly: each one stats the cassette file and uses the
indexed copy only while its size and mtime match, so a ``git checkout`` or a hand edit
is seen on the next request without a restart. The index has two tiers: a bounded
in-process LRU, and the diskcache directory shared by workers and restarts. Both are
derived data; deleting them loses nothing.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import diskcache

from .cassette import CassetteError, Recording, file_name, read_recording, utc_now, validate_name, write_recording
from .prepared import Prepared, prepare

log = logging.getLogger("seedtape")
Stamp = tuple[int, int]


class _LRU:
    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[str, tuple[Stamp, Prepared]] = OrderedDict()

    def get(self, path: str) -> tuple[Stamp, Prepared] | None:
        item = self._items.get(path)
        if item is not None:
            self._items.move_to_end(path)
        return item

    def put(self, path: str, item: tuple[Stamp, Prepared]) -> None:
        self._items[path] = item
        self._items.move_to_end(path)
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    def drop(self, path: str) -> None:
        self._items.pop(path, None)


class CassetteStore:
    """Cassette files by (cassette name, key), with the index in front of them."""

    def __init__(self, root: Path, cache_dir: Path | None, memory_size: int = 4096) -> None:
        self.root = Path(root)
        self._memory = _LRU(memory_size)
        self._disk = _open_disk_index(cache_dir)

    def close(self) -> None:
        if self._disk is not None:
            self._disk.close()

    def path_for(self, cassette: str, key: str) -> Path:
        return self.root / validate_name(cassette) / file_name(key)

    def load(self, cassette: str, key: str) -> Prepared | None:
        """The recording for a key, or None. Raises CassetteError for a broken file."""
        path = self.path_for(cassette, key)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        stamp = (st.st_size, st.st_mtime_ns)
        ident = str(path)
        cached = self._memory.get(ident)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        prepared = self._disk_get(ident, stamp)
        if prepared is None:
            prepared = prepare(read_recording(path))
            self._disk_put(ident, (stamp, prepared))
        if prepared.recording.key != key:
            # Two keys sharing the first 16 hex digits: vanishingly rare, never served wrong.
            return None
        self._memory.put(ident, (stamp, prepared))
        return prepared

    def save_episode(
        self, cassette: str, key: str, request: dict[str, Any], occurrence: int, episode: dict[str, Any]
    ) -> int:
        """Write the n-th occurrence's episode (read-modify-write; caller holds the key lock)."""
        path = self.path_for(cassette, key)
        recording = self._read_fresh(path, key) or Recording(key=key, request=request)
        recording.request = request
        number = recording.set_episode(occurrence, episode)
        write_recording(path, recording)
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
        """Every cassette name below the root (nested names like ``module/test`` too)."""
        if not self.root.is_dir():
            return []
        names = {str(p.parent.relative_to(self.root)) for p in self.root.rglob("*.json") if not p.name.startswith(".")}
        return sorted(n for n in names if n != ".")

    def recordings(self, cassette: str) -> Iterator[tuple[Path, Recording | CassetteError]]:
        """Every file of one cassette, parsed; a broken file yields its error instead."""
        folder = self.root / validate_name(cassette)
        if not folder.is_dir():
            return
        for path in sorted(folder.glob("*.json")):
            if path.name.startswith("."):
                continue
            try:
                yield path, read_recording(path)
            except CassetteError as exc:
                yield path, exc

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
            item = self._disk.get(ident)
        except Exception:  # a corrupted cache is only a slower lookup
            return None
        if isinstance(item, tuple) and len(item) == 2 and item[0] == stamp and isinstance(item[1], Prepared):
            return item[1]
        return None

    def _disk_put(self, ident: str, item: tuple[Stamp, Prepared]) -> None:
        if self._disk is None:
            return
        try:
            self._disk.set(ident, item)
        except Exception:
            pass


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
