"""``seedtape import-vcr``: turn vcrpy cassettes (and their cousins) into seedtape cassettes.

Teams moving from vcrpy / pytest-recording already have recorded OpenAI and Azure
exchanges in git. This module reads every dialect those files come in, normalises each
exchange to one :class:`Interaction`, and writes every exchange an API family records
(chat and legacy completions, embeddings, moderations, Responses and the requests about
a response by id, audio transcriptions and translations, speech, images) as keyed
seedtape recordings, so the proxy replays them to the real SDK.

Dialects read (see ``tests/data/vcr-openai/SOURCES.md`` for real examples):

- vcrpy ``version: 1``: ``request.body`` a string (plain, ``|-``/``|+`` block, folded
  single-quoted) or ``!!binary``; ``response.body.string`` likewise, possibly gzip with
  ``Content-Encoding: gzip``; ``response.status.code``;
- pydantic-ai: ``parsed_body`` (a YAML tree of the JSON) instead of ``body`` on the
  request and/or the response;
- the old vcrpy-httpx layout: ``response.content``, ``status_code``, ``http_version``;
- dd-trace's one-interaction JSON ``{"request": {method, url, headers, body},
  "response": {status: {code}, headers, body}}``;
- header values as lists or scalars, any header-name casing, ``headers: {}``, a
  lower-case ``method: post`` (openai 0.27's aiohttp recordings);
- bodies compressed with gzip (found by its magic bytes, whatever the header says: a
  recorder that decoded the body may have kept ``Content-Encoding``), deflate or
  brotli (``Content-Encoding: br``, decoded with the ``brotli`` package).

URL forms, beyond the four shapes the proxy serves (``routes.py``):

- ``//openai/...`` double slashes (Azure endpoints written with a trailing slash);
- a base path before a known API path: ``https://openrouter.ai/api/v1/chat/completions``
  or ``/test/v1/chat/completions`` is keyed from its ``/v1/`` on (and a gateway's
  ``/prefix/openai/deployments/...`` from its ``/openai/`` on), which is where an SDK
  pointed at seedtape sends it;
- the pre-1.0 ``/v1/engines/{engine}/embeddings`` and ``.../completions``: the engine
  *is* the model, so the request is keyed as ``/v1/embeddings`` (``/v1/completions``)
  with ``"model": "<engine>"`` put into the body when the body names no model. That is
  the request a 1.x SDK sends for the same call, so it hits; the stored request shows
  the model it was given.

What is kept: only what the cassette format holds. Request headers are never stored
(the cassette ``request`` is just api/route/deployment/api_version/body), response
headers go through :func:`seedtape.headers.stored_response_headers` (an allow-list, so
cookies, ``openai-organization`` and request ids are dropped).

Request bodies are read the way the proxy reads them (``exchange.py``), so that the
key is the one a replayed SDK request makes: JSON; a multipart form (audio, image
edits) as its fields plus the SHA-256 of each file part, by ``form.read_form`` (the
cassette keeps each file's hash, name, size and content type, never the bytes); and for
a request about a response by id (``GET /v1/responses/{id}?stream=false``) the
``{"method", "path", "query"}`` that ``exchange.object_body`` makes, whatever body the
recorder wrote. Answers are stored as the recorder stores them (``episode.py``): JSON as
``body``, a ``text/*`` answer of a family that answers text (transcriptions with
``response_format=text``) as ``body_text``, audio as ``body_base64``, a stream as
``events`` (with each event's SSE name, as the Responses API sends them).

Choices worth knowing:

- Streamed responses become ``events`` whose ``ms`` offsets are all 0: vcrpy records
  no timing, and inventing a pace would make a "recorded pacing" replay a fiction.
- Non-2xx responses are imported as episodes (status + JSON body) by default because
  the tests that recorded them replay them as SDK exceptions; the proxy serves an
  episode's status. ``record_errors=False`` skips them instead.
- A stream is complete when its family says so (``stream_end``: ``data: [DONE]`` for
  chat, ``response.completed`` / ``response.incomplete`` for Responses, which sends no
  ``[DONE]``, ...). One that never gets there, or is ended by an error event first, is
  skipped, like the proxy never records a broken stream.
- ``recorded_at`` is taken from the response ``Date`` header when there is one, so a
  re-import of the same file writes the same bytes; otherwise it is the import time.
- Identical requests become episodes 1, 2, ... in file order (the polls of a
  ``background`` response, the same ``GET`` answered ``in_progress`` then
  ``completed``, replay in that order); with ``cassette=`` the
  count runs across all files, in the order they are read. Episodes already in the
  target file are replaced by position (the n-th imported occurrence rewrites episode
  n), exactly like record mode, so importing twice does not grow the file.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import brotli
import httpx
import yaml
from httpx_sse import EventSource

from seedtape.cassette import (
    MAX_NAME_LEN,
    CassetteError,
    Recording,
    file_name,
    read_recording,
    validate_name,
    write_recording,
)
from seedtape.episode import DONE, make_episode
from seedtape.errors import ProxyError
from seedtape.exchange import object_body
from seedtape.families import FAMILIES, Family, StreamEnd
from seedtape.families.base import MULTIPART, NO_BODY
from seedtape.form import read_form
from seedtape.key import make_key
from seedtape.routes import Match, Target, match_route

VCR_SUFFIXES = (".yaml", ".yml", ".json")
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-\[\]=+@,]")


class VcrImportError(Exception):
    """A file that cannot be imported; the message always names the file."""


@dataclass(slots=True)
class Interaction:
    """One HTTP exchange, normalised from any dialect.

    Header names are lower-cased (recorders disagree on casing, HTTP does not care)
    and list values are joined with ``", "``. ``response_body`` is the decoded body:
    gunzipped, and with ``content-encoding``/``content-length`` removed from the
    headers because they described the wire bytes, not these.
    """

    method: str
    url: str
    request_headers: dict[str, str]
    request_body: bytes | None
    status: int
    response_headers: dict[str, str]
    response_body: bytes

    @property
    def content_type(self) -> str:
        return self.response_headers.get("content-type", "")

    @property
    def is_stream(self) -> bool:
        """Server-Sent Events, by header or, when the header was scrubbed, by content
        (chat streams start with ``data:``, Responses streams with ``event:``)."""
        return "text/event-stream" in self.content_type.lower() or self.response_body.lstrip().startswith((b"data:", b"event:"))

    def request_json(self) -> Any:
        """The request body parsed as JSON (None when there is no body)."""
        return None if self.request_body is None else json.loads(self.request_body)


# --------------------------------------------------------------------------- reading


def load_interactions(path: Path) -> list[Interaction]:
    """Every exchange recorded in one file, in order.

    Raises :class:`VcrImportError` naming the file when it cannot be read, is not
    YAML/JSON, is not a cassette, or an exchange in it lacks what an import needs.
    """
    document = _parse_document(path)
    raw = _raw_interactions(document, path)
    interactions = []
    for number, item in enumerate(raw, start=1):
        try:
            interactions.append(_interaction(item))
        except (ValueError, TypeError, KeyError, OSError, EOFError, zlib.error, brotli.error) as exc:
            raise VcrImportError(f"{path}: interaction {number}: {exc}") from exc
    return interactions


def _parse_document(path: Path) -> Any:
    """YAML for vcrpy files, JSON for ``.json`` (dd-trace); errors say where it broke."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise VcrImportError(f"{path}: not UTF-8 text ({exc.reason})") from exc
    except OSError as exc:
        raise VcrImportError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise VcrImportError(f"{path}: broken JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    try:
        # safe_load: never run tags from a file off the internet; it still maps
        # vcrpy's ``!!binary`` to bytes.
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        where = f" at line {exc.problem_mark.line + 1} column {exc.problem_mark.column + 1}" if exc.problem_mark else ""
        raise VcrImportError(f"{path}: broken YAML{where}: {exc.problem or exc}") from exc
    except yaml.YAMLError as exc:
        raise VcrImportError(f"{path}: broken YAML: {exc}") from exc


def _raw_interactions(document: Any, path: Path) -> list[Mapping[str, Any]]:
    if isinstance(document, dict) and document.get("format") == "seedtape/1":
        raise VcrImportError(f"{path}: already a seedtape cassette file, nothing to import")
    if isinstance(document, dict) and isinstance(document.get("interactions"), list):
        items: list[Mapping[str, Any]] = document["interactions"]
    elif isinstance(document, dict) and isinstance(document.get("request"), dict) and "response" in document:
        items = [document]  # dd-trace: one exchange per file
    else:
        raise VcrImportError(f"{path}: not a vcrpy cassette (no 'interactions' list, and not a single {{request, response}} object)")
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict) or not isinstance(item.get("request"), dict) or not isinstance(item.get("response"), dict):
            raise VcrImportError(f"{path}: interaction {number} needs a 'request' and a 'response' mapping")
    return items


def _interaction(item: Mapping[str, Any]) -> Interaction:
    request, response = item["request"], item["response"]
    method = request.get("method")
    url = request.get("uri") or request.get("url")
    if not isinstance(method, str) or not isinstance(url, str):
        raise ValueError("request needs a 'method' and a 'uri' (or 'url')")
    request_headers = _headers(request.get("headers"))
    response_headers = _headers(response.get("headers"))
    request_body = _body_of(request, "body")
    response_body = _body_of(response, "body", "content")
    return Interaction(
        method=method.upper(),
        url=url,
        request_headers=request_headers,
        request_body=None if request_body is None else _decode(request_body, request_headers),
        status=_status(response),
        response_headers={k: v for k, v in response_headers.items() if k not in ("content-encoding", "content-length")},
        response_body=_decode(response_body or b"", response_headers),
    )


def _headers(raw: Any) -> dict[str, str]:
    """Lower-case names; a list of values (vcrpy) or a scalar (dd-trace, scrubbers)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ValueError(f"headers must be a mapping, not {type(raw).__name__}")
    headers: dict[str, str] = {}
    for name, value in raw.items():
        values = value if isinstance(value, list) else [value]
        text = ", ".join(str(v) for v in values if v is not None)
        lower = str(name).lower()
        headers[lower] = f"{headers[lower]}, {text}" if lower in headers else text
    return headers


def _body_of(side: Mapping[str, Any], *names: str) -> bytes | None:
    """The raw body bytes from ``body``/``content`` (string, bytes or ``{string: …}``)
    or, for pydantic-ai, ``parsed_body`` re-serialized as JSON."""
    for name in names:
        value = side.get(name)
        if isinstance(value, dict):
            value = value.get("string")
        if isinstance(value, bytes):
            return value
        if isinstance(value, str):
            return value.encode("utf-8")
    if "parsed_body" in side:
        return json.dumps(side["parsed_body"], ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return None


def _decode(body: bytes, headers: Mapping[str, str]) -> bytes:
    """Undo ``Content-Encoding`` when the stored bytes are still encoded.

    Recorders that decode bodies (vcrpy's ``decode_compressed_response``, the old
    vcrpy-httpx ``content:``) sometimes keep the header, so the bytes are checked rather
    than the header trusted: gzip by its magic bytes, deflate and brotli by whether they
    decode (brotli has no magic bytes, and short brotli output can look like text).
    """
    encodings = [e.strip() for e in headers.get("content-encoding", "").lower().split(",")]
    if body[:2] == b"\x1f\x8b":
        return gzip.decompress(body)
    if "deflate" in encodings and not _looks_textual(body):
        try:
            return zlib.decompress(body)
        except zlib.error:
            return zlib.decompress(body, -zlib.MAX_WBITS)  # raw deflate, as some servers send
    if "br" in encodings and body:
        try:
            decoded: bytes = brotli.decompress(body)
        except brotli.error:
            if _looks_textual(body):
                return body  # decoded at record time, header kept
            raise ValueError("Content-Encoding: br, but the body is neither brotli nor text") from None
        return decoded
    return body


def _looks_textual(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _status(response: Mapping[str, Any]) -> int:
    status = response.get("status")
    code = status.get("code") if isinstance(status, dict) else status
    if code is None:
        code = response.get("status_code")  # old vcrpy-httpx layout
    if isinstance(code, str) and code.isdigit():
        code = int(code)
    if not isinstance(code, int) or isinstance(code, bool):
        raise ValueError("response has no status code ('status.code' or 'status_code')")
    return code


# --------------------------------------------------------------------------- converting


@dataclass(frozen=True, slots=True)
class ImportedEpisode:
    """One interaction written as one episode of one key."""

    source: str  # "<file name>#<interaction number>"
    cassette: str
    key: str
    episode: int  # 1-based position in the recording
    status: int
    stream: bool
    route: str


@dataclass(slots=True)
class ImportReport:
    """What an import did, for the CLI to print and for tests to check."""

    imported: list[ImportedEpisode] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (source, reason)
    errors: list[tuple[Path, str]] = field(default_factory=list)  # (path, message)
    files: list[tuple[Path, int]] = field(default_factory=list)  # files read, interactions in each
    written: list[Path] = field(default_factory=list)  # cassette files written

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        interactions = sum(count for _, count in self.files)
        head = (
            f"import-vcr: {len(self.files)} file(s) read, {interactions} interaction(s): "
            f"{len(self.imported)} imported into {len(self.written)} cassette file(s), "
            f"{len(self.skipped)} skipped, {len(self.errors)} error(s)"
        )
        lines = [head]
        lines += [f"  skipped {source}: {reason}" for source, reason in self.skipped]
        lines += [f"  error   {message}" for _, message in self.errors]
        return "\n".join(lines)


class _Skip(Exception):
    """An interaction that is readable but has no place in a cassette."""


@dataclass(slots=True)
class _Converted:
    target: Target
    body: dict[str, Any]  # the request as the cassette stores it
    key: str
    episode: dict[str, Any]


# Where a known API path can start inside a longer one: ``/v1/`` or ``/openai/``.
_API_START = re.compile(r"/+(?=(?:v1|openai)/)")
# The pre-1.0 SDK's ``/v1/engines/{engine}/...``: the engine is the model.
_ENGINE = re.compile(r"/+v1/+engines/+(?P<engine>[^/]+)/+")


def _match(method: str, path: str, api_version: str) -> tuple[Match, str | None] | None:
    """The recorded route of a path as a recorder saw it, and the engine its URL named.

    The path as it is first; then from each ``/v1/`` or ``/openai/`` on, leftmost first
    (a base path before a known API path); then the same with ``/v1/engines/{engine}/``
    read as ``/v1/``.
    """
    found = _match_from_api_start(method, path, api_version)
    if found is not None:
        return found, None
    engine = _ENGINE.search(path)
    if engine is None:
        return None
    found = _match_from_api_start(method, path[: engine.start()] + "/v1/" + path[engine.end() :], api_version)
    return None if found is None else (found, unquote(engine["engine"]))


def _match_from_api_start(method: str, path: str, api_version: str) -> Match | None:
    for start in [0, *(m.start() for m in _API_START.finditer(path) if m.start() > 0)]:
        found = match_route(method, path[start:], api_version)
        if found is not None:
            return found
    return None


def _convert(interaction: Interaction, *, record_errors: bool = True, ignore_fields: tuple[str, ...] = ()) -> _Converted:
    """The key material and episode of one interaction; raises ``_Skip`` with the reason."""
    parts = urlsplit(interaction.url)
    api_version = (parse_qs(parts.query).get("api-version") or [""])[0]
    matched = _match(interaction.method, parts.path, api_version)
    if matched is None:
        routes = sorted({ep.route for family in FAMILIES for ep in family.endpoints})
        raise _Skip(f"{interaction.method} {parts.path} is not a recorded route ({', '.join(routes)})")
    match, engine = matched
    if not 200 <= interaction.status < 300 and not record_errors:
        raise _Skip(f"error response (HTTP {interaction.status}); errors are imported only with record_errors")
    body, keyed, ignored = _request_body(interaction, match, parts.query, engine, ignore_fields)
    key = make_key(match.target, keyed, ignored)
    return _Converted(match.target, body, key, _episode(interaction, match.family))


def _request_body(
    interaction: Interaction, match: Match, query: str, engine: str | None, ignore_fields: tuple[str, ...]
) -> tuple[dict[str, Any], dict[str, Any], tuple[str, ...]]:
    """``(stored, keyed, ignored fields)``: the body read as ``exchange.read_exchange``
    reads it for this endpoint, so that the key is the one the proxy makes."""
    kind = match.endpoint.body
    if kind == NO_BODY:
        # A request about an object: whatever the recorder wrote as its body ('' or
        # nothing), the proxy keys its method, path and query (never ignoring fields).
        # The query goes in as a client sends it: non-ASCII percent-encoded.
        raw_query = quote(query, safe="".join(chr(c) for c in range(0x21, 0x7F))).encode("ascii")
        body = object_body(interaction.method, match.subpath, raw_query)
        return body, body, ()
    if kind == MULTIPART:
        try:
            stored, keyed = read_form(interaction.request_body or b"", _form_content_type(interaction))
        except ProxyError as exc:
            raise _Skip(f"request body is not a readable multipart form ({exc})") from exc
        return stored, keyed, ignore_fields
    try:
        body = interaction.request_json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise _Skip(f"request body is not JSON ({exc})") from exc
    if not isinstance(body, dict):
        raise _Skip("request body is not a JSON object")
    if engine is not None and body.get("model") is None:
        body["model"] = engine  # what a 1.x SDK sends for the same call
    return body, body, ignore_fields


def _form_content_type(interaction: Interaction) -> str | None:
    """The request's multipart content-type; rebuilt from the body's first boundary line
    when a recorder or scrubber dropped the header."""
    declared = interaction.request_headers.get("content-type")
    if declared and declared.strip().lower().startswith("multipart/"):
        return declared
    first = re.match(rb"--([!-~]{1,200})\r?\n", interaction.request_body or b"")
    return f"multipart/form-data; boundary={first[1].decode('ascii')}" if first else declared


def _episode(interaction: Interaction, family: Family) -> dict[str, Any]:
    headers = dict(interaction.response_headers)
    if interaction.is_stream:
        headers.setdefault("content-type", "text/event-stream")
        episode = make_episode(interaction.status, headers, events=_events(interaction.response_body, family), family=family)
    else:
        answer = _answer(interaction, family)
        headers.setdefault("content-type", _DEFAULT_CONTENT_TYPE[next(iter(answer))])
        episode = make_episode(interaction.status, headers, **answer, family=family)
    recorded_at = _recorded_at(interaction.response_headers.get("date"))
    if recorded_at:
        episode["recorded_at"] = recorded_at
    return episode


_DEFAULT_CONTENT_TYPE = {"body": "application/json", "text": "text/plain; charset=utf-8", "binary": "application/octet-stream"}


def _answer(interaction: Interaction, family: Family) -> dict[str, Any]:
    """A non-stream answer as ``make_episode`` takes it: ``body`` (JSON), ``text`` or
    ``binary``, by the kinds of answer its family gives (``Family.answers``).

    A ``text/*`` answer of a family that answers text stays text even when it happens
    to parse as JSON (a transcript reading ``42``): the client must get the same bytes.
    """
    content = interaction.response_body
    ok = 200 <= interaction.status < 300
    content_type = interaction.content_type.lower()
    textual = content_type.startswith("text/")
    if ok and textual and "text" in family.answers:
        try:
            return {"text": content.decode("utf-8")}
        except UnicodeDecodeError as exc:
            raise _Skip(f"text answer is not UTF-8 (HTTP {interaction.status})") from exc
    if not content.strip():
        raise _Skip(f"empty response body (HTTP {interaction.status})")
    try:
        return {"body": json.loads(content)}
    except (ValueError, UnicodeDecodeError):
        pass
    if ok and "binary" in family.answers and not textual:
        return {"binary": content}
    raise _Skip(f"response body is neither JSON nor Server-Sent Events (HTTP {interaction.status})")


def _events(body: bytes, family: Family) -> list[dict[str, Any]]:
    """SSE bytes to episode events (parsed with httpx-sse, not by hand); ``ms`` all 0.

    Stored as the recorder stores them: the data, and the SSE event name when it is
    not the default ``message`` (Responses streams name every event). The stream must
    reach its family's end marker before any error event, or it is skipped.
    """
    response = httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)
    events: list[dict[str, Any]] = []
    ended: StreamEnd | None = None
    for sse in EventSource(response).iter_sse():
        if not sse.data:
            continue  # keep-alive or a bare ``event:`` line: nothing a client parses
        if sse.data == DONE:
            data: Any = DONE
        else:
            try:
                data = json.loads(sse.data)
            except ValueError as exc:
                raise _Skip(f"stream event {len(events) + 1} is not JSON") from exc
        event: dict[str, Any] = {"ms": 0, "data": data}
        if sse.event and sse.event != "message":
            event["event"] = sse.event
        events.append(event)
        ended = ended or family.stream_end(data)
    if ended is StreamEnd.ERROR:
        raise _Skip("stream was ended by an error event (the proxy never records those)")
    if ended is None:
        marker = "data: [DONE]" if family.stream_end(DONE) is StreamEnd.COMPLETE else f"the {family.name} completion event"
        raise _Skip(f"stream does not reach {marker} (broken streams are never recorded)")
    return events


def _recorded_at(date_header: str | None) -> str | None:
    """The response's ``Date`` in the cassette's timestamp format, if it parses."""
    if not date_header:
        return None
    try:
        when = parsedate_to_datetime(date_header)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --------------------------------------------------------------------------- writing


def cassette_name_for(path: Path) -> str:
    """A valid cassette name made from a file's stem (unsafe characters become ``_``)."""
    name = _NAME_UNSAFE.sub("_", path.stem)[:MAX_NAME_LEN]
    if name in ("", ".", ".."):
        name = "_" * max(1, len(name))
    return validate_name(name)


def expand_paths(paths: Iterable[Path]) -> Iterator[Path | tuple[Path, str]]:
    """Files as given; folders as every ``*.yaml``/``*.yml``/``*.json`` below, sorted.

    A path that does not exist comes out as ``(path, message)``.
    """
    for path in paths:
        path = Path(path)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VCR_SUFFIXES)
        elif path.is_file():
            yield path
        else:
            yield (path, f"{path}: no such file or folder")


class _Writer:
    """Recordings touched by one import, loaded once and written once at the end."""

    def __init__(self, cassettes_dir: Path, report: ImportReport) -> None:
        self.cassettes_dir = cassettes_dir
        self.report = report
        self.recordings: dict[Path, Recording] = {}
        self.occurrences: dict[Path, int] = {}
        self.broken: set[Path] = set()

    def add(self, cassette: str, converted: _Converted, key: str) -> int | None:
        """Store the episode as the next occurrence of its key; its number, or None."""
        path = self.cassettes_dir / cassette / file_name(key)
        recording = self._recording(path, key, converted)
        if recording is None:
            return None
        occurrence = self.occurrences.get(path, 0) + 1
        self.occurrences[path] = occurrence
        return recording.set_episode(occurrence, converted.episode)

    def _recording(self, path: Path, key: str, converted: _Converted) -> Recording | None:
        if path in self.broken:
            return None
        if path not in self.recordings:
            try:
                recording = read_recording(path) if path.exists() else None
            except CassetteError as exc:
                self._broken(path, f"{exc}; not overwritten")
                return None
            if recording is not None and recording.key != key:
                self._broken(path, f"{path}: holds key {recording.key[:16]}…, not {key[:16]}…; not overwritten")
                return None
            request = {**converted.target.as_dict(), "body": converted.body}
            self.recordings[path] = recording or Recording(key=key, request=request)
        return self.recordings[path]

    def _broken(self, path: Path, message: str) -> None:
        self.broken.add(path)
        self.report.errors.append((path, message))

    def flush(self) -> None:
        for path, recording in self.recordings.items():
            try:
                write_recording(path, recording)
            except OSError as exc:
                self.report.errors.append((path, f"{path}: cannot write: {exc.strerror or exc}"))
            else:
                self.report.written.append(path)


def import_paths(
    paths: Sequence[Path],
    cassettes_dir: Path,
    cassette: str | None = None,
    *,
    record_errors: bool = True,
    ignore_fields: Iterable[str] = (),
) -> ImportReport:
    """Import vcr files and folders into ``cassettes_dir``; never stops at a bad file.

    Each file becomes cassette ``<file stem>`` unless ``cassette`` names one cassette
    for all (an invalid name raises ``InvalidCassetteName`` before anything is read).
    ``ignore_fields`` must match the proxy's ``--ignore-field`` for the keys to meet.
    """
    if cassette is not None:
        validate_name(cassette)
    ignored = tuple(ignore_fields)
    report = ImportReport()
    writer = _Writer(Path(cassettes_dir), report)
    for item in expand_paths(paths):
        if isinstance(item, tuple):
            report.errors.append(item)
            continue
        _import_file(item, cassette or cassette_name_for(item), writer, report, record_errors, ignored)
    writer.flush()
    return report


def _import_file(path: Path, cassette: str, writer: _Writer, report: ImportReport, record_errors: bool, ignored: tuple[str, ...]) -> None:
    try:
        interactions = load_interactions(path)
    except VcrImportError as exc:
        report.errors.append((path, str(exc)))
        return
    report.files.append((path, len(interactions)))
    for number, interaction in enumerate(interactions, start=1):
        source = f"{path.name}#{number}"
        try:
            converted = _convert(interaction, record_errors=record_errors, ignore_fields=ignored)
        except _Skip as skip:
            report.skipped.append((source, str(skip)))
            continue
        key = converted.key
        episode = writer.add(cassette, converted, key)
        if episode is not None:
            report.imported.append(
                ImportedEpisode(
                    source=source,
                    cassette=cassette,
                    key=key,
                    episode=episode,
                    status=interaction.status,
                    stream="events" in converted.episode,
                    route=converted.target.route,
                )
            )
