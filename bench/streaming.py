"""Streaming replay: time to first event and events per second, seedtape replaying a
recorded ``stream: true`` chat completion vs a bare Starlette app streaming the same
SSE frames, both under uvicorn (same settings) in their own process.

A fast replay (the default ``--pace fast``) sends every event of the recording in one
write, so the bare app does the same (same bytes, same framing); ``--per-event`` makes
the bare app yield one frame at a time instead, the way a live upstream streams.
The client is httpx (keep-alive), one stream at a time: time to first event is from
sending the request to the first ``data:`` bytes; events/s is events over the whole
stream time.

    python bench/streaming.py              # 62-event recordings, 500 streams per arm
    python bench/streaming.py --words 500  # longer answers
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c

from seedtape.config import Settings
from seedtape.sse import encode_event

PATH = "/v1/chat/completions"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=500, help="per arm and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--words", type=int, default=60, help="content events per stream")
    parser.add_argument("--per-event", action="store_true", help="bare app writes one frame at a time")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", dest="json_out", default=None)
    args = parser.parse_args()
    if args.quick:
        args.streams, args.rounds = 30, 1
    import httpx

    keys = 20
    with tempfile.TemporaryDirectory(prefix="seedtape-bench-") as tmp, contextlib.ExitStack() as stack:
        tmpdir = Path(tmp)
        # the recordings: stream events of `--words` content chunks
        original = c.stream_events
        c.stream_events = lambda i, words=args.words: original(i, words)  # type: ignore[assignment]
        c.make_cassette(tmpdir / "cassettes", "stream", keys, stream=True, jobs=1)
        events = c.stream_events(0)
        frames = [encode_event(e["data"]).hex() for e in events]
        spec = tmpdir / "bare.json"
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
        settings = Settings(
            mode="replay",
            upstream="http://127.0.0.1:9",
            cassettes_dir=tmpdir / "cassettes",
            cassette="stream",
            cache_dir=tmpdir / "cache",
            session="bench",
        )
        env = {
            "SEEDTAPE_SETTINGS_JSON": settings.to_env(),
            "BENCH_BARE_SPEC": str(spec),
            "PYTHONPATH": os.pathsep.join([str(c.HERE), os.environ.get("PYTHONPATH", "")]),
        }
        ports = {"seedtape": c.free_port(), "bare": c.free_port()}
        for name, port in ports.items():
            stack.enter_context(
                c.server_process(
                    [c.PYTHON, str(c.HERE / "_serve.py"), name, str(port), "1"], f"http://127.0.0.1:{port}/_seedtape/health", env
                )
            )
        client = stack.enter_context(httpx.Client(timeout=30))
        bodies = [json.dumps(c.request_body(i, stream=True), separators=(",", ":")) for i in range(keys)]

        def arm(port: int, n: int) -> tuple[list[float], list[float]]:
            first, total = [], []
            for k in range(n):
                t = time.perf_counter()
                ttfe = None
                seen = b""
                with client.stream(
                    "POST", f"http://127.0.0.1:{port}{PATH}", content=bodies[k % keys], headers={"content-type": "application/json"}
                ) as answer:
                    for chunk in answer.iter_raw():
                        if ttfe is None and b"data:" in chunk:
                            ttfe = time.perf_counter() - t
                        seen += chunk
                total.append(time.perf_counter() - t)
                first.append(ttfe if ttfe is not None else float("nan"))
                if seen.count(b"data: ") != len(events) or not seen.endswith(b"data: [DONE]\n\n"):
                    raise AssertionError(f"incomplete stream from port {port}")
            return first, total

        arm(ports["seedtape"], 20), arm(ports["bare"], 20)
        results: dict[str, tuple[list[float], list[float]]] = {"seedtape": ([], []), "bare": ([], [])}
        for _ in range(args.rounds):
            for name, port in ports.items():
                f, t = arm(port, args.streams)
                results[name][0].extend(f)
                results[name][1].extend(t)

    n_events = len(events)
    s_first, b_first = c.median(results["seedtape"][0]) * 1000, c.median(results["bare"][0]) * 1000
    s_eps, b_eps = n_events / c.median(results["seedtape"][1]), n_events / c.median(results["bare"][1])
    print(
        f"streaming replay: {n_events} events per stream ({args.words} content chunks), "
        f"{len(results['seedtape'][1])} streams per arm; bare app writes {'one frame at a time' if args.per_event else 'all frames at once'}"
    )
    print(
        c.table(
            [
                (
                    "time to first event p50 (ms)",
                    f"{s_first:.3f}",
                    f"{b_first:.3f}",
                    f"{s_first - b_first:+.3f} ms ({s_first / b_first:.2f}x)",
                ),
                (
                    "whole stream p50 (ms)",
                    f"{c.median(results['seedtape'][1]) * 1000:.3f}",
                    f"{c.median(results['bare'][1]) * 1000:.3f}",
                    c.ratio(c.median(results["seedtape"][1]), c.median(results["bare"][1])),
                ),
                ("events per second (per stream)", f"{s_eps:,.0f}", f"{b_eps:,.0f}", f"{s_eps / b_eps:.2f}"),
            ],
            ("metric", "seedtape", "bare app", "ratio / added"),
        )
    )
    c.emit_json(args.json_out, {k: {"first": v[0], "total": v[1]} for k, v in results.items()})


if __name__ == "__main__":
    main()
