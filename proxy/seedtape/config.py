"""Server settings: one frozen object, built by the CLI or by code, shared by every part.

Every field can come from a ``SEEDTAPE_<FIELD>`` environment variable through the
CLI; tests and ``client_shim`` build it directly.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from seedtape.durability import FSYNC_POLICIES
from seedtape.jsonpath import parse_path

OPENAI_UPSTREAM = "https://api.openai.com"
SIM_UPSTREAM = "sim"


def default_upstream() -> str:
    return os.environ.get("AZURE_OPENAI_ENDPOINT") or OPENAI_UPSTREAM


@dataclass(frozen=True)
class Settings:
    # One of modes.MODE_NAMES; checked by create_app, the CLI and the in-process proxy
    # (the mode registry imports the request path, which imports this module).
    mode: str = "auto"
    upstream: str = field(default_factory=default_upstream)
    cassettes_dir: Path = Path("cassettes")
    cassette: str = "default"
    cache_dir: Path = Path(".seedtape-cache")
    # What an identical request past the last episode gets: "auto" (seeded or
    # temperature 0 -> cache, else sequence), "cache" (last episode), "sequence" (new one).
    repeats: str = "auto"
    # Past the last episode in replay: repeat the last one, or answer an error.
    replay_exhausted: str = "repeat"
    record_errors: bool = False
    ignore_fields: tuple[str, ...] = ()
    keep_headers: tuple[str, ...] = ()
    max_body: int = 16 * 1024 * 1024
    # The whole upstream exchange, connect to last byte (a stream included), in seconds.
    upstream_timeout: float = 600.0
    # Longest silence between two events of an upstream stream (None: only the above).
    stream_idle_timeout: float | None = 300.0
    # Biggest upstream answer, decoded (a gzip bomb stops here), and biggest stream.
    max_response: int = 128 * 1024 * 1024
    max_stream_events: int = 100_000
    # Biggest cassette file read (bigger ones are refused with an error naming them).
    max_cassette_size: int = 256 * 1024 * 1024
    # Request head limits (uvicorn, seedtape serve): bytes of request line + headers, header count.
    max_header_size: int = 64 * 1024
    max_headers: int = 128
    # Sessions whose episode counters are remembered (least recently used forgotten).
    max_sessions: int = 10_000
    pace: str = "fast"  # or "recorded"
    verify_serve: str = "live"  # or "recorded"
    update: bool = False
    ignore_paths: tuple[str, ...] = ()
    partition_by_credential: bool = False
    # Staleness: episodes older than this many days are expired (None: never).
    max_age_days: float | None = None
    on_expired: str = "warn"  # warn | fail | rerecord
    workers: int = 1
    # When a recording is fsynced: "background" (just after its answer; it is written
    # whole and visible before) or "always" (before its answer). See durability.py.
    fsync: str = "background"
    session: str = ""  # this run's session id; set at start-up, shared by workers
    # Clients must send this token in x-seedtape-token. Give the token; only its
    # SHA-256 is kept (see __post_init__), so worker env and reprs never carry it.
    auth_token: str = field(default="", repr=False, compare=False)
    auth_token_sha256: str = ""
    # Redaction of what is written (request and response bodies), after the key is made.
    redact_patterns: tuple[str, ...] = ()
    redact_paths: tuple[str, ...] = ()
    # Teams: a shared store (redis:// or rediss:// URL; may hold a password, so never in
    # reprs and only ever printed masked), its namespace, expiry, and failure policy.
    store: str = field(default="", repr=False)
    namespace: str = "default"
    store_ttl_days: float | None = None  # None: recordings in the store never expire
    store_required: bool = False  # store away: 503 instead of local-only service
    store_timeout: float = 0.5  # seconds, bound on every Redis operation
    # Realtime: server audio deltas stored as they came ("keep", a replay plays them) or
    # as SHA-256 and size only ("hash", a replay sends silence of the same length).
    realtime_audio: str = "keep"

    def __post_init__(self) -> None:
        if self.on_expired not in ("warn", "fail", "rerecord"):
            raise ValueError(f"unknown on_expired {self.on_expired!r}; expected warn, fail or rerecord")
        if self.fsync not in FSYNC_POLICIES:
            raise ValueError(f"unknown fsync {self.fsync!r}; expected one of {', '.join(FSYNC_POLICIES)}")
        if self.realtime_audio not in ("keep", "hash"):
            raise ValueError(f"unknown realtime_audio {self.realtime_audio!r}; expected keep or hash")
        if self.repeats not in ("auto", "cache", "sequence"):
            raise ValueError(f"unknown repeats {self.repeats!r}; expected auto, cache or sequence")
        self._check_limits()
        from seedtape.cassette import InvalidCassetteName, validate_name
        from seedtape.headers import keep_header_problem

        try:
            validate_name(self.cassette)
        except InvalidCassetteName as exc:
            raise ValueError(f"--cassette: {exc}") from None
        for name in self.keep_headers:
            problem = keep_header_problem(name)
            if problem:
                raise ValueError(problem)
        object.__setattr__(self, "cassettes_dir", Path(self.cassettes_dir))
        object.__setattr__(self, "cache_dir", Path(self.cache_dir))
        if self.auth_token:
            from seedtape.security import token_digest

            object.__setattr__(self, "auth_token_sha256", token_digest(self.auth_token))
            object.__setattr__(self, "auth_token", "")
        for path in self.ignore_paths:
            parse_path(path, "--ignore-path")  # a typo fails here, not as a 500 on every verify
        if self.store:
            from seedtape.teams.url import check_namespace, check_store_url

            check_store_url(self.store)
            check_namespace(self.namespace)
            if self.store_timeout <= 0 or (self.store_ttl_days is not None and self.store_ttl_days <= 0):
                raise ValueError("--store-timeout and --store-ttl must be positive")
        if self.redact_patterns or self.redact_paths:
            from seedtape.redaction import Redactor

            Redactor.from_lists(self.redact_patterns, self.redact_paths)  # a bad pattern or path fails here, at start-up

    def _check_limits(self) -> None:
        positive = {
            "upstream_timeout": self.upstream_timeout,
            "max_body": self.max_body,
            "max_response": self.max_response,
            "max_stream_events": self.max_stream_events,
            "max_cassette_size": self.max_cassette_size,
            "max_header_size": self.max_header_size,
            "max_headers": self.max_headers,
            "max_sessions": self.max_sessions,
        }
        if self.stream_idle_timeout is not None:
            positive["stream_idle_timeout"] = self.stream_idle_timeout
        for name, value in positive.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"--{name.replace('_', '-')} must be a positive number, not {value!r}")

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    def to_env(self) -> str:
        """Serialise for worker processes (uvicorn --workers re-imports the app)."""
        data = asdict(self)
        data["cassettes_dir"] = str(self.cassettes_dir)
        data["cache_dir"] = str(self.cache_dir)
        return json.dumps(data)

    @classmethod
    def from_env(cls, text: str) -> Settings:
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        tuples = {f.name for f in fields(cls) if str(f.type).startswith("tuple")}
        values: dict[str, Any] = {k: tuple(v) if k in tuples else v for k, v in data.items() if k in known}
        return cls(**values)
