"""A recording as a Redis value, and how a local file and the team's copy merge.

The value is the cassette file's exact text (``Recording.dumps()``, or the file's bytes
as they are on disk), zlib-compressed. Exact text, so ``sync pull`` writes back the
very bytes a proxy wrote and a pull/push round trip is byte-identical; compressed,
because a pretty-printed chat completion shrinks about 3 times (the indentation
nearly free) and Redis memory is what a team pays for (README, Teams).

Only the documented file format is used (``Recording.to_json``/``from_json``), never
the inside of an episode.
"""

from __future__ import annotations

import zlib

from seedtape.cassette import MAX_FILE_BYTES, CassetteError, Recording, parse_recording

_LEVEL = 6  # ~20 us for a 2 KB file; level 9 gains 1-2 % more for twice the time


def encode(text: str) -> bytes:
    return zlib.compress(text.encode("utf-8"), _LEVEL)


def decode(raw: bytes, max_bytes: int = MAX_FILE_BYTES) -> str:
    """The file text; CassetteError for a value that is not one of ours, or that
    inflates past the cassette file limit (a file that big is refused on disk too)."""
    try:
        inflater = zlib.decompressobj()
        data = inflater.decompress(raw, max_bytes + 1)
        if len(data) > max_bytes or inflater.unconsumed_tail:
            raise CassetteError(f"shared store value inflates past the cassette file limit of {max_bytes} bytes")
        return data.decode("utf-8")
    except (zlib.error, UnicodeDecodeError) as exc:
        raise CassetteError(f"shared store value is not a compressed cassette ({type(exc).__name__})") from exc


def parse(text: str, source: str) -> Recording:
    """The recording a file's text holds (cassette.parse_recording: the same checks as a file)."""
    return parse_recording(text, source)


def load(raw: bytes, source: str) -> Recording:
    """A Redis value as a recording; CassetteError when it cannot be used."""
    return parse(decode(raw), source)


def merge(local: Recording | None, shared: Recording | None) -> Recording | None:
    """The local recording, plus the team's episodes past its end.

    The local file is the source of truth where both have an episode (a repository's
    cassette is never overwritten by the team's copy); episodes only the team has
    (recorded by other proxies) are added after it. A shared copy of another key
    (two keys sharing the first 16 hex digits) is ignored.
    """
    if local is None:
        return shared
    if shared is None or shared.key != local.key or len(shared.episodes) <= len(local.episodes):
        return local
    return Recording(key=local.key, request=local.request, episodes=[*local.episodes, *shared.episodes[len(local.episodes) :]])
