"""The cassette file format ``seedtape/1``: one pretty JSON file per key.

Cassette files are the only source of truth, reviewed in git diffs, so they are
written sorted, indented and with a trailing newline, and always atomically: a reader
(or a crash) sees either the old file or the new one, never half of either.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import logging
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from seedtape import bigjson
from seedtape.headers import FRAMING_HEADERS, header_problem

log = logging.getLogger("seedtape")
FORMAT = "seedtape/1"
TEMP_PREFIX, TEMP_SUFFIX = ".tmp-", ".json.part"  # never match "*.json", so no reader sees them
STALE_TEMP_SECONDS = 60.0
KEY_PREFIX_LEN = 16
_SEGMENT = re.compile(r"[A-Za-z0-9_.\-\[\]=+@,]+")
MAX_NAME_LEN = 200
# Names seedtape keeps for itself inside the cassettes folder (the cross-process locks).
RESERVED_PREFIX = ".seedtape"
# A cassette file bigger than this is refused, never read (--max-cassette-size).
MAX_FILE_BYTES = 256 * 1024 * 1024
# From this size a file is parsed and written in pieces (bigjson.py), never in one C call.
PIECES_FROM_BYTES = 1024 * 1024
WRITE_STEP = 1024 * 1024
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


class CassetteError(Exception):
    """A cassette file that cannot be used; the message names the file."""


class NotAFile(CassetteError):
    """A cassette path that is not a regular file (a FIFO, a device, a folder): refused
    from its ``stat``, so it is never opened for reading (a FIFO would block for ever,
    ``/dev/zero`` would never end)."""


class InvalidCassetteName(ValueError):
    """A cassette name that would leave the cassette folder or is not a plain name."""


def validate_name(name: str) -> str:
    """Accept ``a`` or ``a/b`` made of plain segments; refuse anything else.

    Names come from request headers, so this is the guard that keeps a request from
    writing outside the cassettes folder.
    """
    if not isinstance(name, str) or not name or len(name) > MAX_NAME_LEN or "\x00" in name or "\\" in name:
        raise InvalidCassetteName(f"invalid cassette name {str(name)[:60]!r}: use plain path segments")
    segments = name.split("/")
    for segment in segments:
        # fullmatch: a "$" would let a trailing newline through (a folder named "x\n").
        if segment in ("", ".", "..") or not _SEGMENT.fullmatch(segment):
            raise InvalidCassetteName(f"invalid cassette name {name[:60]!r}: segments may use letters, digits and _.-[]=+@, only")
        if segment.startswith(RESERVED_PREFIX):
            raise InvalidCassetteName(f"invalid cassette name {name[:60]!r}: names starting with {RESERVED_PREFIX!r} are seedtape's own")
    return name


def pretty_json(data: Any, *, pieces: bool = False) -> str:
    """Cassette text: indented by 2, keys sorted, UTF-8 rather than escapes, a final newline.

    orjson writes it in ~5 us; the standard library's indenting encoder is pure Python
    (~90 us for a chat completion, a tenth of record mode's own overhead). Whatever
    orjson refuses (an integer over 64 bits, a lone surrogate) goes to the standard
    library. The two differ only in how they spell some floats (``1e-05`` / ``0.00001``).
    ``pieces``: the same text, written an element at a time (bigjson.py) so a big
    recording never holds the interpreter for one long call.
    """
    try:
        if pieces:
            return bigjson.pretty(data)
        return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n"
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def recorded_epoch(episode: Mapping[str, Any]) -> float:
    """An episode's ``recorded_at`` in epoch seconds; 0 when it has none or cannot be read."""
    value = episode.get("recorded_at")
    if not isinstance(value, str):
        return 0.0
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


@dataclass(slots=True)
class Recording:
    """Every recorded episode of one key, with the request that made them."""

    key: str
    request: dict[str, Any]
    episodes: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "key": self.key, "request": self.request, "episodes": self.episodes}

    def dumps(self) -> str:
        return pretty_json(self.to_json(), pieces=self.is_big())

    def is_big(self) -> bool:
        """Enough events or bytes that writing it in one call would hold the loop."""
        events = sum(len(e.get("events") or ()) for e in self.episodes if isinstance(e, dict))
        return events > bigjson.SLICE or len(self.episodes) > bigjson.SLICE or _bulk(self.episodes) > PIECES_FROM_BYTES

    @classmethod
    def from_json(cls, data: Any, source: str = "<memory>") -> Recording:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise CassetteError(f"{source}: not a {FORMAT} cassette file")
        key, request, episodes = data.get("key"), data.get("request"), data.get("episodes")
        if not isinstance(key, str) or not isinstance(request, dict) or not isinstance(episodes, list):
            raise CassetteError(f"{source}: needs string 'key', object 'request' and list 'episodes'")
        for number, episode in enumerate(episodes, 1):
            problem = episode_problem(episode)
            if problem:
                raise CassetteError(f"{source}: episode {number}: {problem}")
        return cls(key=key, request=request, episodes=episodes)

    def set_episode(self, occurrence: int, episode: dict[str, Any], keep_since: float | None = None) -> int:
        """Write the episode of the n-th occurrence (1-based) and return its number.

        The n-th occurrence rewrites episode n, so re-recording never grows the file;
        an occurrence beyond the end is appended. ``keep_since`` (epoch seconds, the
        start of the writer's run): an episode recorded since then was written during
        this run, perhaps by another process on the same folder, and acknowledged to
        its client; it is never overwritten, the next older episode is (else append).
        """
        index = occurrence - 1
        if keep_since is not None:
            while 0 <= index < len(self.episodes) and recorded_epoch(self.episodes[index]) >= keep_since:
                index += 1
        if 0 <= index < len(self.episodes):
            self.episodes[index] = episode
            return index + 1
        self.episodes.append(episode)
        return len(self.episodes)


def _bulk(episodes: Iterable[Any]) -> int:
    """Bytes of the big strings of some episodes (a text or binary answer)."""
    total = 0
    for episode in episodes:
        if isinstance(episode, dict):
            for name in ("body_text", "body_base64"):
                value = episode.get(name)
                if isinstance(value, str):
                    total += len(value)
    return total


# A Realtime session's episode: the WebSocket handshake's status (realtime/tape.py).
SWITCHING_PROTOCOLS = 101
# The kinds of answer an episode holds, exactly one each (docs/design.md, "Cassettes").
BODY_KINDS = ("body", "body_text", "body_base64", "events")


def episode_problem(episode: Any) -> str | None:
    """What makes an episode unservable, or None. Checked when a file is loaded, so a
    bad hand edit is a 500 naming the file, never a dropped connection or a ``null``."""
    if not isinstance(episode, dict):
        return "is not an object"
    status = episode.get("status")
    if status == SWITCHING_PROTOCOLS and "events" in episode:
        return _session_problem(episode["events"])
    # 1xx is no final answer: sent as one, it corrupts the client's connection.
    if not isinstance(status, int) or isinstance(status, bool) or not 200 <= status <= 599:
        return f"'status' must be an integer from 200 to 599, not {status!r}"[:120]
    headers = episode.get("headers")
    if headers is not None:
        if not isinstance(headers, Mapping):
            return "'headers' must be an object"
        for name, value in headers.items():
            problem = header_problem(name, value)
            if problem:
                return problem
    kinds = [kind for kind in BODY_KINDS if kind in episode]
    if len(kinds) != 1:
        return (
            f"holds {' and '.join(kinds)}; an episode holds exactly one" if kinds else f"holds no answer (one of {', '.join(BODY_KINDS)})"
        )
    kind = kinds[0]
    if kind == "body_text" and not isinstance(episode["body_text"], str):
        return "'body_text' must be a string"
    if kind == "body_base64":
        return _binary_problem(episode)
    if kind == "events":
        return _events_problem(episode["events"])
    return None


def _session_problem(events: Any) -> str | None:
    """A Realtime WebSocket session (status 101; realtime/tape.py): events both ways."""
    if not isinstance(events, list):
        return "'events' must be a list"
    for number, event in enumerate(events, 1):
        if not isinstance(event, dict) or "data" not in event or event.get("dir") not in ("client", "server"):
            return f"session event {number} must be an object with 'dir' (client or server) and 'data'"
        ms = event.get("ms", 0)
        if not isinstance(ms, (int, float)) or isinstance(ms, bool) or not ms >= 0:
            return f"session event {number}: 'ms' must be a number of milliseconds"
    return None


def _binary_problem(episode: Mapping[str, Any]) -> str | None:
    encoded = episode["body_base64"]
    if not isinstance(encoded, str):
        return "'body_base64' must be a string"
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return "'body_base64' is not base64"
    size, digest = episode.get("body_size"), episode.get("body_sha256")
    if size is not None and size != len(raw):
        return f"'body_size' says {size!r} but the answer has {len(raw)} bytes"[:120]
    if digest is not None and digest != hashlib.sha256(raw).hexdigest():
        return "'body_sha256' does not match the answer's bytes"
    return None


def _events_problem(events: Any) -> str | None:
    if not isinstance(events, list):
        return "'events' must be a list"
    for number, event in enumerate(events, 1):
        if not isinstance(event, dict) or "data" not in event:
            return f"event {number} must be an object with 'data'"
        ms, name, data = event.get("ms", 0), event.get("event"), event["data"]
        if not isinstance(ms, (int, float)) or isinstance(ms, bool) or not ms >= 0:
            return f"event {number}: 'ms' must be a number of milliseconds"
        if name is not None and (not isinstance(name, str) or "\n" in name or "\r" in name):
            return f"event {number}: 'event' must be one line of text"
        if isinstance(data, str) and ("\n" in data or "\r" in data):
            return f"event {number}: text 'data' must be one line (it is sent as one SSE data line)"
    return None


def served_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Stored headers a replay may send: framing headers are the server's to set, never a cassette's."""
    return {k: v for k, v in headers.items() if k.lower() not in FRAMING_HEADERS}


def file_name(key: str) -> str:
    return key[:KEY_PREFIX_LEN] + ".json"


def usable_file(path: Path | str, st: os.stat_result, max_bytes: int) -> None:
    """Refuse, from its ``stat`` alone, a path a cassette cannot be read from."""
    mode = st.st_mode
    if not stat.S_ISREG(mode):
        kind = (
            "a FIFO"
            if stat.S_ISFIFO(mode)
            else "a device"
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "a folder"
            if stat.S_ISDIR(mode)
            else "a socket"
            if stat.S_ISSOCK(mode)
            else "not a regular file"
        )
        raise NotAFile(f"{path}: is {kind}, not a regular file; refused without reading it")
    if st.st_size > max_bytes:
        raise CassetteError(f"{path}: is {st.st_size} bytes, over the cassette file limit of {max_bytes} bytes (--max-cassette-size)")


def read_bytes(path: Path | str, max_bytes: int = MAX_FILE_BYTES, st: os.stat_result | None = None) -> bytes:
    """The bytes of a cassette file, checked before it is opened and again once open.

    ``st`` is a ``stat`` the caller already made (the store's lookup). The open is
    non-blocking, so a FIFO swapped in between the two checks cannot hang the reader;
    ``fstat`` then refuses it. At most ``max_bytes`` are read, whatever the file claims.
    """
    usable_file(path, st if st is not None else os.stat(path), max_bytes)
    fd = os.open(path, _READ_FLAGS)
    try:
        opened = os.fstat(fd)
        usable_file(path, opened, max_bytes)
        chunks: list[bytes] = []
        size = 0
        want = opened.st_size + 1  # one read for a file that does not grow meanwhile
        while chunk := os.read(fd, want):
            size += len(chunk)
            if size > max_bytes:
                raise CassetteError(f"{path}: grew over the cassette file limit of {max_bytes} bytes while read (--max-cassette-size)")
            chunks.append(chunk)
            want = 65536
    finally:
        os.close(fd)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def read_recording(path: Path | str, max_bytes: int = MAX_FILE_BYTES, st: os.stat_result | None = None) -> Recording:
    raw = read_bytes(path, max_bytes, st)
    big = len(raw) >= PIECES_FROM_BYTES
    try:
        text = bigjson.decode_utf8(raw) if big else raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CassetteError(f"{path}: not UTF-8 ({exc.reason})") from exc
    del raw
    return parse_recording(text, str(path), big)


def parse_recording(text: str, source: str, big: bool | None = None) -> Recording:
    """A cassette file's text as a Recording (a file, or the team's copy in Redis);
    CassetteError naming ``source`` for broken JSON or a broken recording."""
    if big is None:
        big = len(text) >= PIECES_FROM_BYTES
    try:
        data = bigjson.loads(text) if big else json.loads(text)
    except json.JSONDecodeError as exc:
        raise CassetteError(f"{source}: broken JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    except RecursionError as exc:
        raise CassetteError(f"{source}: JSON nested too deeply") from exc
    return Recording.from_json(data, source)


def dismantle(value: Any) -> None:
    """Empty big lists a slice at a time before they are dropped.

    Freeing a 100,000-event stream in one go is ~100 ms of deallocation the
    interpreter cannot interrupt; emptying it in slices lets other threads (the event
    loop) run in between. Call it from a worker thread, on data nothing else uses.
    """
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(v for v in node.values() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            if len(node) <= bigjson.SLICE:
                stack.extend(v for v in node if isinstance(v, (dict, list)))
                continue
            while node:
                del node[-bigjson.SLICE :]
                bigjson.breathe()


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
            # A big text a megabyte at a time: encoding 50 MB is otherwise one long call.
            for start in range(0, len(text), WRITE_STEP):
                handle.write(text[start : start + WRITE_STEP])
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
