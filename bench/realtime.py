"""Realtime replay: a 500-event WebSocket session replayed by seedtape vs a bare Starlette
WebSocket app sending the same events, each under uvicorn (same run_server, same
settings) in its own process, measured in the same run with arms interleaved.

The session (built here, no network): ``session.created``, then the SDK's three client
events (``session.update``, ``conversation.item.create``, ``response.create``) each
followed by its server events, the response being ``--deltas`` text deltas; 500 events
in all by default. The bare app accepts, sends the same frames (byte for byte: the
frames seedtape's replay sends) and reads a client frame wherever the recording has
one, without checking it. seedtape does everything a replay does: token-free
handshake checks, the prelude index, the key from the first client event, the
cassette lookup, a canonical comparison of every client event.

The client (the ``websockets`` asyncio client, as the openai SDK uses) connects, sends
the three client events at once (as the SDK does) and reads until ``response.done``.
Time to first server event: from starting the connection to receiving
``session.created``. Events per second: all events of the session over the whole
session time (connect to ``response.done``). Medians over ``--sessions`` sessions per
arm and round. One Python client reads ~130,000 events/s, about what both servers
send, so the client can hide a server's cost: the server processes' CPU time per
session (from /proc) is printed too.

    python bench/realtime.py                 # 500 events, 200 sessions per arm, 3 rounds
    python bench/realtime.py --quick
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c

from seedtape.config import Settings
from seedtape.realtime.events import client_form
from seedtape.realtime.handshake import Handshake
from seedtape.realtime.tape import Session
from seedtape.store import CassetteStore

QUERY = "model=gpt-realtime"
PATH = "/v1/realtime"
CLIENT_EVENTS = [
    {"type": "session.update", "session": {"type": "realtime", "output_modalities": ["text"], "instructions": "be brief"}},
    {
        "type": "conversation.item.create",
        "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Tell me a long story"}]},
    },
    {"type": "response.create"},
]


def session_events(total: int) -> list[dict[str, Any]]:
    """A recorded GA text session of exactly ``total`` events (both directions)."""
    n = 0

    def server(data: dict[str, Any]) -> dict[str, Any]:
        nonlocal n
        n += 1
        return {"ms": n // 10, "dir": "server", "data": {"event_id": f"event_{n}", **data}}

    def client(data: dict[str, Any]) -> dict[str, Any]:
        return {"ms": n // 10, "dir": "client", "data": client_form(data)}

    where = {"response_id": "resp_1", "item_id": "item_2", "output_index": 0, "content_index": 0}
    item = {"id": "item_2", "type": "message", "role": "assistant", "status": "in_progress", "content": []}
    head = [
        server({"type": "session.created", "session": {"type": "realtime", "id": "sess_1", "model": "gpt-realtime"}}),
        client(CLIENT_EVENTS[0]),
        server(
            {
                "type": "session.updated",
                "session": {"type": "realtime", "id": "sess_1", "model": "gpt-realtime", "instructions": "be brief"},
            }
        ),
        client(CLIENT_EVENTS[1]),
        server({"type": "conversation.item.added", "previous_item_id": None, "item": {"id": "item_1", **CLIENT_EVENTS[1]["item"]}}),
        server({"type": "conversation.item.done", "previous_item_id": None, "item": {"id": "item_1", **CLIENT_EVENTS[1]["item"]}}),
        client(CLIENT_EVENTS[2]),
        server({"type": "response.created", "response": {"id": "resp_1", "object": "realtime.response", "status": "in_progress"}}),
        server({"type": "response.output_item.added", "response_id": "resp_1", "output_index": 0, "item": item}),
        server({"type": "response.content_part.added", **where, "part": {"type": "text", "text": ""}}),
    ]
    tail_size = 4
    deltas = total - len(head) - tail_size
    words = [f"word{i} " for i in range(deltas)]
    body = [server({"type": "response.output_text.delta", **where, "delta": w}) for w in words]
    text = "".join(words)
    done_item = {**item, "status": "completed", "content": [{"type": "output_text", "text": text}]}
    tail = [
        server({"type": "response.output_text.done", **where, "text": text}),
        server({"type": "response.content_part.done", **where, "part": {"type": "text", "text": text}}),
        server({"type": "response.output_item.done", "response_id": "resp_1", "output_index": 0, "item": done_item}),
        server({"type": "response.done", "response": {"id": "resp_1", "status": "completed", "output": [done_item]}}),
    ]
    events = head + body + tail
    assert len(events) == total
    return events


def bare_app_from_env() -> Any:
    """The baseline: accept, send the recorded frames, read a frame where the client sent one."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket

    steps = json.loads(Path(os.environ["BENCH_REALTIME_SPEC"]).read_text())

    async def session(websocket: WebSocket) -> None:
        await websocket.accept()
        for step in steps:
            if step is None:
                await websocket.receive_text()
            else:
                await websocket.send_text(step)
        await websocket.receive()  # the client's close

    async def health(request: Any) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route("/_seedtape/health", health), WebSocketRoute(PATH, session)])


async def one_session(url: str, n_events: int) -> tuple[float, float]:
    from websockets.asyncio.client import connect

    started = time.perf_counter()
    first = 0.0
    frames = [json.dumps(e) for e in CLIENT_EVENTS]
    async with connect(url, compression=None, max_size=None, additional_headers={"authorization": "Bearer bench"}) as ws:
        seen = 0
        for frame in frames:
            await ws.send(frame)
        while True:
            message = await ws.recv()
            seen += 1
            if seen == 1:
                first = time.perf_counter() - started
                if b'"session.created"' not in (message.encode() if isinstance(message, str) else message):
                    raise AssertionError(f"first event is not session.created: {message[:200]!r}")
            if seen == n_events - len(CLIENT_EVENTS):
                if "response.done" not in str(message):
                    raise AssertionError("last event is not response.done")
                total = time.perf_counter() - started
                break
    return first, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=500, help="events in the session (both directions)")
    parser.add_argument("--sessions", type=int, default=200, help="per arm and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", dest="json_out", default=None)
    args = parser.parse_args()
    if args.quick:
        args.sessions, args.rounds = 20, 1

    events = session_events(args.events)
    with tempfile.TemporaryDirectory(prefix="seedtape-bench-rt-") as tmp, contextlib.ExitStack() as stack:
        tmpdir = Path(tmp)
        handshake = Handshake.parse("openai", PATH, QUERY)
        first_event = events[1]["data"]
        episode = {"recorded_at": "2026-01-01T00:00:00Z", "status": 101, "headers": {}, "latency_ms": 0, "events": events}
        episode["end"] = {"by": "client", "code": 1000, "reason": ""}
        store = CassetteStore(tmpdir / "cassettes", None)
        store.save_episode("realtime", handshake.key(first_event), handshake.stored_request(first_event), 1, episode)
        store.close()
        prepared = Session.prepare(1, episode)
        spec = tmpdir / "bare.json"
        spec.write_text(json.dumps([None if s.client else s.frame for s in prepared.steps]))

        settings = Settings(
            mode="replay",
            upstream="http://127.0.0.1:9",
            cassettes_dir=tmpdir / "cassettes",
            cassette="realtime",
            cache_dir=tmpdir / "cache",
            session="bench",
        )
        env = {
            "SEEDTAPE_SETTINGS_JSON": settings.to_env(),
            "BENCH_REALTIME_SPEC": str(spec),
            "PYTHONPATH": os.pathsep.join([str(c.HERE), os.environ.get("PYTHONPATH", "")]),
        }
        ports = {"seedtape": c.free_port(), "bare": c.free_port()}
        commands = {
            "seedtape": [c.PYTHON, str(c.HERE / "_serve.py"), "seedtape", str(ports["seedtape"]), "1"],
            "bare": [c.PYTHON, str(Path(__file__).resolve()), "--serve-bare", str(ports["bare"])],
        }
        pids = {}
        for name, port in ports.items():
            pids[name] = stack.enter_context(c.server_process(commands[name], f"http://127.0.0.1:{port}/_seedtape/health", env)).pid
        cpu: dict[str, float] = {name: 0.0 for name in ports}
        urls = {name: f"ws://127.0.0.1:{port}{PATH}?{QUERY}" for name, port in ports.items()}

        async def arm(url: str, n: int) -> tuple[list[float], list[float]]:
            firsts, totals = [], []
            for _ in range(n):
                first, total = await one_session(url, args.events)
                firsts.append(first)
                totals.append(total)
            return firsts, totals

        async def run() -> dict[str, tuple[list[float], list[float]]]:
            for url in urls.values():
                await arm(url, 10)  # warm-up: imports, caches, the recording indexed
            results: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in urls}
            for _ in range(args.rounds):
                for name, url in urls.items():
                    before = c.cpu_seconds(pids[name])
                    firsts, totals = await arm(url, args.sessions)
                    cpu[name] += c.cpu_seconds(pids[name]) - before
                    results[name][0].extend(firsts)
                    results[name][1].extend(totals)
            return results

        results = asyncio.run(run())

    s_first, b_first = c.median(results["seedtape"][0]) * 1000, c.median(results["bare"][0]) * 1000
    s_total, b_total = c.median(results["seedtape"][1]), c.median(results["bare"][1])
    s_eps, b_eps = args.events / s_total, args.events / b_total
    s_cpu, b_cpu = (cpu[name] * 1000 / len(results[name][1]) for name in ("seedtape", "bare"))
    print(
        f"realtime replay: {args.events}-event session ({len(CLIENT_EVENTS)} client, {args.events - len(CLIENT_EVENTS)} server), "
        f"{len(results['seedtape'][1])} sessions per arm, {args.rounds} round(s) interleaved"
    )
    print(
        c.table(
            [
                ("time to first server event p50 (ms)", f"{s_first:.3f}", f"{b_first:.3f}", f"{s_first / b_first:.2f}x"),
                ("whole session p50 (ms)", f"{s_total * 1000:.2f}", f"{b_total * 1000:.2f}", c.ratio(s_total, b_total)),
                ("events per second (per session)", f"{s_eps:,.0f}", f"{b_eps:,.0f}", f"{b_eps / s_eps:.2f}x (bare / seedtape)"),
                ("server CPU per session (ms)", f"{s_cpu:.2f}", f"{b_cpu:.2f}", c.ratio(s_cpu, b_cpu)),
            ],
            ("metric", "seedtape", "bare app", "ratio (target: within 1.3x)"),
        )
    )
    c.emit_json(args.json_out, {k: {"first": v[0], "total": v[1]} for k, v in results.items()})


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve-bare":
        from seedtape.serving import run_server

        run_server(bare_app_from_env(), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
    else:
        main()
