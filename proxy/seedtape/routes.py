"""Which request paths are recorded, and what they are called in the key."""

from __future__ import annotations

import re
from dataclasses import dataclass

RECORDED_ROUTES = ("chat/completions", "embeddings", "completions")

_ROUTE = r"(?P<route>chat/completions|embeddings|completions)/?"
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("azure", re.compile(r"^/+openai/deployments/(?P<deployment>[^/]+)/" + _ROUTE + "$")),
    ("azure-v1", re.compile(r"^/+openai/v1/" + _ROUTE + "$")),
    ("openai", re.compile(r"^/+v1/" + _ROUTE + "$")),
)


@dataclass(frozen=True, slots=True)
class Target:
    """A recorded endpoint: the API shape, the route, and Azure's deployment/api-version."""

    api: str
    route: str
    deployment: str = ""
    api_version: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"api": self.api, "route": self.route, "deployment": self.deployment, "api_version": self.api_version}

    def path(self) -> str:
        """The canonical request path for this target (used by import and probe)."""
        if self.api == "azure":
            return f"/openai/deployments/{self.deployment}/{self.route}"
        if self.api == "azure-v1":
            return f"/openai/v1/{self.route}"
        return f"/v1/{self.route}"


def match_route(method: str, path: str, api_version: str = "") -> Target | None:
    """The recorded target for a request, or None for anything forwarded untouched."""
    if method != "POST":
        return None
    for api, pattern in _PATTERNS:
        found = pattern.match(path)
        if found:
            groups = found.groupdict()
            return Target(api, groups["route"], groups.get("deployment") or "", api_version)
    return None
