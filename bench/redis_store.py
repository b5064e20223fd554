"""Teams: what the shared store costs and what it saves, against baselines in the same run.

Latency (one client, keep-alive, one request at a time; arms interleaved in rounds so
the machine's noise falls on all of them alike; every server under uvicorn in its own
process, Redis on loopback):

* ``bare app``: a Starlette app answering the same bytes (the floor of any HTTP server);
* ``local hit``: seedtape replay, the cassette file present, no store;
* ``local hit, --store``: the same with the store configured (a local hit never asks Redis);
* ``store hit``: seedtape replay with an empty cassette folder: every answer comes from Redis.

Target (issue 15): a store hit adds at most 0.5 ms p50 over a local hit.

Recording (every request a new key, upstream = the bare app): record mode without and
with the store, where a recording also takes the key's fleet write lock, reads the
team's copy, and publishes the file (four round trips).

Fleet single-flight: three proxies on one Redis, bursts of 200 identical concurrent
misses spread over them (request i to proxy i mod 3), against an upstream that takes
``--upstream-delay`` seconds and counts its calls; baseline: the same three proxies
without a store (each single-flights on its own). Memory: what one recording costs in
Redis (value size, ``MEMORY USAGE``, and ``used_memory`` growth per recording).

    python bench/redis_store.py            # 2,000 requests per arm and round, 3 rounds, 3 bursts
    python bench/redis_store.py --quick    # smoke run

Needs Debian's redis-server on PATH (apt-get install redis-server).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
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
KEYS = 200
ARMS = ("bare app", "local hit", "local hit, --store", "store hit")
RECORD_ARMS = ("record, no store", "record, --store")


def counting_upstream() -> Any:
    """The fleet benchmark's upstream: answers a chat completion after a delay, counts calls."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    delay = float(os.environ.get("BENCH_UPSTREAM_DELAY", "0.3"))
    calls = {"n": 0}

    async def answer(request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse({"calls": calls["n"]})
        await request.body()
        calls["n"] += 1
        await asyncio.sleep(delay)
        return JSONResponse(c.response_body(calls["n"]))

    return Starlette(routes=[Route("/{path:path}", answer, methods=["GET", "POST"])])


@contextlib.contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server not found: apt-get install redis-server")
    port = c.free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder), "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        import redis

        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=port).ping()
                break
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="per arm and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bursts", type=int, default=3, help="fleet single-flight bursts per arm")
    parser.add_argument("--burst-size", type=int, default=200)
    parser.add_argument("--upstream-delay", type=float, default=0.3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", dest="json_out", default=None)
    args = parser.parse_args()
    if args.quick:
        args.requests, args.rounds, args.bursts, args.burst_size = 100, 1, 1, 30
    with tempfile.TemporaryDirectory(prefix="seedtape-bench-redis-") as tmp, contextlib.ExitStack() as stack:
        tmpdir = Path(tmp)
        url = stack.enter_context(redis_server(tmpdir))
        memory = measure_memory(url, tmpdir)
        times = measure_latency(url, tmpdir, args, stack)
        fleet = measure_fleet(url, tmpdir, args, stack)
    report(args, times, fleet, memory)
    c.emit_json(args.json_out, {"latency": times, "fleet": fleet, "memory": memory})


# --------------------------------------------------------------------------- memory


def measure_memory(url: str, tmpdir: Path) -> dict[str, float]:
    """Push KEYS recordings and read what they cost in Redis."""
    import redis

    from seedtape.commands.sync import run_sync

    c.make_cassette(tmpdir / "local", "bench", KEYS)
    client = redis.Redis.from_url(url)
    before = int(client.info("memory")["used_memory"])
    result = run_sync("push", url, "bench", tmpdir / "local", None)
    assert result.new == KEYS, result.summary()
    after = int(client.info("memory")["used_memory"])
    names = client.keys("seedtape:bench:rec:*")
    files = [p.stat().st_size for p in (tmpdir / "local" / "bench").glob("*.json")]
    return {
        "file_bytes": statistics.mean(files),
        "value_bytes": statistics.mean(int(client.strlen(n)) for n in names),
        "memory_usage": statistics.mean(int(client.memory_usage(n, samples=0) or 0) for n in names),
        "used_memory_per_recording": (after - before) / KEYS,
    }


# --------------------------------------------------------------------------- latency


def seedtape_env(url: str | None, cassettes: Path, tmpdir: Path, name: str, **extra: Any) -> dict[str, str]:
    settings = Settings(
        mode=extra.pop("mode", "replay"),
        upstream=extra.pop("upstream", "http://127.0.0.1:9"),
        cassettes_dir=cassettes,
        cassette="bench",
        cache_dir=tmpdir / f"cache-{name}",
        session=f"bench-{name}",
        store=url or "",
        namespace=extra.pop("namespace", "bench"),
        **extra,
    )
    return {"SEEDTAPE_SETTINGS_JSON": settings.to_env()}


def start(stack: contextlib.ExitStack, app: str, env: dict[str, str]) -> int:
    port = c.free_port()
    health = f"http://127.0.0.1:{port}/_seedtape/health"
    pythonpath = os.pathsep.join([str(c.HERE), os.environ.get("PYTHONPATH", "")])
    stack.enter_context(
        c.server_process([c.PYTHON, str(c.HERE / "_serve.py"), app, str(port), "1"], health, {**env, "PYTHONPATH": pythonpath})
    )
    return port


def measure_latency(url: str, tmpdir: Path, args: argparse.Namespace, stack: contextlib.ExitStack) -> dict[str, list[float]]:
    import httpx

    spec = tmpdir / "bare.json"
    spec.write_text(
        json.dumps(
            {
                "body_hex": json.dumps(c.response_body(0), separators=(",", ":")).encode().hex(),
                "headers": [["content-type", "application/json"]],
            }
        )
    )
    (tmpdir / "empty").mkdir()
    ports = {
        "bare app": start(stack, "bare", {"BENCH_BARE_SPEC": str(spec)}),
        "local hit": start(stack, "seedtape", seedtape_env(None, tmpdir / "local", tmpdir, "local")),
        "local hit, --store": start(stack, "seedtape", seedtape_env(url, tmpdir / "local", tmpdir, "local-store")),
        "store hit": start(stack, "seedtape", seedtape_env(url, tmpdir / "empty", tmpdir, "store")),
    }
    bodies = [json.dumps(c.request_body(i), separators=(",", ":")).encode() for i in range(KEYS)]
    client = stack.enter_context(httpx.Client(timeout=30))

    def arm(name: str, n: int) -> list[float]:
        times = []
        for i in range(n):
            t = time.perf_counter()
            answer = client.post(
                f"http://127.0.0.1:{ports[name]}{PATH}", content=bodies[i % KEYS], headers={"content-type": "application/json"}
            )
            times.append(time.perf_counter() - t)
            answer.raise_for_status()
            if name.endswith("hit") and i < KEYS:
                assert answer.headers["x-seedtape-cache"] == "hit"
        return times

    for name in ARMS:
        arm(name, KEYS)  # warm-up: every key once
    assert not list((tmpdir / "empty").rglob("*.json")), "a store hit writes no cassette file"
    bare = f"http://127.0.0.1:{ports['bare app']}"
    for name in RECORD_ARMS:
        store = url if "--store" in name else None
        folder = name.replace(" ", "_").replace(",", "")
        ports[name] = start(stack, "seedtape", seedtape_env(store, tmpdir / folder, tmpdir, folder, mode="record", upstream=bare))
    fresh = iter(range(10**5, 10**9))

    def record(name: str, n: int) -> list[float]:
        times = []
        for _ in range(n):
            body = json.dumps(c.request_body(next(fresh)), separators=(",", ":")).encode()
            t = time.perf_counter()
            answer = client.post(f"http://127.0.0.1:{ports[name]}{PATH}", content=body, headers={"content-type": "application/json"})
            times.append(time.perf_counter() - t)
            assert answer.headers["x-seedtape-cache"] == "recorded", answer.text[:200]
        return times

    for name in RECORD_ARMS:
        record(name, 20)  # warm-up
    times: dict[str, list[float]] = {name: [] for name in (*ARMS, *RECORD_ARMS)}
    for _ in range(args.rounds):
        for name in ARMS:
            times[name] += arm(name, args.requests)
        for name in RECORD_ARMS:
            times[name] += record(name, max(10, args.requests // 4))
    return times


# --------------------------------------------------------------------------- fleet


def measure_fleet(url: str, tmpdir: Path, args: argparse.Namespace, stack: contextlib.ExitStack) -> dict[str, list[dict[str, float]]]:
    import httpx

    up = c.free_port()
    env = {"BENCH_UPSTREAM_DELAY": str(args.upstream_delay), "PYTHONPATH": os.pathsep.join([str(c.HERE), os.environ.get("PYTHONPATH", "")])}
    command = [c.PYTHON, "-m", "uvicorn", "--factory", "redis_store:counting_upstream", "--port", str(up), "--log-level", "warning"]
    stack.enter_context(c.server_process(command, f"http://127.0.0.1:{up}/count", env))
    upstream = f"http://127.0.0.1:{up}"
    results: dict[str, list[dict[str, float]]] = {}
    for label, store in (("3 proxies, --store", url), ("3 proxies, no store", None)):
        ports = [
            start(
                stack,
                "seedtape",
                seedtape_env(
                    store,
                    tmpdir / f"fleet-{label[-5:]}-{i}",
                    tmpdir,
                    f"fleet-{i}-{bool(store)}",
                    mode="auto",
                    upstream=upstream,
                    namespace="fleet",
                ),
            )
            for i in range(3)
        ]
        results[label] = []
        for burst in range(args.bursts):
            body = json.dumps(c.request_body(10**6 + burst + (0 if store else 1000)), separators=(",", ":")).encode()
            before = httpx.get(upstream + "/count").json()["calls"]
            started = time.perf_counter()
            statuses = asyncio.run(_burst(ports, body, args.burst_size))
            took = time.perf_counter() - started
            assert statuses == [200] * args.burst_size, statuses
            calls = httpx.get(upstream + "/count").json()["calls"] - before
            results[label].append({"upstream_calls": calls, "seconds": took})
    return results


async def _burst(ports: list[int], body: bytes, n: int) -> list[int]:
    import httpx

    limits = httpx.Limits(max_connections=n, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def one(i: int) -> int:
            answer = await client.post(
                f"http://127.0.0.1:{ports[i % len(ports)]}{PATH}", content=body, headers={"content-type": "application/json"}
            )
            return answer.status_code

        return list(await asyncio.gather(*(one(i) for i in range(n))))


# --------------------------------------------------------------------------- report


def report(
    args: argparse.Namespace, times: dict[str, list[float]], fleet: dict[str, list[dict[str, float]]], memory: dict[str, float]
) -> None:
    p50 = {name: c.median(times[name]) * 1000 for name in ARMS}
    p99 = {name: c.percentile(times[name], 0.99) * 1000 for name in ARMS}
    rows: list[Sequence[Any]] = []
    for name in ARMS:
        over_bare = f"{p50[name] - p50['bare app']:+.3f} ms" if name != "bare app" else ""
        over_local = f"{p50[name] - p50['local hit']:+.3f} ms" if name not in ("bare app", "local hit") else ""
        target = "<= +0.5 ms" if name == "store hit" else ""
        rows.append((name, f"{p50[name]:.3f}", f"{p99[name]:.3f}", over_bare, over_local, f"{p50[name] / p50['local hit']:.2f}", target))
    print(f"replay latency: {args.rounds} rounds x {args.requests} requests per arm, {KEYS} keys, Redis on loopback")
    print(c.table(rows, ("arm", "p50 (ms)", "p99 (ms)", "vs bare app", "vs local hit", "ratio to local hit", "target")))
    rec = {name: c.median(times[name]) * 1000 for name in RECORD_ARMS}
    print(f"\nrecording: {len(times[RECORD_ARMS[0]])} new recordings per arm")
    rec_rows = [
        (name, f"{rec[name]:.3f}", f"{rec[name] - rec[RECORD_ARMS[0]]:+.3f} ms" if name != RECORD_ARMS[0] else "") for name in RECORD_ARMS
    ]
    print(c.table(rec_rows, ("arm", "p50 (ms)", "vs no store")))
    print(
        f"\nfleet single-flight: {args.bursts} burst(s) of {args.burst_size} identical concurrent misses over 3 proxies, upstream takes {args.upstream_delay} s"
    )
    frows = []
    for label, bursts in fleet.items():
        calls = [int(b["upstream_calls"]) for b in bursts]
        frows.append(
            (
                label,
                ", ".join(map(str, calls)),
                f"{c.median([b['seconds'] for b in bursts]):.3f}",
                "1" if "store" in label and "no" not in label else "",
            )
        )
    print(c.table(frows, ("arm", "upstream calls per burst", "burst seconds (median)", "target")))
    print(f"\nmemory: one chat-completion recording ({KEYS} pushed)")
    print(
        c.table(
            [
                ("cassette file", f"{memory['file_bytes']:,.0f}"),
                ("Redis value (zlib of the file text)", f"{memory['value_bytes']:,.0f}"),
                ("MEMORY USAGE of its key", f"{memory['memory_usage']:,.0f}"),
                ("used_memory growth per recording", f"{memory['used_memory_per_recording']:,.0f}"),
            ],
            ("what", "bytes"),
        )
    )


if __name__ == "__main__":
    main()
