"""Which requests are recorded: a URL shape, then the registry of API families.

Every recorded path is one of four shapes followed by a family's endpoint path:

==========  ================================================  =====================
api         prefix                                            example
==========  ================================================  =====================
openai      ``/v1/``                                          ``/v1/responses``
azure       ``/openai/deployments/{deployment}/``             ``.../chat/completions?api-version=V``
azure-v1    ``/openai/v1/``                                   ``/openai/v1/responses``
azure       ``/openai/`` (no deployment: Responses, moderations)  ``/openai/responses?api-version=V``
==========  ================================================  =====================

Anything else, and any path no family owns (``/v1/files``, ``/v1/models``), is not
recorded: it is forwarded untouched and counted as bypassed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from seedtape.families import Endpoint, Family, match_endpoint

_SHAPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("azure", re.compile(r"/+openai/deployments/(?P<deployment>[^/]+)/+(?P<sub>.+)")),
    ("azure-v1", re.compile(r"/+openai/v1/+(?P<sub>.+)")),
    ("azure", re.compile(r"/+openai/+(?P<sub>.+)")),
    ("openai", re.compile(r"/+v1/+(?P<sub>.+)")),
)


@dataclass(frozen=True, slots=True)
class Target:
    """Where a recorded request went: the API shape, the route, Azure's deployment and
    api-version. These four fields and the body make the key (key.py)."""

    api: str
    route: str
    deployment: str = ""
    api_version: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"api": self.api, "route": self.route, "deployment": self.deployment, "api_version": self.api_version}

    def path(self, subpath: str = "") -> str:
        """The request path for this target (import and probe rebuild requests from it).

        ``subpath`` replaces the route for object routes (``responses/resp_1``).
        """
        rest = subpath or self.route
        if self.api == "azure":
            return f"/openai/deployments/{self.deployment}/{rest}" if self.deployment else f"/openai/{rest}"
        if self.api == "azure-v1":
            return f"/openai/v1/{rest}"
        return f"/v1/{rest}"


@dataclass(frozen=True, slots=True)
class Match:
    """A recorded request: its target, the family and endpoint that own it, and the
    path after the URL shape (which names the object for ``responses/{id}`` routes)."""

    target: Target
    family: Family
    endpoint: Endpoint
    subpath: str


# The same few paths arrive again and again: their match is remembered (bounded; object
# routes carry ids, so the table is cleared whole when full). ~2 us of a ~20 us replay.
_MEMO_SIZE = 4096
_memo: dict[tuple[str, str, str], Match | None] = {}


def match_route(method: str, path: str, api_version: str = "") -> Match | None:
    """The recorded route of a request, or None for anything forwarded untouched."""
    slot = (method, path, api_version)
    try:
        return _memo[slot]
    except KeyError:
        pass
    found = _match(method, path, api_version)
    if len(_memo) >= _MEMO_SIZE:
        _memo.clear()
    _memo[slot] = found
    return found


def _match(method: str, path: str, api_version: str) -> Match | None:
    for api, shape in _SHAPES:
        found = shape.fullmatch(path)
        if found is None:
            continue
        subpath = found["sub"].rstrip("/")
        owned = match_endpoint(method, subpath)
        if owned is None:
            return None
        family, endpoint, _ = owned
        deployment = found.groupdict().get("deployment") or ""
        return Match(Target(api, endpoint.route, deployment, api_version), family, endpoint, subpath)
    return None
