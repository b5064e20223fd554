"""Recorded sessions of a cassette by handshake: what to send before the key is known.

The service speaks first (``session.created``), before the client's first event, and
a client may wait for it before sending anything; but a session's key includes that
first event. So a replay sends the *prelude* (the server events recorded before the
first client event) of a recorded session with the same handshake (path shape,
model or deployment, api-version), then reads the first event, and from there
follows the one recording its key names. When several recordings share the
handshake, the prelude of the lowest key is sent: they differ only in ids.

The index is derived data like every other: rebuilt from the cassette folder when the
folder changes (a file added, removed or renamed into place), each file parsed once
per (size, mtime).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any

from seedtape.cassette import CassetteError, Recording
from seedtape.realtime.handshake import Handshake, identity_of
from seedtape.realtime.tape import Session, is_session
from seedtape.store import CassetteStore

MAX_FILES = 5000  # as for HTTP misses: a huge cassette is not read whole for a prelude


@dataclass(frozen=True, slots=True)
class Entry:
    key: str
    request: dict[str, Any]
    identity: tuple[str, str, str, tuple[tuple[str, str], ...]]
    prelude: tuple[str, ...]
    subprotocol: str | None


class SessionIndex:
    def __init__(self, store: CassetteStore) -> None:
        self.store = store
        self._folders: dict[str, tuple[int, list[Entry]]] = {}
        self._files: dict[str, tuple[tuple[int, int], Entry | None]] = {}
        self._lock = threading.Lock()

    def entries(self, cassette: str, scan: bool = True) -> list[Entry] | None:
        """The cassette's session entries; with ``scan=False``, None when that would mean
        reading files (the caller asks again from a worker thread)."""
        folder = str(self.store.root / cassette)
        try:
            stamp = os.stat(folder).st_mtime_ns
        except (FileNotFoundError, NotADirectoryError):
            return []
        with self._lock:
            cached = self._folders.get(cassette)
            if cached is not None and cached[0] == stamp:
                return cached[1]
        if not scan:
            return None
        entries = self._scan(folder)
        with self._lock:
            if len(self._folders) > 256:
                self._folders.clear()
            self._folders[cassette] = (stamp, entries)
        return entries

    def _scan(self, folder: str) -> list[Entry]:
        entries: list[Entry] = []
        seen = 0
        with os.scandir(folder) as listing:
            names = sorted(e.name for e in listing if e.name.endswith(".json") and not e.name.startswith("."))
        for name in names:
            seen += 1
            if seen > MAX_FILES:
                break
            path = os.path.join(folder, name)
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue
            stamp = (st.st_size, st.st_mtime_ns)
            with self._lock:
                known = self._files.get(path)
            if known is not None and known[0] == stamp:
                entry = known[1]
            else:
                entry = self._entry(path)
                with self._lock:
                    if len(self._files) > 20000:
                        self._files.clear()
                    self._files[path] = (stamp, entry)
            if entry is not None:
                entries.append(entry)
        return sorted(entries, key=lambda e: e.key)

    def matching(self, cassette: str, handshake: Handshake, scan: bool = True) -> list[Entry] | None:
        entries = self.entries(cassette, scan)
        if entries is None:
            return None
        identity = handshake.identity()
        return [e for e in entries if e.identity == identity]

    def _entry(self, path: str) -> Entry | None:
        try:
            # The store's guards: inside the cassettes folder, a regular file, under the size limit.
            recording = self.store.read_path(path)
        except (CassetteError, OSError):
            return None
        return _entry_of(recording)


def _entry_of(recording: Recording) -> Entry | None:
    identity = identity_of(recording.request)
    if identity is None:
        return None
    sessions = [e for e in recording.episodes if is_session(e)]
    if not sessions:
        return None
    first = Session.prepare(1, sessions[0])
    return Entry(recording.key, recording.request, identity, first.prelude_frames(), first.subprotocol)
