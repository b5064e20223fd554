"""Record overhead: a client calling a local upstream directly vs through seedtape in
record mode (every request forwarded, answered, and written to its cassette file with
fsync before the client gets the answer).

The upstream is the bare app of ``bench/_apps.py`` (answers a chat completion at once,
so the difference is seedtape's own cost); upstream and seedtape each run under
uvicorn in their own process; the client is httpx with keep-alive, one request at a
time, every request a new prompt (a new file), alternating direct and proxied rounds.

    python bench/record.py            # 300 requests per arm
    python bench/record.py --quick
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
import _common as c  # noqa: E402

from seedtape.config import Settings  # noqa: E402

PATH = "/v1/chat/completions"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300, help="per arm")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", dest="json_out", default=None)
    args = parser.parse_args()
    if args.quick:
        args.requests, args.rounds = 30, 1
    import httpx

    with tempfile.TemporaryDirectory(prefix="seedtape-bench-") as tmp, contextlib.ExitStack() as stack:
        tmpdir = Path(tmp)
        spec = tmpdir / "upstream.json"
        spec.write_text(json.dumps({"body_hex": json.dumps(c.response_body(0), separators=(",", ":")).encode().hex(),
                                    "headers": [["content-type", "application/json"]]}))
        up, px = c.free_port(), c.free_port()
        settings = Settings(mode="record", upstream=f"http://127.0.0.1:{up}", cassettes_dir=tmpdir / "cassettes", cassette="rec",
                            cache_dir=tmpdir / "cache", session="bench")
        env = {"SEEDTAPE_SETTINGS_JSON": settings.to_env(), "BENCH_BARE_SPEC": str(spec),
               "PYTHONPATH": os.pathsep.join([str(c.HERE), os.environ.get("PYTHONPATH", "")])}
        for name, port in (("bare", up), ("seedtape", px)):
            stack.enter_context(c.server_process([c.PYTHON, str(c.HERE / "_serve.py"), name, str(port), "1"],
                                                 f"http://127.0.0.1:{port}/_seedtape/health", env))
        client = stack.enter_context(httpx.Client(timeout=30))
        counter = iter(range(10**9))

        def arm(port: int, n: int) -> list[float]:
            times = []
            for _ in range(n):
                body = json.dumps(c.request_body(next(counter)), separators=(",", ":"))
                t = time.perf_counter()
                answer = client.post(f"http://127.0.0.1:{port}{PATH}", content=body, headers={"content-type": "application/json"})
                times.append(time.perf_counter() - t)
                answer.raise_for_status()
            return times

        arm(up, 20), arm(px, 20)  # warm-up
        direct: list[float] = []
        proxied: list[float] = []
        for _ in range(args.rounds):
            direct += arm(up, args.requests)
            proxied += arm(px, args.requests)
        files = len(list((tmpdir / "cassettes" / "rec").glob("*.json")))
        assert files == 20 + args.rounds * args.requests, files

    d50, p50 = c.median(direct) * 1000, c.median(proxied) * 1000
    d99, p99 = c.percentile(direct, 0.99) * 1000, c.percentile(proxied, 0.99) * 1000
    print(f"record overhead: {len(proxied)} requests per arm, each a new recording written with fsync ({files} files)")
    print(c.table([
        ("p50 (ms)", f"{p50:.3f}", f"{d50:.3f}", f"{p50 - d50:+.3f} ms", "<= +2 ms"),
        ("p99 (ms)", f"{p99:.3f}", f"{d99:.3f}", f"{p99 - d99:+.3f} ms", ""),
    ], ("metric", "via seedtape (record)", "direct", "added", "target")))
    c.emit_json(args.json_out, {"direct": direct, "proxied": proxied})


if __name__ == "__main__":
    main()
