"""One recorded-route request, parsed and checked once, with everything modes need.

How the body is read depends on the endpoint's family (families/base.py): JSON is
parsed and canonicalised; a multipart form becomes its fields plus a SHA-256 per
file (form.py); a request about an object by id has no body, so its method, path
and query stand in for one.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request

from seedtape.cassette import InvalidCassetteName, validate_name
from seedtape.config import Settings
from seedtape.errors import ProxyError
from seedtape.families import Determinism, Endpoint, Family
from seedtape.families.base import JSON, MULTIPART
from seedtape.form import read_form
from seedtape.headers import credential_of, partition_for, upstream_request_headers
from seedtape.key import KeyMaterial, canonical_body
from seedtape.routes import Match, Target

CASSETTE_HEADER = "x-seedtape-cassette"
SESSION_HEADER = "x-seedtape-session"
MAX_SESSION_LEN = 200
# Deeper than any real request (tool schemas and structured outputs stop near 10
# levels), shallow enough that every recursive walk after parsing (the key's
# canonical form, the pretty cassette writer, verify's deep copies) stays far from
# Python's recursion limit.
MAX_DEPTH = 128


@dataclass(slots=True)
class Exchange:
    target: Target
    path: str  # as the client sent it (percent-escapes kept): what is forwarded upstream
    query: str
    body: dict[str, Any]
    raw: bytes
    # The client's headers as received; what goes upstream is worked out from them
    # only when the request is forwarded (``forward_headers``), never on a replay hit.
    client_headers: Mapping[str, str]
    mode: str
    cassette: str
    session: str
    key: str
    family: Family
    endpoint: Endpoint
    method: str = "POST"
    # The request asked for a stream (the family says how: "stream": true, a form
    # field, ?stream=true on a retrieve).
    stream: bool = False
    occurrence: int = 0
    # The mode never calls upstream (replay): a recording it cannot serve is an error.
    offline: bool = False

    @property
    def forward_headers(self) -> list[tuple[str, str]]:
        """The client's headers to forward upstream (headers.upstream_request_headers)."""
        return upstream_request_headers(self.client_headers.items())

    @property
    def deterministic(self) -> bool:
        """Did the caller ask for the same answer every time (its family's rule)?"""
        return self.family.deterministic(self.endpoint, self.body)

    @property
    def determinism(self) -> Determinism:
        """The same rule with its reason, for the drift log and reports."""
        return self.family.determinism(self.endpoint, self.body)

    def stored_request(self) -> dict[str, Any]:
        """The request as written to the cassette: what, never who (no headers)."""
        return {**self.target.as_dict(), "body": self.body}


async def read_body(request: Request, limit: int) -> bytes:
    """Read at most ``limit`` bytes; refuse early on a declared length over it."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ProxyError(
            413, f"request body of {declared} bytes is over the limit of {limit} bytes", "invalid_request_error", "body_too_large"
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ProxyError(413, f"request body is over the limit of {limit} bytes", "invalid_request_error", "body_too_large")
        chunks.append(chunk)
    return b"".join(chunks)


def check_content_type(request: Request) -> None:
    """A recorded route's body is JSON; say so clearly when a client labels it otherwise.

    No content-type at all is accepted (a hand-written ``curl`` or a minimal client);
    a declared one must be JSON (``application/json``, ``…+json``) in UTF-8.
    """
    declared = request.headers.get("content-type")
    if declared is None or not declared.strip():
        return
    media, _, params = declared.partition(";")
    media = media.strip().lower()
    if media != "application/json" and not (media.startswith("application/") and media.endswith("+json")):
        raise ProxyError(
            415,
            f"content-type {declared[:60]!r} is not JSON; send the request body as content-type: application/json",
            "invalid_request_error",
            "unsupported_media_type",
        )
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise ProxyError(
                415, f"charset {value.strip()[:20]!r} is not supported; send UTF-8 JSON", "invalid_request_error", "unsupported_media_type"
            )


def parse_body(raw: bytes) -> dict[str, Any]:
    if not raw:
        raise ProxyError(400, "request body is empty; expected a JSON object", "invalid_request_error", "invalid_json")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProxyError(400, f"request body is not UTF-8 (byte {exc.start})", "invalid_request_error", "invalid_json") from exc
    try:
        body = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise ProxyError(
            400,
            f"request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            "invalid_request_error",
            "invalid_json",
        ) from exc
    except RecursionError as exc:
        raise ProxyError(400, f"request body is nested more than {MAX_DEPTH} levels deep", "invalid_request_error", "invalid_json") from exc
    except ValueError as exc:  # e.g. an integer literal over Python's 4300-digit limit
        raise ProxyError(400, f"request body is not valid JSON: {str(exc)[:120]}", "invalid_request_error", "invalid_json") from exc
    if not isinstance(body, dict):
        raise ProxyError(400, f"request body must be a JSON object, not {type(body).__name__}", "invalid_request_error", "invalid_json")
    # Counting brackets is C-fast; a body with fewer than the limit cannot be too deep,
    # so only an unusual one pays for the walk.
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and nesting_exceeds(body, MAX_DEPTH):
        raise ProxyError(400, f"request body is nested more than {MAX_DEPTH} levels deep", "invalid_request_error", "invalid_json")
    return body


def nesting_exceeds(value: Any, limit: int) -> bool:
    """Is any container in ``value`` more than ``limit`` levels deep? (No recursion.)"""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(node, dict):
            stack.extend((child, depth + 1) for child in node.values() if isinstance(child, (dict, list)))
        elif isinstance(node, list):
            stack.extend((child, depth + 1) for child in node if isinstance(child, (dict, list)))
    return False


def _refuse_constant(name: str) -> Any:
    raise ProxyError(400, f"request body contains {name}, which is not valid JSON", "invalid_request_error", "invalid_json")


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)  # json.loads(..., parse_constant=) builds one per call

# Replays repeat byte-identical requests: the parsed body and key of a raw body are
# remembered (same bytes, target, ignored fields and partition give the same key), so
# a repeat skips parsing, canonicalising and hashing -- a third of a replay's own time
# (bench/profile_replay.py). Bounded by bytes; cleared whole when full. The bodies
# handed out are shared between requests: read them, never change them.
_MEMO_MAX_BODY = 32 * 1024
_MEMO_BUDGET = 4 * 1024 * 1024
_memo: dict[tuple[bytes, Target, tuple[str, ...], str], tuple[dict[str, Any], str]] = {}
_memo_bytes = 0


def keyed_body(raw: bytes, target: Target, ignore_fields: tuple[str, ...], partition: str) -> tuple[dict[str, Any], str]:
    """The parsed body and its key; ProxyError for a body that cannot be keyed."""
    global _memo_bytes
    slot = (raw, target, ignore_fields, partition)
    small = len(raw) <= _MEMO_MAX_BODY
    if small:
        found = _memo.get(slot)
        if found is not None:
            return found
    body = parse_body(raw)
    try:
        key = KeyMaterial(target, canonical_body(body, ignore_fields), partition).key
    except (ValueError, RecursionError) as exc:
        raise ProxyError(400, f"request body cannot be keyed: {exc}", "invalid_request_error", "invalid_json") from exc
    if small:
        if _memo_bytes + len(raw) > _MEMO_BUDGET:
            _memo.clear()
            _memo_bytes = 0
        _memo[slot] = (body, key)
        _memo_bytes += len(raw)
    return body, key


def request_cassette(request: Request, settings: Settings) -> str:
    name = request.headers.get(CASSETTE_HEADER) or settings.cassette
    try:
        return _valid_name(name)
    except InvalidCassetteName as exc:
        raise ProxyError(400, str(exc), "invalid_request_error", "invalid_cassette") from exc


# A run sends the same few cassette names again and again: each is checked once
# (a refused name raises, and is never remembered).
_valid_name = functools.lru_cache(maxsize=256)(validate_name)


def raw_path(scope: Any) -> str:
    """The request path as it came on the wire (``%2F`` stays ``%2F``), for forwarding.

    Routing and the key read the decoded ``path`` (a deployment named ``my%20dep`` is
    ``my dep``); upstream must get what the client sent, or it would answer for
    another path than the one the key describes (``%3F`` decoded is a query).
    """
    raw = scope.get("raw_path")
    return raw.decode("latin-1") if isinstance(raw, bytes) and raw else str(scope["path"])


def request_session(headers: Mapping[str, str], settings: Settings) -> str:
    """The ``x-seedtape-session`` of a request or a WebSocket handshake (lower-case names)."""
    session = headers.get(SESSION_HEADER)
    if not session:
        return settings.session
    if len(session) > MAX_SESSION_LEN or not session.isprintable():
        raise ProxyError(
            400,
            f"{SESSION_HEADER} must be printable text of at most {MAX_SESSION_LEN} characters",
            "invalid_request_error",
            "invalid_session",
        )
    return session


def partition_of(request: Request, settings: Settings) -> str:
    """A salted hash of the caller's credential, never the credential itself."""
    if not settings.partition_by_credential:
        return ""
    return partition_for(credential_of(request.headers))


async def read_exchange(request: Request, match: Match, settings: Settings, mode: str, offline: bool = False) -> Exchange:
    cassette = request_cassette(request, settings)
    endpoint = match.endpoint
    if endpoint.body == JSON:
        check_content_type(request)
    raw = await read_body(request, settings.max_body)
    partition = partition_of(request, settings)
    ignore = tuple(settings.ignore_fields)
    if endpoint.body == JSON:
        body, key = keyed_body(raw, match.target, ignore, partition)
    elif endpoint.body == MULTIPART:
        body, keyed = read_form(raw, request.headers.get("content-type"))
        key = KeyMaterial(match.target, canonical_body(keyed, ignore), partition).key
    else:
        body = object_body(request.method, match.subpath, request.scope["query_string"])
        key = KeyMaterial(match.target, canonical_body(body), partition).key
    return Exchange(
        target=match.target,
        path=raw_path(request.scope),
        query=request.scope["query_string"].decode("latin-1"),
        body=body,
        raw=raw,
        client_headers=request.headers,
        mode=mode,
        cassette=cassette,
        session=request_session(request.headers, settings),
        key=key,
        family=match.family,
        endpoint=endpoint,
        method=request.method,
        stream=match.family.wants_stream(endpoint, body),
        offline=offline,
    )


def object_body(method: str, subpath: str, query_string: bytes) -> dict[str, Any]:
    """What stands for the body of a request about an object: method, path and query.

    ``api-version`` is left out (it is the target's field already); repeated query
    names (``include[]=a&include[]=b``) keep their order.
    """
    query: dict[str, Any] = {}
    for name, values in parse_qs(query_string.decode("latin-1"), keep_blank_values=True).items():
        if name != "api-version":
            query[name] = values[0] if len(values) == 1 else values
    return {"method": method, "path": subpath, "query": query}
