"""Unused recordings: finding them, reporting them, and removing them.

Cassettes rot: a test is renamed or its prompt changes, and the old recording stays
in git for ever because nothing says it is dead. The pytest plugin knows which
recordings a run served or wrote; everything else in the cassettes it checked is
unused. It writes that list as a small JSON report, and ``seedtape prune --unused``
removes exactly what the report lists, so a review of the report is a review of the
deletion.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seedtape.cassette import CassetteError, pretty_json, read_recording, utc_now, validate_name, write_atomic
from seedtape.store import CassetteStore

REPORT_FORMAT = "seedtape-unused/1"
DEFAULT_REPORT = Path(".seedtape-cache") / "unused.json"

UsedKey = tuple[str, str]  # (cassette name, 64-hex key)


@dataclass(frozen=True, slots=True)
class Unused:
    """One recording no test used: its cassette, key, and file relative to the cassettes folder."""

    cassette: str
    key: str
    file: str
    model: str = ""

    def to_json(self) -> dict[str, str]:
        return {"cassette": self.cassette, "key": self.key, "file": self.file, "model": self.model}


@dataclass(slots=True)
class PruneResult:
    removed: list[Path] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # listed, but no such file any more
    changed: list[str] = field(default_factory=list)  # the file now holds another key: left alone
    dry_run: bool = False


def recordings(cassettes_dir: Path, cassettes: Iterable[str] | None = None) -> Iterator[tuple[str, Path, Any]]:
    """(cassette, file, Recording or CassetteError) for every file of the given cassettes (default: all)."""
    store = CassetteStore(Path(cassettes_dir), None)
    names = store.cassettes() if cassettes is None else sorted(set(cassettes))
    for name in names:
        for path, recording in store.recordings(name):
            yield name, path, recording


def find_unused(cassettes_dir: Path, used: set[UsedKey], cassettes: Iterable[str] | None = None) -> list[Unused]:
    """Recordings of the given cassettes (default: all) whose (cassette, key) is not in ``used``.

    A file that cannot be read is never listed: it is broken, not unused, and
    ``seedtape ls`` is the place that says so.
    """
    root = Path(cassettes_dir)
    found = []
    for name, path, recording in recordings(root, cassettes):
        if isinstance(recording, CassetteError) or (name, recording.key) in used:
            continue
        model = (recording.request.get("body") or {}).get("model") or recording.request.get("deployment") or ""
        found.append(Unused(name, recording.key, path.relative_to(root).as_posix(), str(model)))
    return found


def write_report(path: Path, cassettes_dir: Path, unused: list[Unused], **extra: Any) -> None:
    """Write the unused-recordings report (atomically, like a cassette)."""
    data = {
        "format": REPORT_FORMAT,
        "created_at": utc_now(),
        "cassettes_dir": str(Path(cassettes_dir).resolve()),
        **extra,
        "unused": [u.to_json() for u in unused],
    }
    write_atomic(Path(path), pretty_json(data))


def read_report(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: no unused-recordings report; run pytest with --seedtape-report-unused first") from None
    except ValueError as exc:
        raise ValueError(f"{path}: not a JSON file ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != REPORT_FORMAT or not isinstance(data.get("unused"), list):
        raise ValueError(f"{path}: not a {REPORT_FORMAT} report")
    return data


def _listed(report: dict[str, Any]) -> list[UsedKey]:
    listed = []
    for entry in report["unused"]:
        if isinstance(entry, dict) and isinstance(entry.get("cassette"), str) and isinstance(entry.get("key"), str):
            listed.append((validate_name(entry["cassette"]), entry["key"]))
    return listed


def prune_unused(cassettes_dir: Path, source: set[UsedKey] | Path | str, *, dry_run: bool = False) -> PruneResult:
    """Remove unused recordings; ``source`` is either the set of used (cassette, key)
    pairs (everything else in the folder goes) or the path of an unused-recordings
    report (exactly what it lists goes).

    A listed file is removed only while it still holds the listed key, and folders
    left empty are removed with it, so the cassettes folder has no empty leftovers.
    """
    root = Path(cassettes_dir)
    if isinstance(source, set):
        targets = [(u.cassette, u.key) for u in find_unused(root, source)]
    else:
        targets = _listed(read_report(Path(source)))
    store = CassetteStore(root, None)
    result = PruneResult(dry_run=dry_run)
    for cassette, key in targets:
        path = store.path_for(cassette, key)
        label = f"{cassette}/{path.name}"
        try:
            held = read_recording(path).key
        except FileNotFoundError:
            result.missing.append(label)
            continue
        except CassetteError:
            held = None
        if held != key:
            result.changed.append(label)
            continue
        result.removed.append(path)
        if not dry_run:
            path.unlink()
            _remove_empty_parents(path.parent, root)
    return result


def _remove_empty_parents(folder: Path, root: Path) -> None:
    root = root.resolve()
    folder = folder.resolve()
    while folder != root and root in folder.parents:
        try:
            os.rmdir(folder)  # only succeeds on an empty folder
        except OSError:
            return
        folder = folder.parent
