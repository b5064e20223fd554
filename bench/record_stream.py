"""Recording a long stream: what seedtape's relay costs while it passes a stream on
and records it, against a bare forwarder relaying the same stream (httpx in,
Starlette out, bytes passed on untouched: the floor of any Python relay), and the
client reading the upstream directly.

The upstream is the bare app (bench/_apps.py) streaming a chat completion of
``--events`` chunks and ``[DONE]``, ``--per-write`` frames per network write (a live
upstream sends a few; the fault suite's flood sends 1,000). seedtape runs in record
mode in its own process, and every request is a new recording (another seed), so
each one is relayed, checked for its end and saved. Arms are interleaved stream by
stream, so each ratio compares the two under the same machine load.

Printed: whole-stream time p50 (direct vs through seedtape, and the ratio), and
seedtape's CPU time per event (its process's user + system time over the stream,
from /proc: the figure that says how long the proxy's event loop is busy for others
while a long stream goes through).

    python bench/record_stream.py                 # 20,000 events, 10 streams per arm
    python bench/record_stream.py --events 100000 --per-write 1000 --streams 3
    python bench/record_stream.py --quick
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000, help="content chunks per stream")
    parser.add_argument("--per-write", type=int, default=1000, help="frames per upstream network write")
    parser.add_argument("--streams", type=int, default=10, help="per arm")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", dest="json_out", default=None)
    args = parser.parse_args()
    if args.quick:
        args.events, args.streams = 5_000, 3
    import httpx

    events = c.stream_events(0, 60)
    frames = [encode_event(events[1]["data"]) for _ in range(args.events)]
    frames = [encode_event(events[0]["data"]), *frames, encode_event(events[-2]["data"]), encode_event(events[-1]["data"])]
    with tempfile.TemporaryDirectory(prefix="seedtape-bench-") as tmp, contextlib.ExitStack() as stack:
        tmpdir = Path(tmp)
        spec = tmpdir / "bare.json"
        spec.write_text(
            json.dumps(
                {
                    "body_hex": "",
                    "frames_hex": [f.hex() for f in frames],
                    "one_write": False,
                    "frames_per_write": args.per_write,
                    "headers": [["content-type", "text/event-stream; charset=utf-8"]],
                }
            )
        )
        pythonpath = os.pathsep.join([str(c.HERE), os.environ.get("PYTHONPATH", "")])
        bare_port = c.free_port()
        stack.enter_context(
            c.server_process(
                [c.PYTHON, str(c.HERE / "_serve.py"), "bare", str(bare_port), "1"],
                f"http://127.0.0.1:{bare_port}/_seedtape/health",
                {"BENCH_BARE_SPEC": str(spec), "PYTHONPATH": pythonpath},
            )
        )
        forward_port = c.free_port()
        forwarder = stack.enter_context(
            c.server_process(
                [c.PYTHON, str(c.HERE / "_serve.py"), "forward", str(forward_port), "1"],
                f"http://127.0.0.1:{forward_port}/_seedtape/health",
                {"BENCH_FORWARD_UPSTREAM": f"http://127.0.0.1:{bare_port}", "PYTHONPATH": pythonpath},
            )
        )
        settings = Settings(
            mode="record",
            upstream=f"http://127.0.0.1:{bare_port}",
            cassettes_dir=tmpdir / "cassettes",
            cassette="long",
            cache_dir=tmpdir / "cache",
            session="bench",
        )
        port = c.free_port()
        proxy = stack.enter_context(
            c.server_process(
                [c.PYTHON, str(c.HERE / "_serve.py"), "seedtape", str(port), "1"],
                f"http://127.0.0.1:{port}/_seedtape/health",
                {"SEEDTAPE_SETTINGS_JSON": settings.to_env(), "PYTHONPATH": pythonpath},
            )
        )
        client = stack.enter_context(httpx.Client(timeout=120))
        headers = {"content-type": "application/json", "authorization": "Bearer sk-bench"}
        seed = iter(range(1_000_000))

        def stream(url: str, pid: int) -> tuple[float, float]:
            body = json.dumps(c.request_body(next(seed), stream=True))
            before, started = c.cpu_seconds(pid), time.perf_counter()
            seen = 0
            tail = b""
            with client.stream("POST", url + "/v1/chat/completions", content=body, headers=headers) as answer:
                for chunk in answer.iter_raw():
                    joined = tail + chunk  # a "data: " split over two reads is counted once
                    seen += joined.count(b"data: ") - tail.count(b"data: ")
                    tail = joined[-64:]
            took = time.perf_counter() - started
            if seen != len(frames) or not tail.endswith(b"data: [DONE]\n\n"):
                raise AssertionError(f"incomplete stream from {url}: {seen} events")
            return took, c.cpu_seconds(pid) - before

        arms = {
            "seedtape": (f"http://127.0.0.1:{port}", proxy.pid),
            "forwarder": (f"http://127.0.0.1:{forward_port}", forwarder.pid),
            "direct": (f"http://127.0.0.1:{bare_port}", proxy.pid),
        }
        for url, pid in arms.values():
            stream(url, pid)  # warm up
        took: dict[str, list[float]] = {name: [] for name in arms}
        cpu: dict[str, list[float]] = {name: [] for name in arms}
        for _ in range(args.streams):
            for name, (url, pid) in arms.items():
                seconds, used = stream(url, pid)
                took[name].append(seconds)
                cpu[name].append(used)
        time.sleep(0.5)  # the last save finishes before the servers stop

    n = len(frames)
    s, f, d = (c.median(took[name]) for name in ("seedtape", "forwarder", "direct"))
    s_cpu, f_cpu = (c.median(cpu[name]) / n * 1e6 for name in ("seedtape", "forwarder"))
    print(f"recording a long stream: {n:,} events, {args.per_write} per upstream write, {args.streams} streams per arm")
    rows = [
        ("whole stream p50 (ms)", f"{s * 1000:,.0f}", f"{f * 1000:,.0f}", f"{d * 1000:,.0f}", c.ratio(s, f)),
        ("events per second", f"{n / s:,.0f}", f"{n / f:,.0f}", f"{n / d:,.0f}", f"{f / s:.2f}"),
        ("server CPU per event p50 (us)", f"{s_cpu:.1f}", f"{f_cpu:.1f}", "", c.ratio(s_cpu, f_cpu)),
    ]
    print(c.table(rows, ("metric", "seedtape (record)", "bare forwarder", "direct", "seedtape vs forwarder")))
    c.emit_json(args.json_out, {"events": n, "took": took, "cpu": cpu})


if __name__ == "__main__":
    main()
