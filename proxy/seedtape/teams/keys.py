"""Every Redis key seedtape uses, all under ``seedtape:<namespace>:``.

The namespace is the first thing after the prefix, so one namespace's keys never
match another's (and a Redis ACL can grant a team ``~seedtape:<team>:*`` only). A
recording's key ends with the path of its cassette file (``<cassette>/<16 hex>.json``),
so ``redis-cli --scan`` reads like the cassette folder and ``sync`` maps one onto the other.
Keys built from what a client sends (session ids) are hashed: fixed length, no separators.
"""

from __future__ import annotations

import hashlib
import re

from seedtape.cassette import KEY_PREFIX_LEN, file_name

PREFIX = "seedtape"
_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")
_FILE = re.compile(rf"^[0-9a-f]{{{KEY_PREFIX_LEN}}}\.json$")


class Keys:
    """Key names of one namespace."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.prefix = f"{PREFIX}:{namespace}:"
        self.recordings_prefix = self.prefix + "rec:"
        self.stats = self.prefix + "stats"
        self.proxies = self.prefix + "proxies"
        self.drift = self.prefix + "drift"

    def recording(self, cassette: str, key: str) -> str:
        return f"{self.recordings_prefix}{cassette}/{file_name(key)}"

    def recordings_pattern(self, cassette: str | None = None) -> str:
        """A SCAN MATCH pattern for every recording, or one cassette's (``[`` ``]`` escaped)."""
        if cassette is None:
            return self.recordings_prefix + "*"
        return self.recordings_prefix + _GLOB_SPECIAL.sub(r"\\\1", cassette) + "/*"

    def parse_recording(self, name: str) -> tuple[str, str] | None:
        """(cassette, file name) of a recording key, or None if it is not one of ours."""
        if not name.startswith(self.recordings_prefix):
            return None
        cassette, _, file = name[len(self.recordings_prefix) :].rpartition("/")
        if not cassette or not _FILE.match(file):
            return None
        return cassette, file

    def occurrences(self, session: str, cassette: str, key: str) -> str:
        return self.prefix + "occ:" + _digest(session, cassette, key)

    def claims(self, session: str, cassette: str, key: str) -> str:
        return self.prefix + "claim:" + _digest(session, cassette, key)

    def lock(self, cassette: str, key: str) -> str:
        # ``key`` is a recording key or "write:" + one; cassette names are plain segments.
        return f"{self.prefix}lock:{cassette}:{key}"


def _digest(*parts: str) -> str:
    return hashlib.blake2b("\0".join(parts).encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
