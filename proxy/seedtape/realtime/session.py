"""One Realtime WebSocket session through the proxy, and what each mode does with it.

The modes decide (``modes/*.py``, ``handle_realtime``); this object offers the
operations they pick from, the way the engine does for HTTP:

``replay``       answer the handshake, send the prelude, read the first client event
                 (the key), then walk the recording: each server event is released
                 once the client event recorded before it has arrived and matched.
                 A client event that does not match gets an OpenAI-shaped ``error``
                 event naming its position and the fields that differ, then a close
                 with code 4404. Never touches the network.
``record``       open the upstream WebSocket first (its refusal reaches the client as
                 the same HTTP answer), then pass events both ways, taping them; a
                 complete session is saved as the occurrence's episode.
``auto``         replay when the session is recorded, otherwise record it: if the
                 handshake matches recordings, the prelude is sent and the key read
                 as in replay; on a miss the upstream is opened then, its own prelude
                 taped (the client already has one) and the session continues live.
``verify``       a live session taped next to the recording, compared at its end
                 (assembled text transcripts, audio hashes), one drift-log line.
``passthrough``  a pipe; nothing taped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import orjson

from seedtape.errors import error_body
from seedtape.headers import credential_of, partition_for
from seedtape.realtime.events import describe, differences, parse_frame
from seedtape.realtime.handshake import Handshake
from seedtape.realtime.index import Entry, SessionIndex
from seedtape.realtime.tape import Session, Tape, client_data
from seedtape.realtime.upstream import Connector, UpstreamClosed, UpstreamRefused, UpstreamSocket
from seedtape.realtime.verify import verify_session
from seedtape.store import Deferred

if TYPE_CHECKING:
    from seedtape.engine import Engine


class Gateway(Protocol):
    """What a session uses of the gateway that accepted it (``realtime/gateway.py``)."""

    engine: Engine
    connector: Connector
    upstream_url: str
    index: SessionIndex

    def sessions(self, cassette: str, key: str, read: bool = True) -> list[Session] | Deferred | None: ...


log = logging.getLogger("seedtape")
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

CLOSE_MISS = 4404  # the replay miss: no recording, or a client event that differs from it
CLOSE_CASSETTE_ERROR = 4500
CLOSE_BAD_GATEWAY = 1014  # RFC 6455 registry: the upstream failed
# Codes an endpoint may send in a close frame (1005, 1006 and 1015 only describe one).
_SENDABLE = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014})


def sendable(code: int, dropped: int = CLOSE_BAD_GATEWAY) -> int:
    """A close code that can go on the wire for one that was received or observed."""
    if code in _SENDABLE or 3000 <= code <= 4999:
        return code
    if code == 1005:
        return 1000
    return dropped


def partition_of(headers: Sequence[tuple[str, str]], handshake_query: dict[str, str]) -> str:
    """As HTTP's ``--partition-by-credential`` (an api-key may come in the query here)."""
    lowered = {k.lower(): v for k, v in headers}
    return partition_for(credential_of(lowered) or handshake_query.get("api-key", ""))


class RealtimeSession:
    def __init__(
        self,
        gateway: Gateway,
        scope: MutableMapping[str, Any],
        receive: Receive,
        send: Send,
        handshake: Handshake,
        mode: str,
        cassette: str,
        session_id: str,
        partition: str = "",
    ) -> None:
        self.gateway = gateway
        self.engine = gateway.engine
        self.settings = gateway.engine.settings
        self.scope = scope
        self._receive = receive
        self._send = send
        self.handshake = handshake
        self.mode = mode
        self.cassette = cassette
        self.session_id = session_id
        self.partition = partition
        self.headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope.get("headers", [])]
        self.offered: list[str] = list(scope.get("subprotocols") or [])
        self.accepted = False
        self.key: str | None = None
        self.first_event: Any = None
        self.occurrence = 0
        self.client_close: tuple[int, str] | None = None
        self.client_events = 0
        self.connect_ms = 0

    # --- the client's side -------------------------------------------------------------

    async def deny(
        self, status: int, message: str, type_: str, code: str | None = None, *, body: bytes = b"", content_type: str = ""
    ) -> None:
        """Refuse the handshake with an HTTP answer (OpenAI-shaped unless ``body`` is given)."""
        if "websocket.http.response" not in (self.scope.get("extensions") or {}):
            await self._send({"type": "websocket.close", "code": 1008, "reason": message[:100]})
            return
        if not body:
            body, content_type = orjson.dumps(error_body(message, type_, code)), "application/json"
        headers = [(b"content-type", (content_type or "application/json").encode("latin-1")), (b"x-seedtape-mode", self.mode.encode())]
        if status >= 500 or type_.startswith("seedtape"):
            headers.append((b"x-should-retry", b"false"))
        await self._send({"type": "websocket.http.response.start", "status": status, "headers": headers})
        await self._send({"type": "websocket.http.response.body", "body": body})

    async def accept(self, subprotocol: str | None = None) -> None:
        message = await self._receive()
        if message["type"] != "websocket.connect":  # the client left during the handshake
            self.client_close = (int(message.get("code", 1006)), "")
            return
        chosen = subprotocol if subprotocol in self.offered else None
        await self._send(
            {"type": "websocket.accept", "subprotocol": chosen, "headers": [(b"x-seedtape-mode", self.mode.encode("latin-1"))]}
        )
        self.accepted = True

    async def send_frame(self, frame: str | bytes) -> None:
        if isinstance(frame, str):
            await self._send({"type": "websocket.send", "text": frame})
        else:
            await self._send({"type": "websocket.send", "bytes": frame})

    async def recv_client(self) -> str | bytes | None:
        """The client's next frame, or None once it has closed (``client_close`` says how)."""
        if self.client_close is not None:
            return None
        message = await self._receive()
        if message["type"] == "websocket.receive":
            text = message.get("text")
            self.client_events += 1
            return text if text is not None else bytes(message.get("bytes") or b"")
        self.client_close = (int(message.get("code", 1005)), str(message.get("reason") or ""))
        return None

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.client_close is not None or not self.accepted:
            return
        with contextlib.suppress(Exception):
            await self._send({"type": "websocket.close", "code": sendable(code), "reason": reason[:120]})
        self.client_close = (code, reason)

    async def error_event(self, message: str, type_: str, code: str, param: str | None = None, client_event_id: Any = None) -> None:
        """An OpenAI-shaped Realtime ``error`` event (the connection stays open after it)."""
        event = {
            "type": "error",
            "event_id": f"event_seedtape_{self.client_events}",
            "error": {"type": type_, "code": code, "message": message, "param": param, "event_id": client_event_id},
        }
        with contextlib.suppress(Exception):
            await self.send_frame(orjson.dumps(event).decode())

    async def fail(
        self, message: str, type_: str, code: str, close_code: int, param: str | None = None, client_event_id: Any = None
    ) -> None:
        """An error event, then a close: how a session the proxy cannot go on with ends."""
        if not self.accepted and self.client_close is None:
            await self.accept()
        await self.error_event(message, type_, code, param, client_event_id)
        await self.close(close_code, type_ if close_code == CLOSE_MISS else message[:120])

    # --- keys and recordings ------------------------------------------------------------

    def keyed(self, first_event: Any) -> str:
        """The session's key, from its first client event; takes the occurrence number."""
        self.first_event = first_event
        self.key = self.handshake.key(first_event, self.partition)
        self.occurrence = self.engine.coordinator.next_occurrence(self.session_id, self.cassette, self.key)
        return self.key

    def give_back(self) -> None:
        if self.key is not None and self.occurrence:
            self.engine.coordinator.release_occurrence(self.session_id, self.cassette, self.key, self.occurrence)
            self.occurrence = 0

    async def recorded(self) -> list[Session] | None:
        """The key's recorded sessions, or None; a broken file ends the session with its name."""
        assert self.key is not None
        try:
            found = self.gateway.sessions(self.cassette, self.key, read=False)
            if isinstance(found, Deferred):
                found = await anyio.to_thread.run_sync(self.gateway.sessions, self.cassette, self.key)
            assert not isinstance(found, Deferred)
            return found
        except Exception as exc:
            detail = str(exc) or type(exc).__name__
            log.error("seedtape: cassette file cannot be used: %s", detail)
            await self.fail(
                f"cassette file cannot be used: {detail}. Fix or delete the file; other recordings are not affected",
                "seedtape_cassette_error",
                "cassette_unreadable",
                CLOSE_CASSETTE_ERROR,
            )
            raise _Ended from exc

    async def save(self, tape: Tape) -> int | None:
        """Write a complete session as the occurrence's episode, through ``Engine.save``
        (key and file locks, episodes of this run kept, redaction, big ones off the loop,
        a disk error logged as unsaved, the team's store): None when it was not saved."""
        if self.key is None:
            self.keyed(None)
        assert self.key is not None
        request = self.handshake.stored_request(self.first_event)
        recordable = _Recordable(self.session_id, self.cassette, self.key, self.occurrence, request)
        return await self.engine.save(recordable, tape.episode, tape.size)

    # --- the upstream ---------------------------------------------------------------------

    async def open_upstream(self) -> UpstreamSocket | None:
        """Connect upstream; before the client was accepted a refusal is passed on as the
        same HTTP answer, after it as an error event and a close with 1014."""
        self.engine.coordinator.incr("upstream_calls")
        started = time.perf_counter()
        try:
            upstream = await self.gateway.connector.connect(self.handshake.path, self.handshake.query, self.headers, self.offered)
            self.connect_ms = int((time.perf_counter() - started) * 1000)
            return upstream
        except UpstreamRefused as exc:
            if self.accepted:
                await self.fail(exc.message, "upstream_error", f"upstream_{exc.status}", CLOSE_BAD_GATEWAY)
            elif exc.body:
                await self.deny(exc.status, exc.message, "upstream_error", body=exc.body, content_type=exc.content_type)
            else:
                await self.deny(exc.status, exc.message, "upstream_timeout" if exc.status == 504 else "upstream_error")
            return None

    async def pipe(self, upstream: UpstreamSocket, tape: Tape | None) -> None:
        """Events both ways until one side ends; the other side is then closed the same way."""

        async def from_client() -> None:
            while True:
                frame = await self.recv_client()
                if frame is None:
                    return
                if tape is not None:
                    data = client_data(frame)
                    tape.client(data)  # taped before it goes on: any reaction comes after it
                    if self.key is None:
                        self.keyed(data)
                try:
                    await upstream.send(frame)
                except UpstreamClosed:
                    return  # from_upstream sees the close too

        async def from_upstream() -> UpstreamClosed:
            while True:
                try:
                    frame = await upstream.recv()
                except UpstreamClosed as closed:
                    return closed
                if tape is not None:
                    tape.server(frame)
                await self.send_frame(frame)

        client_task = asyncio.ensure_future(from_client())
        upstream_task = asyncio.ensure_future(from_upstream())
        try:
            await asyncio.wait({client_task, upstream_task}, return_when=asyncio.FIRST_COMPLETED)
            if upstream_task.done() and not upstream_task.cancelled() and upstream_task.exception() is None:
                closed = upstream_task.result()
                client_task.cancel()
                if tape is not None:
                    tape.ended("server", closed.code, closed.reason)
                reason = closed.reason or ("upstream dropped the connection" if closed.code == 1006 else "")
                await self.close(closed.code, reason)
                return
            # The client closed (or went away while we were sending to it).
            if not client_task.done():
                with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(client_task), 2.0)
            upstream_task.cancel()
            code, reason = self.client_close or (1006, "")
            if tape is not None:
                tape.ended("client", code, reason)
            await upstream.close(sendable(code, dropped=1001), reason)
        finally:
            for task in (client_task, upstream_task):
                task.cancel()
            await asyncio.gather(client_task, upstream_task, return_exceptions=True)

    # --- the operations the modes pick from -----------------------------------------------

    async def passthrough(self) -> None:
        await self.live(None)

    async def record(self) -> None:
        tape = Tape(self.settings.realtime_audio)
        if await self.live(tape):
            await self.finish(tape)

    async def live(self, tape: Tape | None) -> bool:
        """Open upstream, accept the client and pipe the two (taping when asked); False
        when the session never got going (the client was told why)."""
        upstream = await self.open_upstream()
        if upstream is None:
            return False
        if tape is not None:
            tape.latency_ms, tape.subprotocol = self.connect_ms, upstream.subprotocol
        await self.accept(upstream.subprotocol)
        if not self.accepted:
            await upstream.close(1001)
            return False
        await self.pipe(upstream, tape)
        return True

    async def finish(self, tape: Tape) -> None:
        if tape.complete:
            await self.save(tape)
            return
        self.give_back()
        end = tape.end or {}
        if end.get("by") == "server":
            log.warning(
                "seedtape: Realtime session in cassette %s not recorded: the upstream closed it with %s %s",
                self.cassette,
                end.get("code"),
                end.get("reason") or "",
            )

    async def matching(self) -> list[Entry]:
        """Recorded sessions with this handshake; a cassette folder that changed is read
        again in a worker thread."""
        index = self.gateway.index
        entries = index.matching(self.cassette, self.handshake, scan=False)
        if entries is None:
            entries = await anyio.to_thread.run_sync(index.matching, self.cassette, self.handshake)
        assert entries is not None
        return entries

    async def replay(self) -> None:
        """Offline: serve the recording or fail with the miss error; never the network."""
        entries = await self.matching()
        if not entries:
            self.engine.coordinator.incr("misses")
            await self.fail(self._no_handshake_message(), "seedtape_cassette_miss", "cassette_miss", CLOSE_MISS)
            return
        try:
            await self._replay_from(entries, online=False)
        except _Ended:
            return

    async def auto(self) -> None:
        entries = await self.matching()
        if not entries:
            self.engine.coordinator.incr("misses")
            await self.record()
            return
        try:
            await self._replay_from(entries, online=True)
        except _Ended:
            return

    async def _replay_from(self, entries: list[Entry], online: bool) -> None:
        await self.accept(entries[0].subprotocol)
        if not self.accepted:
            return
        prelude = entries[0].prelude
        for prelude_frame in prelude:
            await self.send_frame(prelude_frame)
        frame = await self.recv_client()
        if frame is None:
            return
        data = client_data(frame)
        self.keyed(data)
        sessions = await self.recorded()
        count = len(sessions or ())
        if sessions and (self.occurrence <= count or (not online and self.settings.replay_exhausted != "error")):
            session = sessions[min(self.occurrence, count) - 1]
        elif sessions and online and self.settings.repeats == "cache":
            session = sessions[-1]
        elif sessions and not online:
            self.engine.coordinator.incr("misses")
            await self.fail(
                f"Realtime session {self.key[:16] if self.key else ''} was recorded {count} time(s) in cassette "
                f"{self.cassette!r}; this is occurrence {self.occurrence}",
                "seedtape_episodes_exhausted",
                "episodes_exhausted",
                CLOSE_MISS,
            )
            return
        elif online:
            self.engine.coordinator.incr("misses")
            await self._record_late(frame, data, len(prelude))
            return
        else:
            self.engine.coordinator.incr("misses")
            message, param = self._first_event_miss(data, entries)
            await self.fail(message, "seedtape_cassette_miss", "cassette_miss", CLOSE_MISS, param, _event_id(frame))
            return
        self.engine.coordinator.incr("hits")
        assert self.key is not None
        self.engine.used.add((self.cassette, self.key))
        await self.walk(session, session.prelude + 1)

    async def _record_late(self, first_frame: str | bytes, first_data: Any, prelude: int) -> None:
        """auto, unrecorded: the client has a prelude already; open upstream now, tape its
        own prelude without passing it on, then go on live from the first event."""
        upstream = await self.open_upstream()
        if upstream is None:
            self.give_back()
            return
        tape = Tape(self.settings.realtime_audio)
        tape.latency_ms, tape.subprotocol = self.connect_ms, upstream.subprotocol
        try:
            with anyio.fail_after(min(self.settings.upstream_timeout, 30.0)):
                for _ in range(prelude):
                    tape.server(await upstream.recv())
        except (UpstreamClosed, TimeoutError) as exc:
            self.give_back()
            await upstream.close(1001)
            await self.fail(
                f"upstream {self.gateway.upstream_url} did not open the session: {exc}",
                "upstream_error",
                "upstream_error",
                CLOSE_BAD_GATEWAY,
            )
            return
        tape.client(first_data)
        try:
            await upstream.send(first_frame)
        except UpstreamClosed as closed:
            tape.ended("server", closed.code, closed.reason)
            await self.close(closed.code, closed.reason)
            await self.finish(tape)
            return
        await self.pipe(upstream, tape)
        await self.finish(tape)

    async def walk(self, session: Session, start: int) -> None:
        """Play a recorded session from step ``start``: server frames are sent, each client
        step waits for the client's next event and checks it."""
        steps = session.steps
        paced = self.settings.pace == "recorded"
        loop = asyncio.get_running_loop()
        anchor_time, anchor_ms = loop.time(), steps[start - 1].ms if start else 0
        client_number = sum(1 for s in steps[:start] if s.client)
        send = self._send
        for index in range(start, len(steps)):
            step = steps[index]
            if not step.client:
                if paced:
                    delay = (step.ms - anchor_ms) / 1000 - (loop.time() - anchor_time)
                    if delay > 0:
                        await asyncio.sleep(delay)
                await send({"type": "websocket.send", "text": step.frame})
                continue
            frame = await self.recv_client()
            if frame is None:
                return  # the client left; what it does not wait for is not sent
            client_number += 1
            data = client_data(frame)
            if data != step.expected:
                await self._mismatch(session, client_number, index, data, step.expected, frame)
                return
            anchor_time, anchor_ms = loop.time(), step.ms
        if session.end_by == "server":
            await self.close(session.end_code, session.end_reason)
            return
        frame = await self.recv_client()  # the recorded client closed next: wait for this one to
        if frame is not None:
            data = client_data(frame)
            kind = data.get("type") if isinstance(data, dict) else None
            await self.fail(
                f"seedtape replay: client event {client_number + 1} ({kind}) goes beyond the recording of session "
                f"{(self.key or '')[:16]} episode {session.number} in cassette {self.cassette!r}, which ended after "
                f"{client_number} client events; record the session again (--mode record) to extend it",
                "seedtape_cassette_miss",
                "event_mismatch",
                CLOSE_MISS,
                client_event_id=_event_id(frame),
            )

    async def _mismatch(self, session: Session, number: int, index: int, data: Any, expected: Any, frame: str | bytes) -> None:
        diffs = differences(data, expected)
        kind = data.get("type") if isinstance(data, dict) else "not JSON"
        message = (
            f"seedtape replay: client event {number} ({kind}) differs from the recording of session "
            f"{(self.key or '')[:16]} episode {session.number} in cassette {self.cassette!r} (event {index + 1} of "
            f"{len(session.steps)}): " + describe(diffs) + ". Record the session again with --mode record (or x-seedtape-mode: record)"
        )
        self.engine.coordinator.incr("misses")
        await self.fail(message, "seedtape_cassette_miss", "event_mismatch", CLOSE_MISS, diffs[0][0] if diffs else None, _event_id(frame))

    def _no_handshake_message(self) -> str:
        h = self.handshake
        where = f"model {h.model!r}" + (f", api-version {h.api_version!r}" if h.api_version else "") + f" ({h.api} {h.path})"
        others = sorted({dict(e.identity[3]).get("model") or e.identity[1] for e in self.gateway.index.entries(self.cassette) or []})
        seen = f"; it has sessions for: {', '.join(repr(o) for o in others)}" if others else " (it has no Realtime sessions)"
        return f"seedtape replay: no recorded Realtime session for {where} in cassette {self.cassette!r}{seen}; record it with --mode auto or record"

    def _first_event_miss(self, data: Any, entries: list[Entry]) -> tuple[str, str | None]:
        best: tuple[int, str, list[tuple[str, Any, Any]]] | None = None
        for entry in entries:
            body = entry.request.get("body")
            diffs = differences(data, body.get("first_event") if isinstance(body, dict) else None)
            if best is None or (len(diffs), entry.key) < (best[0], best[1]):
                best = (len(diffs), entry.key, diffs)
        kind = data.get("type") if isinstance(data, dict) else "not JSON"
        head = f"seedtape replay: no recorded Realtime session in cassette {self.cassette!r} starts with client event 1 ({kind})"
        if best is None:
            return head, None
        return f"{head}. Closest recorded session: key {best[1][:16]}; differs in: {describe(best[2])}", (
            best[2][0][0] if best[2] else None
        )

    # --- verify -------------------------------------------------------------------------------

    async def verify(self) -> None:
        tape = Tape(self.settings.realtime_audio)
        if not await self.live(tape):
            return
        if not tape.complete:
            self.give_back()
            return
        if self.key is None:
            self.keyed(None)
        await verify_session(self, tape)


@dataclass
class _Recordable:
    """A session as ``Engine.save`` takes it (what an ``Exchange`` is for HTTP)."""

    session: str
    cassette: str
    key: str
    occurrence: int
    request: dict[str, Any]

    def stored_request(self) -> dict[str, Any]:
        return self.request


class _Ended(Exception):
    """The session was already ended (error event and close sent)."""


def _event_id(frame: str | bytes) -> Any:
    parsed = parse_frame(frame)
    return parsed.get("event_id") if isinstance(parsed, dict) else None
