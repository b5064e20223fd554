"""The Realtime paths, and what a session's handshake contributes to its key.

``/v1/realtime?model=M`` (OpenAI), ``/openai/realtime?api-version=V&deployment=D``
(Azure) and ``/openai/v1/realtime?model=M`` (Azure v1). The key's envelope is the
HTTP one (``api``, ``route: "realtime"``, ``deployment``, ``api_version``); the rest
of the query (``model``, ``intent``, ``call_id``...) goes in the body, never a
credential: Azure accepts ``api-key`` in the query for browsers, so credential
parameters are forwarded upstream and left out of everything stored.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from seedtape.key import KEY_VERSION, canonical, canonical_json

ROUTE = "realtime"
REALTIME_PATHS = {"/v1/realtime": "openai", "/openai/realtime": "azure", "/openai/v1/realtime": "azure-v1"}
# Query parameters that carry a credential (forwarded, never stored, never in a key).
CREDENTIAL_PARAMS = frozenset({"api-key", "api_key", "key", "access_token", "token", "authorization", "sig", "signature"})


def realtime_api(path: str) -> str | None:
    """``openai``, ``azure`` or ``azure-v1`` for a Realtime path, else None."""
    return REALTIME_PATHS.get("/" + path.strip("/"))


@dataclass(frozen=True, slots=True)
class Handshake:
    """One WebSocket handshake on a Realtime path: where, and the stored query."""

    api: str
    path: str
    query: str  # as sent: forwarded upstream as it is (it may hold a credential)
    deployment: str = ""
    api_version: str = ""
    params: dict[str, str] = field(default_factory=dict)  # stored: no credential, no api-version/deployment

    @classmethod
    def parse(cls, api: str, path: str, query: str) -> Handshake:
        pairs = dict(parse_qsl(query, keep_blank_values=True))
        params = {k: v for k, v in pairs.items() if k.lower() not in CREDENTIAL_PARAMS and k not in ("api-version", "deployment")}
        return cls(api, path, query, pairs.get("deployment", ""), pairs.get("api-version", ""), dict(sorted(params.items())))

    @property
    def model(self) -> str:
        return self.params.get("model") or self.deployment

    def body(self, first_event: dict[str, Any] | None) -> dict[str, Any]:
        """The key's body: the stored query and the session's first client event."""
        body: dict[str, Any] = {"query": self.params}
        if first_event is not None:
            body["first_event"] = first_event
        return body

    def stored_request(self, first_event: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "api": self.api,
            "route": ROUTE,
            "deployment": self.deployment,
            "api_version": self.api_version,
            "body": self.body(first_event),
        }

    def key(self, first_event: dict[str, Any] | None, partition: str = "") -> str:
        """Key v1: the HTTP envelope with route ``realtime`` (see README "Realtime")."""
        material: dict[str, Any] = {"v": KEY_VERSION, **self.stored_request(first_event)}
        material["body"] = canonical(material["body"])
        if partition:
            material["partition"] = partition
        return hashlib.sha256(canonical_json(material).encode("utf-8")).hexdigest()

    def identity(self) -> tuple[str, str, str, tuple[tuple[str, str], ...]]:
        """What two handshakes share when they open the same kind of session."""
        return (self.api, self.deployment, self.api_version, tuple(self.params.items()))


def identity_of(request: dict[str, Any]) -> tuple[str, str, str, tuple[tuple[str, str], ...]] | None:
    """The handshake identity of a stored request, or None if it is not a Realtime one."""
    if request.get("route") != ROUTE:
        return None
    body = request.get("body")
    query = body.get("query") if isinstance(body, dict) else None
    if not isinstance(query, dict):
        query = {}
    params = tuple(sorted((str(k), str(v)) for k, v in query.items()))
    return (str(request.get("api", "")), str(request.get("deployment", "")), str(request.get("api_version", "")), params)
