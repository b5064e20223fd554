"""The drift log: JSON Lines, one entry per verified request, only ever appended.

Several proxy workers verify at the same time and append to one file. Each entry is
encoded first and handed to the kernel in a single ``write`` on a descriptor opened
with ``O_APPEND``: the kernel then places every line whole at the current end of the
file, so lines from different processes never interleave, without any lock. A crash
can still leave a last line cut short; :func:`read` skips it instead of failing, so a
report can always be produced from what was written.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any


def encode(entry: Mapping[str, Any]) -> bytes:
    """One line: compact UTF-8 JSON; newlines inside strings are escaped by JSON."""
    return (json.dumps(entry, ensure_ascii=False, separators=(",", ":"), allow_nan=False) + "\n").encode("utf-8")


def append(path: str | os.PathLike[str], entry: Mapping[str, Any]) -> None:
    """Append one entry as one line with one ``write`` (see the module docstring)."""
    data = encode(entry)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        written = os.write(fd, data)
        # A regular file takes the whole buffer; finishing a short write keeps the entry
        # rather than leaving half a line (which read() would then skip).
        while written < len(data):
            written += os.write(fd, data[written:])
    finally:
        os.close(fd)


def iter_entries(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Entries in file order; lines that are not a JSON object are skipped."""
    target = Path(path)
    if not target.exists():
        return
    with target.open("rb") as handle:
        for raw in handle:
            line = raw.strip()
            if not line:
                continue
            try:
                entry = json.loads(line.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                # A line cut short by a crash (normally only the last one).
                continue
            if isinstance(entry, dict):
                yield entry


def read(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every readable entry; a missing file is an empty log, not an error."""
    return list(iter_entries(path))
