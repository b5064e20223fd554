"""teams.codec: a value from Redis is checked as a cassette file is (no Redis needed)."""

from __future__ import annotations

import zlib

import pytest

from seedtape.cassette import CassetteError
from seedtape.teams import codec


def test_a_value_that_inflates_past_the_file_limit_is_refused() -> None:
    bomb = zlib.compress(b"{" + b" " * (4 * 1024 * 1024) + b"}")
    with pytest.raises(CassetteError, match="inflates past the cassette file limit"):
        codec.decode(bomb, max_bytes=1024 * 1024)
    assert len(codec.decode(bomb)) > 4 * 1024 * 1024, "under the default limit it is a value like any other"


def test_a_value_nested_too_deeply_is_a_cassette_error_not_a_crash() -> None:
    deep = codec.encode("[" * 100_000 + "]" * 100_000)
    with pytest.raises(CassetteError, match="nested too deeply"):
        codec.load(deep, "team:default:abc")


def test_a_value_that_is_not_ours_is_a_cassette_error() -> None:
    with pytest.raises(CassetteError, match="not a compressed cassette"):
        codec.decode(b"plain bytes")
    with pytest.raises(CassetteError, match="broken JSON"):
        codec.load(codec.encode("{"), "team:default:abc")
