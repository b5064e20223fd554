"""Streaming replay: time to first event and events per second, seedtape replaying a
recorded stream vs a bare Starlette app streaming the same SSE frames, both under
uvicorn (same settings) in their own process. Two APIs, measured in the same run:

* ``chat``: a ``stream: true`` chat completion (``data:`` chunks ending with ``[DONE]``);
* ``responses``: a streamed Responses API answer (``event:`` + ``data:`` typed events
  with ``sequence_number``, ending with ``response.completed``, no ``[DONE]``).

A fast replay (the default ``--pace fast``) sends every event of the recording in one
write, so the bare app does the same (same bytes, same framing); ``--per-event`` makes
the bare app yield one frame at a time instead, the way a live upstream streams.
The client is httpx (keep-alive), one stream at a time: time to first event is from
sending the request to the first ``data:`` bytes; events/s is events over the whole
stream time. Arms are interleaved round by round, so each ratio compares the two
under the same machine load.

    python bench/streaming.py              # 60 content chunks, 500 streams per arm and round
    python bench/streaming.py --words 500  # longer answers
    python bench/streaming.py --api responses
    python bench/streaming.py --quick
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c

from seedtape.cassette import Recording
from seedtape.config import Settings
from seedtape.sse import encode_event

PATHS = {"chat": "/v1/chat/completions", "responses": "/v1/responses"}
KEYS = 20


def _write(root: Path, cassette: str, recordings: list[Recording]) -> None:
    folder = root / cassette
    folder.mkdir(parents=True, exist_ok=True)
    for rec in recordings:
        (folder / (rec.key[:16] + ".json")).write_text(rec.dumps(), encoding="utf-8")


def _setup(api: str, words: int, tmpdir: Path) -> tuple[list[dict[str, Any]], list[str], Path]:
    """Write the API's recordings; the events of one, the request bodies, the bare spec."""
    if api == "chat":
        recordings = [c.recording(i, stream=True) for i in range(KEYS)]
        for i, rec in enumerate(recordings):  # `words` content chunks
            rec.episodes[0]["events"] = c.stream_events(i, words)
        bodies = [json.dumps(c.request_body(i, stream=True), separators=(",", ":")) for i in range(KEYS)]
    else:
        recordings = [c.responses_recording(i, words) for i in range(KEYS)]
        bodies = [json.dumps(c.responses_request(i), separators=(",", ":")) for i in range(KEYS)]
    _write(tmpdir / "cassettes", api, recordings)
    events = json.loads(recordings[0].dumps())["episodes"][0]["events"]  # as the cassette holds them (sorted keys)
    return events, bodies, tmpdir / f"bare-{api}.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=500, help="per arm and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--words", type=int, default=60, help="content events per stream")
    parser.add_argument("--api", choices=["chat", "responses", "both"], default="both")
    parser.add_argument("--per-event", action="store_true", help="bare app writes one frame at a time")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", dest="json_out", default=None)
    args = parser.parse_args()
    if args.quick:
        args.streams, args.rounds = 30, 1
    import httpx

    apis = ["chat", "responses"] if args.api == "both" else [args.api]
    with tempfile.TemporaryDirectory(prefix="seedtape-bench-") as tmp, contextlib.ExitStack() as stack:
        tmpdir = Path(tmp)
        setup = {api: _setup(api, args.words, tmpdir) for api in apis}
        settings = Settings(
            mode="replay",
            upstream="http://127.0.0.1:9",
            cassettes_dir=tmpdir / "cassettes",
            cassette=apis[0],
            cache_dir=tmpdir / "cache",
            session="bench",
        )
        pythonpath = os.pathsep.join([str(c.HERE), os.environ.get("PYTHONPATH", "")])
        ports: dict[str, int] = {}
        for api, (events, _, spec) in setup.items():
            frames = [encode_event(e["data"], e.get("event")).hex() for e in events]
            spec.write_text(
                json.dumps(
                    {
                        "body_hex": "",
                        "frames_hex": frames,
                        "one_write": not args.per_event,
                        "headers": [["content-type", "text/event-stream; charset=utf-8"]],
                    }
                )
            )
            ports[f"bare-{api}"] = port = c.free_port()
            stack.enter_context(
                c.server_process(
                    [c.PYTHON, str(c.HERE / "_serve.py"), "bare", str(port), "1"],
                    f"http://127.0.0.1:{port}/_seedtape/health",
                    {"BENCH_BARE_SPEC": str(spec), "PYTHONPATH": pythonpath},
                )
            )
        ports["seedtape"] = port = c.free_port()
        stack.enter_context(
            c.server_process(
                [c.PYTHON, str(c.HERE / "_serve.py"), "seedtape", str(port), "1"],
                f"http://127.0.0.1:{port}/_seedtape/health",
                {"SEEDTAPE_SETTINGS_JSON": settings.to_env(), "PYTHONPATH": pythonpath},
            )
        )
        client = stack.enter_context(httpx.Client(timeout=30))

        def arm(api: str, port: int, n: int) -> tuple[list[float], list[float]]:
            events, bodies, _ = setup[api]
            # the last frame's first line: "data: [DONE]" (chat) or "event: response.completed"
            last = encode_event(events[-1]["data"], events[-1].get("event")).split(b"\n")[0]
            headers = {"content-type": "application/json", "x-seedtape-cassette": api}
            first, total = [], []
            for k in range(n):
                t = time.perf_counter()
                ttfe = None
                seen = b""
                with client.stream("POST", f"http://127.0.0.1:{port}{PATHS[api]}", content=bodies[k % KEYS], headers=headers) as answer:
                    for chunk in answer.iter_raw():
                        if ttfe is None and b"data:" in chunk:
                            ttfe = time.perf_counter() - t
                        seen += chunk
                total.append(time.perf_counter() - t)
                first.append(ttfe if ttfe is not None else float("nan"))
                if seen.count(b"data: ") != len(events) or seen.rsplit(b"\n\n", 2)[-2].split(b"\n")[0] != last:
                    raise AssertionError(f"incomplete {api} stream from port {port}")
            return first, total

        arms: dict[str, Callable[[int], tuple[list[float], list[float]]]] = {}
        for api in apis:
            arms[f"seedtape {api}"] = lambda n, api=api: arm(api, ports["seedtape"], n)  # type: ignore[misc]
            arms[f"bare {api}"] = lambda n, api=api: arm(api, ports[f"bare-{api}"], n)  # type: ignore[misc]
        for run in arms.values():
            run(20)  # warm up
        results: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in arms}
        for _ in range(args.rounds):
            for name, run in arms.items():
                f, t = run(args.streams)
                results[name][0].extend(f)
                results[name][1].extend(t)

    print(
        f"streaming replay: {len(results[next(iter(results))][1])} streams per arm, {args.words} content chunks; "
        f"bare app writes {'one frame at a time' if args.per_event else 'all frames at once'}"
    )
    rows = []
    for api in apis:
        n_events = len(setup[api][0])
        s, b = results[f"seedtape {api}"], results[f"bare {api}"]
        s_first, b_first = c.median(s[0]) * 1000, c.median(b[0]) * 1000
        s_eps, b_eps = n_events / c.median(s[1]), n_events / c.median(b[1])
        rows += [
            (f"{api} ({n_events} events): time to first event p50 (ms)", f"{s_first:.3f}", f"{b_first:.3f}", f"{s_first / b_first:.2f}x"),
            (
                f"{api}: whole stream p50 (ms)",
                f"{c.median(s[1]) * 1000:.3f}",
                f"{c.median(b[1]) * 1000:.3f}",
                c.ratio(c.median(s[1]), c.median(b[1])),
            ),
            (
                f"{api}: events per second (per stream)",
                f"{s_eps:,.0f}",
                f"{b_eps:,.0f}",
                f"{b_eps / s_eps:.2f}x slower" if s_eps < b_eps else "not slower",
            ),
        ]
    print(c.table(rows, ("metric", "seedtape", "bare app", "seedtape vs bare")))
    c.emit_json(args.json_out, {k: {"first": v[0], "total": v[1]} for k, v in results.items()})


if __name__ == "__main__":
    main()
