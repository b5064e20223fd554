"""Store URLs and namespaces: checked at start-up, and printable without the password.

A Redis URL may carry a password (``redis://user:password@host:6379/0``); it must reach
redis-py and nothing else. Every log line, banner and stats answer uses :func:`masked`.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

SCHEMES = ("redis", "rediss")
PASSWORD_ENV = "SEEDTAPE_STORE_PASSWORD"  # a password kept out of the URL (and so out of `ps`)
_NAMESPACE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


def check_store_url(url: str) -> str:
    """The URL if it is one seedtape can use; ValueError (said without the password) if not."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise ValueError(f"--store {masked(url)!r} is not a URL: {exc}") from exc
    if parts.scheme not in SCHEMES or not parts.hostname:
        raise ValueError(f"--store {masked(url)!r}: expected redis://[user:password@]host:port/db or rediss://... (TLS)")
    return url


def check_namespace(name: str) -> str:
    """Namespaces are part of every key: plain names only, so no team can reach into another's."""
    if not _NAMESPACE.match(name):
        raise ValueError(f"--namespace {name[:70]!r}: use 1 to 64 letters, digits, '_', '.' or '-'")
    return name


def masked(url: str) -> str:
    """The URL with its password replaced by ``***`` (and nothing else changed)."""
    try:
        parts = urlsplit(url)
        if not parts.password:
            return url
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unparsable store URL>"
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return urlunsplit((parts.scheme, f"{user}:***@{host}{port}", parts.path, parts.query, parts.fragment))


def password_of(url: str) -> str:
    """The URL's password, to scrub it from error texts; empty when there is none."""
    try:
        return urlsplit(url).password or ""
    except ValueError:
        return ""
