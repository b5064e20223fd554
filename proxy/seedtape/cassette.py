"""The cassette file format ``seedtape/1``: one pretty JSON file per key.

Cassette files are the only source of truth, reviewed in git diffs, so they are
written sorted, indented and with a trailing newline, and always atomically: a reader
(or a crash) sees either the old file or the new one, never half of either.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger("seedtape")
FORMAT = "seedtape/1"
TEMP_PREFIX, TEMP_SUFFIX = ".tmp-", ".json.part"  # never match "*.json", so no reader sees them
STALE_TEMP_SECONDS = 60.0
KEY_PREFIX_LEN = 16
_SEGMENT = re.compile(r"^[A-Za-z0-9_.\-\[\]=+@,]+$")
MAX_NAME_LEN = 200


class CassetteError(Exception):
    """A cassette file that cannot be used; the message names the file."""


class InvalidCassetteName(ValueError):
    """A cassette name that would leave the cassette folder or is not a plain name."""


def validate_name(name: str) -> str:
    """Accept ``a`` or ``a/b`` made of plain segments; refuse anything else.

    Names come from request headers, so this is the guard that keeps a request from
    writing outside the cassettes folder.
    """
    if not name or len(name) > MAX_NAME_LEN or "\x00" in name or "\\" in name:
        raise InvalidCassetteName(f"invalid cassette name {name[:60]!r}: use plain path segments")
    segments = name.split("/")
    for segment in segments:
        if segment in ("", ".", "..") or not _SEGMENT.match(segment):
            raise InvalidCassetteName(f"invalid cassette name {name[:60]!r}: segments may use letters, digits and _.-[]=+@, only")
    return name


def pretty_json(data: Any) -> str:
    """Cassette text: indented by 2, keys sorted, UTF-8 rather than escapes, a final newline.

    orjson writes it in ~5 us; the standard library's indenting encoder is pure Python
    (~90 us for a chat completion, a tenth of record mode's own overhead). Whatever
    orjson refuses (an integer over 64 bits, a lone surrogate) goes to the standard
    library. The two differ only in how they spell some floats (``1e-05`` / ``0.00001``).
    """
    try:
        return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n"
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(slots=True)
class Recording:
    """Every recorded episode of one key, with the request that made them."""

    key: str
    request: dict[str, Any]
    episodes: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "key": self.key, "request": self.request, "episodes": self.episodes}

    def dumps(self) -> str:
        return pretty_json(self.to_json())

    @classmethod
    def from_json(cls, data: Any, source: str = "<memory>") -> Recording:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise CassetteError(f"{source}: not a {FORMAT} cassette file")
        key, request, episodes = data.get("key"), data.get("request"), data.get("episodes")
        if not isinstance(key, str) or not isinstance(request, dict) or not isinstance(episodes, list):
            raise CassetteError(f"{source}: needs string 'key', object 'request' and list 'episodes'")
        if not all(isinstance(e, dict) and isinstance(e.get("status"), int) for e in episodes):
            raise CassetteError(f"{source}: every episode needs an integer 'status'")
        return cls(key=key, request=request, episodes=episodes)

    def set_episode(self, occurrence: int, episode: dict[str, Any]) -> int:
        """Write the episode of the n-th occurrence (1-based) and return its number.

        The n-th occurrence rewrites episode n, so re-recording never grows the file;
        an occurrence beyond the end is appended.
        """
        index = occurrence - 1
        if 0 <= index < len(self.episodes):
            self.episodes[index] = episode
            return occurrence
        self.episodes.append(episode)
        return len(self.episodes)


def file_name(key: str) -> str:
    return key[:KEY_PREFIX_LEN] + ".json"


def read_recording(path: Path | str) -> Recording:
    try:
        # Bytes then decode, and a str path: no pathlib, no text wrapper on the replay path.
        with open(path, "rb") as handle:
            text = handle.read().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CassetteError(f"{path}: not UTF-8 ({exc.reason})") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CassetteError(f"{path}: broken JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    return Recording.from_json(data, str(path))


def write_atomic(path: Path, text: str, *, durable: bool = True) -> None:
    """Write via a temp file in the same folder, then rename over the target.

    ``durable``: fsync the data before the rename and the folder after it, so the file
    survives a power cut once this returns. Without it the file is just as whole and
    visible, and survives a crash of this process; the caller syncs it later
    (``durability.BackgroundSync``).
    """
    try:
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX, dir=path.parent)
    except FileNotFoundError:  # a new cassette: its folder is made once, not checked on every write
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
        if durable:
            fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def fsync_dir(folder: Path | str) -> None:
    """Make a rename durable: a process crash cannot lose it, but a power cut could
    (before the answer with ``--fsync always``, just after it by default)."""
    fsync_path(folder, folder=True)


def fsync_path(path: Path | str, *, folder: bool = False) -> None:
    """fsync a file (its data, whichever descriptor wrote it) or a folder by name.

    A path gone since is skipped. A folder that cannot be synced (platforms without
    directory descriptors, file systems that refuse it) is skipped quietly; a file
    that cannot be is logged, with its path only.
    """
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if folder else 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return
    except OSError as exc:  # pragma: no cover - platforms without directory descriptors
        if not folder:
            log.warning("seedtape: cannot open %s to fsync it: %s", path, exc.strerror)
        return
    try:
        os.fsync(fd)
    except OSError as exc:  # pragma: no cover - file systems that refuse it
        if not folder:
            log.warning("seedtape: fsync of %s failed: %s", path, exc.strerror)
    finally:
        os.close(fd)


def remove_stale_temp_files(root: Path, older_than: float = STALE_TEMP_SECONDS) -> list[Path]:
    """Delete temp files a crash left behind (``.tmp-*.json.part``); return them.

    They are harmless where they are (no reader looks at them), but they pile up.
    Only files older than ``older_than`` seconds go: a fresh one may belong to another
    proxy or worker writing into the same folder right now.
    """
    removed: list[Path] = []
    folder = Path(root)
    if not folder.is_dir():
        return removed
    cutoff = time.time() - older_than
    for path in folder.rglob(TEMP_PREFIX + "*" + TEMP_SUFFIX):
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed.append(path)
        except FileNotFoundError:
            continue
    return removed


def write_recording(path: Path, recording: Recording, *, durable: bool = True) -> None:
    write_atomic(path, recording.dumps(), durable=durable)
