"""Read-through and write-through of recordings between the cassette folder and Redis.

* **read**: after a local miss (no file, or a file without the episode asked for) the
  team's copy is fetched, merged after the local episodes (``codec.merge``) and
  prepared for replay. The prepared copy is remembered with the exact bytes it came
  from, so a repeated hit costs one GET and a bytes comparison, no parsing.
* **write**: under the key's fleet write lock, the team's episodes are first merged
  into the local file (so episode n written here lands after the n-1 the fleet
  already has), the engine saves as usual, and the file's new text is published.
  A publish Redis could not take is remembered (bounded) and retried when it is back.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import anyio
from redis.asyncio import Redis

from seedtape.cassette import CassetteError, Recording, read_recording, write_recording
from seedtape.prepared import Prepared, prepare
from seedtape.teams import codec
from seedtape.teams.health import StoreHealth, StoreUnavailable
from seedtape.teams.keys import Keys

log = logging.getLogger("seedtape")
_MEMO_SIZE = 4096
PENDING_MAX = 10_000


class SharedRecordings:
    def __init__(self, client: Redis, keys: Keys, health: StoreHealth, ttl_seconds: int | None) -> None:
        self.client = client
        self.keys = keys
        self.health = health
        self.ttl = ttl_seconds
        self._memo: OrderedDict[tuple[str, str], tuple[bytes, Prepared | None, Prepared]] = OrderedDict()
        self.pending: OrderedDict[tuple[str, str], Path] = OrderedDict()
        self.dropped = 0
        self.hits = self.writes = 0

    async def fetch(self, cassette: str, key: str) -> bytes | None:
        """The raw value (reading it restarts its expiry when ``--store-ttl`` is set)."""
        name = self.keys.recording(cassette, key)
        ttl = self.ttl

        async def get() -> bytes | None:
            value = await (self.client.getex(name, ex=ttl) if ttl else self.client.get(name))
            return value if isinstance(value, bytes) else None

        return await self.health.call(get)

    async def lookup(self, cassette: str, key: str, local: Prepared | None, read_local: Callable[[], Recording | None]) -> Prepared | None:
        """The local recording completed by the team's episodes; ``local`` when the team adds none.

        ``read_local`` parses the local file (the index keeps only prepared bytes): it
        is called, in a worker thread, only when the team has a copy to merge with.
        Raises StoreUnavailable when Redis cannot be asked.
        """
        raw = await self.fetch(cassette, key)
        if raw is None:
            return local
        slot = (cassette, key)
        memo = self._memo.get(slot)
        if memo is not None and memo[0] == raw and memo[1] is local:
            self._memo.move_to_end(slot)
            self.hits += 1
            return memo[2]
        try:
            shared = codec.load(raw, self.keys.recording(cassette, key))
        except CassetteError as exc:
            log.warning("seedtape: ignoring a shared recording that cannot be used: %s", exc)
            return local
        local_recording = await anyio.to_thread.run_sync(read_local) if local is not None else None
        merged = codec.merge(local_recording, shared)
        if merged is None or merged.key != key or (local_recording is not None and merged is local_recording):
            return local
        prepared = prepare(merged)
        self._memo[slot] = (raw, local, prepared)
        if len(self._memo) > _MEMO_SIZE:
            self._memo.popitem(last=False)
        self.hits += 1
        return prepared

    async def recording(self, cassette: str, key: str) -> Recording | None:
        """The team's copy of a key, parsed; None when it has none (or cannot be asked)."""
        try:
            raw = await self.fetch(cassette, key)
        except StoreUnavailable:
            return None
        if raw is None:
            return None
        try:
            return codec.load(raw, self.keys.recording(cassette, key))
        except CassetteError:
            return None

    async def merge_into_file(self, path: Path, cassette: str, key: str) -> None:
        """Before a save: add the team's episodes past the local file's end to the file."""
        raw = await self.fetch(cassette, key)
        if raw is None:
            return
        try:
            shared = codec.load(raw, self.keys.recording(cassette, key))
            local = read_recording(path) if path.exists() else None
        except CassetteError:
            return  # a broken local file is the store's to set aside; a broken shared one is ignored
        merged = codec.merge(local, shared)
        if merged is not None and merged is not local and merged.key == key:
            write_recording(path, merged, durable=False)  # the save right after decides durability

    async def publish(self, path: Path, cassette: str, key: str, *, merge: bool = False) -> None:
        """After a save: the file's text becomes the team's copy; kept for later if Redis is away.

        ``merge``: keep the team's episodes past the file's end (a recording made while
        Redis was away is published after others may have recorded the same key).
        """
        try:
            text = path.read_text(encoding="utf-8")
            if merge:
                text = await self._merged_text(text, cassette, key)
        except (FileNotFoundError, UnicodeDecodeError, CassetteError):
            return
        except StoreUnavailable:
            self._keep_pending(cassette, key, path)
            return
        value = codec.encode(text)
        name = self.keys.recording(cassette, key)
        try:
            await self.health.call(lambda: self.client.set(name, value, ex=self.ttl))
        except StoreUnavailable:
            self._keep_pending(cassette, key, path)
            return
        self.writes += 1
        self.pending.pop((cassette, key), None)

    async def _merged_text(self, text: str, cassette: str, key: str) -> str:
        raw = await self.fetch(cassette, key)
        if raw is None:
            return text
        try:
            shared = codec.load(raw, self.keys.recording(cassette, key))
        except CassetteError:
            return text
        local = codec.parse(text, str(cassette))
        merged = codec.merge(local, shared)
        return text if merged is None or merged is local else merged.dumps()

    def _keep_pending(self, cassette: str, key: str, path: Path) -> None:
        self.pending[(cassette, key)] = path
        self.pending.move_to_end((cassette, key))
        if len(self.pending) > PENDING_MAX:
            self.pending.popitem(last=False)
            self.dropped += 1  # still in the cassette folder: `seedtape sync push` publishes it

    def take_pending(self) -> list[tuple[str, str, Path]]:
        items = [(cassette, key, path) for (cassette, key), path in self.pending.items()]
        self.pending.clear()
        return items
