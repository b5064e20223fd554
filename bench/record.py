"""Record overhead: a client calling a local upstream directly vs through seedtape in
record mode (every request forwarded, answered, and written to its cassette file).

Arms, interleaved in rounds so the machine's noise falls on all of them alike:

* ``direct``: the client calls the upstream itself (the baseline of the target);
* ``forward floor``: a bare Starlette app that only reads the body, POSTs it upstream
  with httpx and answers what came back -- one more HTTP hop in Python, nothing else:
  what any forwarding proxy pays before it records anything;
* ``seedtape``: record mode as it ships (``--fsync background``: the file is written
  whole and renamed into place before the answer, fsynced just after it);
* ``seedtape --fsync always``: the answer also waits for fsync of the file and its folder.

The upstream is the bare app of ``bench/_apps.py`` (answers a chat completion at once,
so differences are the proxies' own cost); every server runs under uvicorn in its own
process; the client is httpx with keep-alive, one request at a time, every request a
new prompt (a new file).

``--concurrency N`` adds a throughput table: N clients at once (asyncio, httpx), each
arm three times, to show what saving on the event loop does under load.

    python bench/record.py                    # 300 requests per arm and round, 3 rounds
    python bench/record.py --concurrency 16   # ... and recordings per second with 16 clients
    python bench/record.py --quick
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
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c

from seedtape.config import Settings

PATH = "/v1/chat/completions"


ARMS = ("direct", "forward floor", "seedtape", "seedtape --fsync always")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300, help="per arm and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=0, help="also measure throughput with this many clients")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", dest="json_out", default=None)
    args = parser.parse_args()
    if args.quick:
        args.requests, args.rounds = 30, 1
    import httpx

    with tempfile.TemporaryDirectory(prefix="seedtape-bench-") as tmp, contextlib.ExitStack() as stack:
        tmpdir = Path(tmp)
        spec = tmpdir / "upstream.json"
        spec.write_text(
            json.dumps(
                {
                    "body_hex": json.dumps(c.response_body(0), separators=(",", ":")).encode().hex(),
                    "headers": [["content-type", "application/json"]],
                }
            )
        )
        up = c.free_port()
        env = {
            "BENCH_BARE_SPEC": str(spec),
            "BENCH_FORWARD_UPSTREAM": f"http://127.0.0.1:{up}",
            "PYTHONPATH": os.pathsep.join([str(c.HERE), os.environ.get("PYTHONPATH", "")]),
        }
        ports = {"direct": up}
        servers: list[tuple[str, str, dict[str, str]]] = [("direct", "bare", {}), ("forward floor", "forward", {})]
        for arm_name, fsync in (("seedtape", "background"), ("seedtape --fsync always", "always")):
            settings = Settings(
                mode="record",
                upstream=f"http://127.0.0.1:{up}",
                cassettes_dir=tmpdir / fsync,
                cassette="rec",
                cache_dir=tmpdir / f"cache-{fsync}",
                session="bench",
                fsync=fsync,
            )
            servers.append((arm_name, "seedtape", {"SEEDTAPE_SETTINGS_JSON": settings.to_env()}))
        for arm_name, app, extra in servers:
            port = up if arm_name == "direct" else c.free_port()
            ports[arm_name] = port
            stack.enter_context(
                c.server_process(
                    [c.PYTHON, str(c.HERE / "_serve.py"), app, str(port), "1"],
                    f"http://127.0.0.1:{port}/_seedtape/health",
                    {**env, **extra},
                )
            )
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

        for name in ARMS:
            arm(ports[name], 20)  # warm-up
        times: dict[str, list[float]] = {name: [] for name in ARMS}
        for _ in range(args.rounds):
            for name in ARMS:
                times[name] += arm(ports[name], args.requests)
        expected = 20 + args.rounds * args.requests
        throughput: dict[str, list[float]] = {}
        if args.concurrency:
            total = args.concurrency * max(1, (args.requests * 2) // args.concurrency)
            for _ in range(3):
                for name in ARMS:
                    throughput.setdefault(name, []).append(asyncio.run(_load(ports[name], args.concurrency, total, counter)))
            expected += 3 * total
        for fsync in ("background", "always"):
            files = len(list((tmpdir / fsync / "rec").glob("*.json")))
            assert files == expected, (fsync, files, expected)

    p50 = {name: c.median(times[name]) * 1000 for name in ARMS}
    p99 = {name: c.percentile(times[name], 0.99) * 1000 for name in ARMS}
    rows: list[Sequence[Any]] = []
    for name in ARMS:
        added = "" if name == "direct" else f"{p50[name] - p50['direct']:+.3f} ms"
        over_floor = f"{p50[name] - p50['forward floor']:+.3f} ms" if name.startswith("seedtape") else ""
        target = "<= +2 ms" if name == "seedtape" else ""
        rows.append((name, f"{p50[name]:.3f}", f"{p99[name]:.3f}", added, over_floor, target))
    print(
        f"record overhead: {args.rounds} rounds x {args.requests} requests per arm, each a new recording ({expected} files per seedtape arm)"
    )
    print(c.table(rows, ("arm", "p50 (ms)", "p99 (ms)", "added p50 vs direct", "vs forward floor", "target")))
    if throughput:
        rate = {name: c.median(values) for name, values in throughput.items()}
        print(f"\nthroughput: {args.concurrency} clients at once, each arm 3 times (median req/s)")
        print(
            c.table(
                [(name, f"{rate[name]:,.0f}", f"{rate[name] / rate['forward floor']:.2f}") for name in ARMS],
                ("arm", "req/s", "vs forward floor"),
            )
        )
    c.emit_json(args.json_out, {"latency": times, "throughput": throughput})


async def _load(port: int, clients: int, total: int, counter: Iterator[int]) -> float:
    """Requests per second with ``clients`` at once, every request a new recording."""
    import httpx

    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=clients)) as client:

        async def one_client(n: int) -> None:
            for _ in range(n):
                body = json.dumps(c.request_body(next(counter)), separators=(",", ":"))
                answer = await client.post(f"http://127.0.0.1:{port}{PATH}", content=body, headers={"content-type": "application/json"})
                answer.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(one_client(total // clients) for _ in range(clients)))
        return total / (time.perf_counter() - started)


if __name__ == "__main__":
    main()
