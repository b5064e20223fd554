"""Which headers travel where, and which are never written down.

Credentials and session identifiers go upstream (the service needs them) and back to
the client, but never into a cassette, the cache, a log or a report. The deny list is
fixed; a user's ``--keep-header`` adds to the allow list and can never bring a
credential back.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from typing import Any

# Never stored, whatever the user allows.
CREDENTIAL_HEADERS = frozenset(
    {"api-key", "authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "ocp-apim-subscription-key"}
)
# Not stored unless the user allow-lists them (they identify an account or a request).
IDENTIFYING_HEADERS = frozenset(
    {"openai-organization", "openai-project", "x-request-id", "apim-request-id", "x-ms-client-request-id", "request-id"}
)
# Stored by default: what a replay needs to look like the original answer.
DEFAULT_STORED_HEADERS = frozenset({"content-type", "retry-after", "openai-version", "openai-processing-ms", "x-ms-region"})

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "accept-encoding",
    }
)
_HOP_BUT_ENCODING = HOP_BY_HOP - {"accept-encoding"}
# How the body is framed on the wire: the server sending a replay sets these itself.
# A cassette never stores them (not even with --keep-header, which refuses them) and a
# replay never sends one found in a hand-edited file: a stored content-length that
# does not match the body breaks the connection of every client that replays it.
FRAMING_HEADERS = frozenset(
    {"content-length", "transfer-encoding", "content-encoding", "connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"}
)
# RFC 9110 field names (a token) and values (visible ASCII, spaces, tabs, obs-text).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")
SEEDTAPE_PREFIX = "x-seedtape-"
# What recorded routes ask upstream for: httpx decodes gzip and deflate with the
# standard library and br with the ``brotli`` package (a dependency for this reason);
# bodies are stored decoded, so only encodings httpx decodes may be offered.
DECODABLE_ENCODINGS = "gzip, deflate, br"


def upstream_request_headers(headers: Iterable[tuple[str, str]], keep_encoding: bool = False) -> list[tuple[str, str]]:
    """Client headers to forward: all but hop-by-hop and our own ``x-seedtape-*``.

    On recorded routes the client's ``accept-encoding`` is replaced by the encodings
    httpx always decodes itself; bodies are then stored decoded. Untouched forwards keep
    it and pass the encoded bytes through as they are.
    """
    dropped = _HOP_BUT_ENCODING if keep_encoding else HOP_BY_HOP
    kept = [(k, v) for k, v in headers if k.lower() not in dropped and not k.lower().startswith(SEEDTAPE_PREFIX)]
    if not keep_encoding:
        kept.append(("accept-encoding", DECODABLE_ENCODINGS))
    return kept


# The server seedtape runs under (uvicorn) adds its own; passing the upstream's on too
# gave the client two of each.
SERVER_SET = frozenset({"date", "server"})
_NOT_TO_CLIENT = HOP_BY_HOP | SERVER_SET
_NOT_TO_CLIENT_DECODED = _NOT_TO_CLIENT | {"content-encoding"}


def client_response_headers(headers: Iterable[tuple[str, str]], decoded: bool = True) -> list[tuple[str, str]]:
    """Upstream headers to pass to the client; a decoded body loses its content-encoding."""
    dropped = _NOT_TO_CLIENT_DECODED if decoded else _NOT_TO_CLIENT
    return [(k, v) for k, v in headers if k.lower() not in dropped]


def stored_response_headers(headers: Mapping[str, str], keep: Iterable[str] = ()) -> dict[str, str]:
    allowed = (DEFAULT_STORED_HEADERS | {h.lower() for h in keep}) - CREDENTIAL_HEADERS - FRAMING_HEADERS
    return {k.lower(): v for k, v in headers.items() if k.lower() in allowed and header_problem(k, v) is None}


def header_problem(name: Any, value: Any) -> str | None:
    """Why a stored header cannot be sent on HTTP/1.1, or None when it can."""
    if not isinstance(name, str) or not _TOKEN.fullmatch(name):
        return f"header name {str(name)[:40]!r} is not a valid HTTP header name"
    if not isinstance(value, str) or not _FIELD_VALUE.fullmatch(value):
        return f"header {name[:40]!r} has a value that is not valid in HTTP (a line break, a control character, or not text)"
    return None


def keep_header_problem(name: str) -> str | None:
    """Why ``--keep-header NAME`` is refused, or None."""
    lowered = name.strip().lower()
    if not _TOKEN.fullmatch(lowered):
        return f"--keep-header {name[:40]!r} is not a valid HTTP header name"
    if lowered in FRAMING_HEADERS:
        return (
            f"--keep-header {lowered} is refused: it frames the body on the wire, and the server sending a replay "
            "sets it itself (a stored one breaks every replay)"
        )
    return None


def credential_of(headers: Mapping[str, str]) -> str:
    """The caller's credential (for partitioning by a salted hash of it), or ''."""
    for name in ("api-key", "authorization", "x-api-key"):
        value = headers.get(name)
        if value:
            return value
    return ""


def partition_for(credential: str) -> str:
    """``--partition-by-credential``'s part of a key: a salted hash of the credential,
    never the credential itself (HTTP and Realtime alike)."""
    return hashlib.sha256(("seedtape-partition/1\0" + credential).encode()).hexdigest()[:32] if credential else "anonymous"
