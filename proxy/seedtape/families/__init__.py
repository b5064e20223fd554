"""API families: one file per OpenAI API, one registry (here).

Adding an API is one file implementing ``base.Family`` and one line in ``FAMILIES``.
``routes.py`` matches a request path against these families' endpoints after taking
off the URL shape (OpenAI ``/v1/``, Azure ``/openai/deployments/{d}/``, ``/openai/v1/``,
``/openai/``); anything no family owns is forwarded untouched.
"""

from __future__ import annotations

from seedtape.families.base import Determinism, Endpoint, Family, StreamEnd
from seedtape.families.chat import Chat
from seedtape.families.completions import Completions
from seedtape.families.embeddings import Embeddings
from seedtape.families.images import Images
from seedtape.families.moderations import Moderations
from seedtape.families.responses import Responses
from seedtape.families.speech import Speech
from seedtape.families.transcriptions import Transcriptions

FAMILIES: tuple[Family, ...] = (
    Chat(),
    Completions(),
    Embeddings(),
    Moderations(),
    Responses(),
    Transcriptions(),
    Speech(),
    Images(),
)
_BY_ROUTE: dict[str, tuple[Family, Endpoint]] = {ep.route: (family, ep) for family in FAMILIES for ep in family.endpoints}
CHAT = FAMILIES[0]
# Routes without an id are looked up in one dict: the replay hot path pays no regex.
_STATIC: dict[tuple[str, str], tuple[Family, Endpoint]] = {
    (ep.method, ep.route): (family, ep) for family in FAMILIES for ep in family.endpoints if "{" not in ep.route
}

__all__ = ["FAMILIES", "Determinism", "Endpoint", "Family", "StreamEnd", "family_of", "match_endpoint"]


def family_of(route: str) -> Family:
    """The family a recorded route belongs to (chat for a route no family knows)."""
    found = _BY_ROUTE.get(route)
    return found[0] if found else CHAT


def match_endpoint(method: str, subpath: str) -> tuple[Family, Endpoint, dict[str, str]] | None:
    """The family endpoint owning ``method subpath`` (the path after the URL shape)."""
    static = _STATIC.get((method, subpath))
    if static is not None:
        return static[0], static[1], {}
    for family in FAMILIES:
        for ep in family.endpoints:
            if ep.method == method:
                found = ep.pattern.fullmatch(subpath)
                if found:
                    return family, ep, found.groupdict()
    return None
