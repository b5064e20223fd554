"""Every WebSocket the proxy is asked for: checks, then a session handed to its mode.

The same rules as HTTP: the token (``--auth-token``) is checked before anything else,
``x-seedtape-mode``/``-cassette``/``-session`` pick the mode, cassette and session and
are never forwarded, credentials are forwarded and never stored. A handshake that
fails these checks is refused with an OpenAI-shaped HTTP answer (the SDK raises on
it at ``connect()``). Realtime paths are recorded; any other WebSocket path is piped
to the upstream untouched and never stored, or refused in replay mode.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

from seedtape.cassette import InvalidCassetteName, validate_name
from seedtape.errors import ProxyError
from seedtape.exchange import CASSETTE_HEADER, request_session
from seedtape.modes import MODE_HEADER, mode_named
from seedtape.prepared import Prepared
from seedtape.realtime.handshake import Handshake, realtime_api
from seedtape.realtime.index import SessionIndex
from seedtape.realtime.session import RealtimeSession, Receive, Send, partition_of
from seedtape.realtime.tape import Session, is_session
from seedtape.realtime.upstream import connector_for
from seedtape.security import TOKEN_HEADER, token_matches
from seedtape.store import DEFERRED, Deferred

if TYPE_CHECKING:
    from seedtape.engine import Engine

log = logging.getLogger("seedtape")


class RealtimeGateway:
    """The proxy's WebSocket side: one per app, sharing the HTTP side's engine."""

    def __init__(self, engine: Engine, upstream_transport: Any = None) -> None:
        self.engine = engine
        settings = engine.settings
        self.connector = connector_for(engine.upstream.base_url, settings.upstream_timeout, upstream_transport)
        self.upstream_url = getattr(self.connector, "base_url", "")
        self.index = SessionIndex(engine.store)
        # Sessions of a recording prepared once (frames encoded), while the store
        # hands out the same indexed recording (it re-reads a file that changed).
        self._prepared: OrderedDict[tuple[str, str], tuple[Prepared, list[Session]]] = OrderedDict()
        self._lock = threading.Lock()

    def sessions(self, cassette: str, key: str, read: bool = True) -> list[Session] | Deferred | None:
        """The key's recorded sessions, prepared for replay; None when there is no file.
        With ``read=False``, ``DEFERRED`` when that would mean reading the file (the
        caller asks again from a worker thread: a session with its audio is megabytes)."""
        prepared = self.engine.store.load(cassette, key, inline_max=None if read else 0)
        if isinstance(prepared, Deferred):
            return prepared
        if prepared is None:
            return None
        slot = (cassette, key)
        with self._lock:
            cached = self._prepared.get(slot)
        if cached is not None and cached[0] is prepared:
            return cached[1]
        if not read:
            return DEFERRED
        # The index keeps replay bytes, not the parsed recording: read the sessions from the file.
        recording = self.engine.store.read(cassette, key)
        episodes = [e for e in recording.episodes if is_session(e)] if recording is not None else []
        sessions = [Session.prepare(n, e) for n, e in enumerate(episodes, start=1)]
        with self._lock:
            self._prepared[slot] = (prepared, sessions)
            while len(self._prepared) > 256:
                self._prepared.popitem(last=False)
        return sessions or None

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        settings = self.engine.settings
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        path = scope.get("path", "/")
        query = scope.get("query_string", b"").decode("latin-1")
        api = realtime_api(path)
        handshake = Handshake.parse(api or "", path, query)
        session = RealtimeSession(self, scope, receive, send, handshake, settings.mode, settings.cassette, settings.session)
        if settings.auth_token_sha256 and not token_matches(headers.get(TOKEN_HEADER), settings.auth_token_sha256):
            reason = "missing" if headers.get(TOKEN_HEADER) is None else "wrong"
            await session.deny(
                401,
                f"seedtape proxy token {reason}: send the token given to seedtape serve --auth-token in the {TOKEN_HEADER} header",
                "seedtape_unauthorized",
                "invalid_seedtape_token",
            )
            return
        try:
            mode = mode_named(headers.get(MODE_HEADER), settings.mode)
            session.mode = mode.name
            session.cassette = validate_name(headers.get(CASSETTE_HEADER) or settings.cassette)
            session.session_id = request_session(headers, settings)
        except ProxyError as exc:
            await session.deny(exc.status, exc.message, exc.type, exc.code)
            return
        except InvalidCassetteName as exc:
            await session.deny(400, str(exc), "invalid_request_error", "invalid_cassette")
            return
        if settings.partition_by_credential:
            session.partition = partition_of(list(headers.items()), dict(handshake.params))
        try:
            if api is None:  # some other WebSocket: piped untouched, never stored
                if mode.offline:
                    await session.deny(
                        404,
                        f"WebSocket {path} is not a recorded route, and replay mode never calls upstream",
                        "seedtape_unrecorded_route",
                        "unrecorded_route",
                    )
                    return
                await session.passthrough()
                return
            self.engine.coordinator.incr("requests")
            await mode.handle_realtime(session)
        except OSError:
            # The client went away while the proxy was sending to it (uvicorn raises
            # ClientDisconnected, an OSError): nothing to answer, nothing recorded.
            session.give_back()
        except Exception as exc:  # never a traceback to the client; the log has it
            self.engine.coordinator.incr("errors")
            log.exception("seedtape: internal error on WebSocket %s", path)
            session.give_back()
            if session.accepted:
                await session.fail(f"seedtape internal error: {type(exc).__name__}", "seedtape_internal_error", "internal_error", 1011)
            elif session.client_close is None:
                await session.deny(500, f"seedtape internal error: {type(exc).__name__}", "seedtape_internal_error")
