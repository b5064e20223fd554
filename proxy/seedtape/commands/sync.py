"""``seedtape sync pull|push``: between a namespace in the shared store and a cassette folder.

* **pull** writes the team's recordings as cassette files to commit. A file that does
  not exist is written with the exact text the store holds (the text a proxy wrote),
  so a pull/push/pull round trip is byte-identical. An existing file wins where both
  have an episode; only the team's episodes past its end are added (``codec.merge``).
* **push** publishes a repository's cassette files. A key the store lacks gets the
  file's exact text; a key it holds differently is rewritten under the key's fleet
  write lock (the one recording proxies take), keeping the team's episodes past the
  file's end, so a push never drops what another proxy recorded meanwhile.

Both are idempotent (a second run reports everything unchanged) and report counts.
Every file name and cassette name coming from Redis is checked before anything is
written: a store entry can never write outside the cassette folder.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seedtape.cassette import CassetteError, InvalidCassetteName, Recording, file_name, validate_name, write_atomic
from seedtape.coordination.filelocks import holding
from seedtape.store import CassetteStore
from seedtape.teams.url import check_namespace, check_store_url, masked

_BATCH = 500


class SyncError(Exception):
    """The store could not be reached or answered an error; the message names it (masked)."""


@dataclass
class SyncResult:
    direction: str
    store: str
    new: int = 0
    updated: int = 0
    merged: int = 0
    unchanged: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        skipped = f", {len(self.problems)} skipped" if self.problems else ""
        if self.direction == "pull":
            return f"pulled from {self.store}: {self.new} new file(s), {self.updated} updated, {self.unchanged} unchanged{skipped}"
        return (
            f"pushed to {self.store}: {self.new} new, {self.updated} updated, "
            f"{self.merged} merged with episodes only the store had, {self.unchanged} unchanged{skipped}"
        )


def run_sync(
    direction: str,
    url: str,
    namespace: str,
    root: Path,
    cassette: str | None,
    *,
    timeout: float = 5.0,
    store_ttl_days: float | None = None,
) -> SyncResult:
    """ValueError for bad arguments, SyncError when the store cannot be used."""
    if not url:
        raise ValueError("--store is required (or set SEEDTAPE_STORE)")
    check_store_url(url)
    check_namespace(namespace)
    if cassette is not None:
        try:
            validate_name(cassette)
        except InvalidCassetteName as exc:
            raise ValueError(str(exc)) from exc
    label = f"{masked(url)} namespace {namespace}"
    result = SyncResult(direction, label)
    ttl = int(store_ttl_days * 86400) if store_ttl_days else None
    asyncio.run(_run(direction, url, namespace, Path(root), cassette, timeout, ttl, result))
    return result


async def _run(
    direction: str, url: str, namespace: str, root: Path, cassette: str | None, timeout: float, ttl: int | None, result: SyncResult
) -> None:
    from redis.exceptions import RedisError

    from seedtape.teams.client import connect
    from seedtape.teams.health import StoreHealth
    from seedtape.teams.keys import Keys
    from seedtape.teams.locks import LOCK_TTL, FleetLocks

    client = connect(url, timeout)
    keys = Keys(namespace)
    health = StoreHealth(result.store, timeout, client.ping, consequence="sync stops")
    locks = FleetLocks(client, keys, health, wait_limit=LOCK_TTL * 3, max_hold=LOCK_TTL * 6)
    try:
        if direction == "pull":
            await _pull(client, keys, root, cassette, result)
        else:
            await _push(client, keys, locks, root, cassette, ttl, result)
    except (RedisError, OSError, TimeoutError) as exc:
        raise SyncError(f"{direction} stopped: the shared store {result.store} failed ({type(exc).__name__}: {exc})") from exc
    finally:
        await client.aclose()


def _batches(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), _BATCH):
        yield items[start : start + _BATCH]


# --------------------------------------------------------------------------- pull


async def _pull(client: Any, keys: Any, root: Path, cassette: str | None, result: SyncResult) -> None:
    names = sorted([name async for name in client.scan_iter(match=keys.recordings_pattern(cassette), count=_BATCH)])
    for batch in _batches(names):
        for name, raw in zip(batch, await client.mget(batch), strict=True):
            if raw is not None:  # None: expired since the scan
                _pull_one(keys, root, name.decode("utf-8", "replace"), raw, result)


def _pull_one(keys: Any, root: Path, name: str, raw: bytes, result: SyncResult) -> None:
    from seedtape.teams import codec

    parsed = keys.parse_recording(name)
    if parsed is None:
        result.problems.append(f"skipped {name}: not a recording key")
        return
    cassette, file = parsed
    try:
        validate_name(cassette)
        text = codec.decode(raw)
        shared = codec.parse(text, name)
    except (InvalidCassetteName, CassetteError) as exc:
        result.problems.append(f"skipped {name}: {exc}")
        return
    if file_name(shared.key) != file:
        result.problems.append(f"skipped {name}: it holds key {shared.key[:16]}..., not {file}")
        return
    path = root / cassette / file
    # A proxy may be writing this very file: read, merge and write under its key's lock.
    with holding(root, cassette, "write:" + shared.key):
        _merge_into(path, text, shared, result)


def _merge_into(path: Path, text: str, shared: Recording, result: SyncResult) -> None:
    from seedtape.teams import codec

    try:
        local_text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        write_atomic(path, text)
        result.new += 1
        return
    if local_text == text:
        result.unchanged += 1
        return
    try:
        local = codec.parse(local_text, str(path))
    except CassetteError as exc:
        result.problems.append(f"left {path} as it is: {exc}")
        return
    if local.key != shared.key:
        result.problems.append(f"left {path} as it is: it holds another key sharing the first 16 hex digits")
        return
    merged = codec.merge(local, shared)
    if merged is None or merged is local:
        result.unchanged += 1
    else:
        write_atomic(path, merged.dumps())
        result.updated += 1


# --------------------------------------------------------------------------- push


async def _push(client: Any, keys: Any, locks: Any, root: Path, cassette: str | None, ttl: int | None, result: SyncResult) -> None:
    files = list(_local_files(root, cassette, result))
    for batch in _batches(files):
        existing = await client.mget([keys.recording(c, rec.key) for c, rec, _ in batch])
        for (name_cassette, recording, text), raw in zip(batch, existing, strict=True):
            await _push_one(client, keys, locks, name_cassette, recording, text, raw, ttl, result)


def _local_files(root: Path, cassette: str | None, result: SyncResult) -> Iterator[tuple[str, Recording, str]]:
    store = CassetteStore(root, None)
    for name in [cassette] if cassette is not None else store.cassettes():
        for path, recording in store.recordings(name):
            if isinstance(recording, CassetteError):
                result.problems.append(f"skipped {path}: {recording}")
            elif path.name != file_name(recording.key):
                result.problems.append(
                    f"skipped {path}: it holds key {recording.key[:16]}..., so its name should be {file_name(recording.key)}"
                )
            else:
                yield name, recording, path.read_text(encoding="utf-8")


async def _push_one(
    client: Any,
    keys: Any,
    locks: Any,
    cassette: str,
    recording: Recording,
    text: str,
    raw: bytes | None,
    ttl: int | None,
    result: SyncResult,
) -> None:
    from seedtape.teams import codec

    name = keys.recording(cassette, recording.key)
    if raw is None and await client.set(name, codec.encode(text), nx=True, ex=ttl):
        result.new += 1
        return
    if raw is not None and _same_text(raw, text):
        result.unchanged += 1
        return
    async with locks.hold(cassette, "write:" + recording.key):  # the lock proxies take to write this key
        raw = await client.get(name)
        shared = None
        if raw is not None:
            try:
                shared = codec.load(raw, name)
            except CassetteError:
                shared = None  # not usable: the file replaces it
        merged = codec.merge(recording, shared)
        if raw is not None and _same_text(raw, text):
            result.unchanged += 1
            return
        if merged is None or merged is recording:
            await client.set(name, codec.encode(text), ex=ttl)
            result.updated += 1
        else:
            await client.set(name, codec.encode(merged.dumps()), ex=ttl)
            result.merged += 1


def _same_text(raw: bytes, text: str) -> bool:
    from seedtape.teams import codec

    try:
        return codec.decode(raw) == text
    except CassetteError:
        return False


# --------------------------------------------------------------------------- report --store


def read_team_drift(url: str, namespace: str, timeout: float) -> tuple[str, list[dict[str, Any]]]:
    """(where it came from, entries) of the namespace's drift log, for ``seedtape report --store``."""
    from redis.exceptions import RedisError

    from seedtape.teams import drift

    check_store_url(url)
    check_namespace(namespace)
    label = f"{masked(url)} namespace {namespace}"
    try:
        return label, drift.read_from(url, namespace, timeout)
    except (RedisError, OSError, TimeoutError) as exc:
        raise SyncError(f"cannot read the drift log from {label} ({type(exc).__name__}: {exc})") from exc
