"""Cassette names and session ids for tests, as the pytest plugin gives them.

A test's default cassette is ``<module>/<test>`` (``<module>/<Class>.<test>`` in a
class), like pytest-recording. Parametrize ids can hold any character, but cassette
names allow only ``[A-Za-z0-9_.-[]=+@,]`` in plain segments, so everything else
becomes ``_``; a very long id keeps a readable head and a hash of the whole, so two
long ids never share a cassette.
"""

from __future__ import annotations

import hashlib
import re

from seedtape import validate_cassette_name

_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9_.\-\[\]=+@,]")
MAX_SEGMENT = 90  # two segments and a slash stay under the name limit of 200


def sanitize_segment(text: str) -> str:
    """One cassette-name segment from any text (a module name, a test id)."""
    segment = _NOT_ALLOWED.sub("_", text)
    if segment in ("", ".", ".."):
        segment = segment.replace(".", "_") or "_"
    if len(segment) > MAX_SEGMENT:
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
        segment = segment[: MAX_SEGMENT - 13] + "-" + digest
    return segment


def default_cassette(module: str, test: str, cls: str | None = None) -> str:
    """The default cassette of a test: ``<module>/<test>`` or ``<module>/<Class>.<test>``."""
    name = f"{cls}.{test}" if cls else test
    return validate_cassette_name(f"{sanitize_segment(module)}/{sanitize_segment(name)}")


def session_id(nodeid: str) -> str:
    """The ``x-seedtape-session`` of one test: a hash of its node id.

    A hash (not the id itself) because node ids hold characters that do not belong
    in a header, and stable so a rerun of the same test is the same session.
    """
    return "pytest-" + hashlib.sha256(nodeid.encode("utf-8")).hexdigest()[:16]
