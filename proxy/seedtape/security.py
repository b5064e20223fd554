"""Who may talk to the proxy: loopback by default, a token when it listens wider.

A seedtape proxy forwards the caller's own credential, so anyone who can reach it
can spend through it only with a key of their own -- but in ``auto`` and ``replay``
modes it also serves recordings, which may hold private prompts and answers, to
anyone who asks. Hence: it binds 127.0.0.1 unless told otherwise, and it refuses a
non-loopback address unless clients must present a token (``--auth-token``), or the
user says in so many words that they accept an open proxy (``--insecure``).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from seedtape.errors import error_response

TOKEN_HEADER = "x-seedtape-token"
# Readiness probes need no token; the answer holds no recording and no setting worth hiding.
OPEN_PATHS = frozenset({"/_seedtape/health"})

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def token_digest(token: str) -> str:
    """What settings keep instead of the token (and what a presented token is hashed to)."""
    return hashlib.sha256(("seedtape-token/1\0" + token).encode("utf-8", "surrogatepass")).hexdigest()


def token_matches(presented: str | None, expected_sha256: str) -> bool:
    """Constant-time check; hashing first makes the time independent of length too."""
    if presented is None:
        return False
    return hmac.compare_digest(token_digest(presented), expected_sha256)


def is_loopback(host: str) -> bool:
    """Does listening on ``host`` keep the proxy reachable from this machine only?

    ``0.0.0.0`` and ``::`` (every interface) are not loopback. A host name counts as
    loopback only if every address it resolves to is; one that does not resolve is
    treated as not loopback, so the safe answer is the default.
    """
    name = host.strip().strip("[]")
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(name, None)
    except OSError:
        return False
    addresses = {str(info[4][0]) for info in infos}
    return bool(addresses) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses)


def bind_refusal(host: str, token_set: bool, insecure: bool) -> str | None:
    """Why ``seedtape serve`` must not listen on ``host``, or None when it may."""
    if token_set or insecure or is_loopback(host):
        return None
    return (
        f"refusing to listen on {host}: that address is reachable from other machines, and anyone reaching the proxy "
        f"can read its recordings. Give --auth-token (clients then send {TOKEN_HEADER}), or --insecure if the network "
        "is yours alone."
    )


class TokenGuard:
    """ASGI middleware: every request but ``OPEN_PATHS`` must carry the token.

    Answered with an OpenAI-shaped 401 (the SDK raises ``AuthenticationError`` and does
    not retry). The header itself never travels further: like every ``x-seedtape-*``
    header it is stripped before anything is forwarded upstream.
    """

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], expected_sha256: str) -> None:
        self.app = app
        self.expected = expected_sha256

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        presented = None
        for name, value in scope.get("headers", []):
            if name.lower() == TOKEN_HEADER.encode():
                presented = value.decode("latin-1")
                break
        if token_matches(presented, self.expected):
            await self.app(scope, receive, send)
            return
        reason = "missing" if presented is None else "wrong"
        response = error_response(
            401,
            f"seedtape proxy token {reason}: send the token given to seedtape serve --auth-token in the {TOKEN_HEADER} header",
            "seedtape_unauthorized",
            "invalid_seedtape_token",
        )
        await response(scope, receive, send)
