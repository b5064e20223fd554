"""In-process replay through the real openai SDK: seedtape vs vcrpy vs the floor.

Three arms, one process, the same interactions (chat completions), cassettes of 10,
1,000 and 10,000 recordings:

* floor    -- the SDK (its default httpx2 stack) answered by a transport that returns
              fixed bytes, no lookup at all: what any in-process replay can reach;
* seedtape -- ``client_shim.InProcessProxy(mode="replay").openai()``: the SDK's
              httpx2 client on seedtape's in-process transport, no port;
* seedtape async -- ``InProcessProxy.async_openai()`` (httpx2's ASGITransport), against
              an async floor (AsyncOpenAI on a fixed-bytes async transport);
* vcrpy    -- ``vcr.use_cassette`` as pytest-recording runs it (record_mode "none"),
              matching on method, scheme, host, port, path, query and body (the body
              is what tells LLM requests apart), allow_playback_repeats. vcrpy 9.4
              patches ``httpx2.HTTPTransport`` itself, so the SDK keeps its default
              httpx2 client here too (checked at start).

Per-call cost is the median over calls that each ask for a recording picked uniformly
across the cassette; every arm's calls alternate with floor calls (the floor column of
its row), so the noise of this shared machine lands on both. "file read": before each call seedtape's in-memory tier and key
memo are emptied, so every call stats, reads, parses and encodes its file (a test
run's first replay of each recording); "repeat": the same calls again, warm. vcrpy's cassette load (the
whole file, at ``use_cassette``) is shown apart from its per-call cost.

    python bench/inprocess.py                     # 10, 1,000, 10,000
    python bench/inprocess.py --sizes 10,1000 --quick
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c

BASE = "http://127.0.0.1:9/v1"  # loopback discard port: nothing may ever leave the machine
URI = BASE + "/chat/completions"


def write_vcr_cassette(path: Path, n: int) -> float:
    import yaml

    started = time.perf_counter()
    interactions = []
    for i in range(n):
        interactions.append(
            {
                "request": {
                    "body": json.dumps(c.request_body(i)),
                    "headers": {"Content-Type": ["application/json"]},
                    "method": "POST",
                    "uri": URI,
                },
                "response": {
                    "status": {"code": 200, "message": "OK"},
                    "headers": {"content-type": ["application/json"]},
                    "body": {"string": json.dumps(c.response_body(i), separators=(",", ":"))},
                },
            }
        )
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    path.write_text(yaml.dump({"interactions": interactions, "version": 1}, Dumper=dumper))
    return time.perf_counter() - started


def sdk_client(http_client: Any = None) -> Any:
    import openai

    return openai.OpenAI(base_url=BASE, api_key="sk-bench", max_retries=0, http_client=http_client)


def call(client: Any, i: int) -> float:
    started = time.perf_counter()
    client.chat.completions.create(**c.request_body(i))
    return time.perf_counter() - started


def check(client: Any, i: int) -> None:
    content = client.chat.completions.create(**c.request_body(i)).choices[0].message.content
    if not content.endswith(f"(#{i})"):
        raise AssertionError(f"wrong answer for request {i}: {content[-20:]!r}")


def paired(floor: Any, client: Any, indices: list[int], budget_s: float, before: Any = None) -> tuple[list[float], list[float]]:
    """Floor and arm called alternately (order swapped every call), so the machine's
    noise lands on both alike; ``before`` runs untimed before each arm call."""
    floors: list[float] = []
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    gc.collect()
    for k, i in enumerate(indices):
        if k % 2:
            floors.append(call(floor, i))
        if before is not None:
            before()
        times.append(call(client, i))
        if not k % 2:
            floors.append(call(floor, i))
        if time.perf_counter() > deadline:
            break
    return floors, times


def emptier(proxy: Any) -> Any:
    """Empties seedtape's in-memory tier and key memo: the next call stats, reads,
    parses and encodes its file -- a test run's first replay of a recording,
    measurable at any cassette size."""
    from seedtape import exchange
    from seedtape.store import _LRU

    store = proxy._sync_app.state.engine.store

    def empty() -> None:
        store._memory = _LRU(4096)
        getattr(exchange, "_memo", {}).clear()

    return empty


def async_arms(tmp: Path, cassette: str, indices: list[int]) -> tuple[list[float], list[float]]:
    """AsyncOpenAI: seedtape's in-process async client vs an async fixed-bytes floor (warm)."""
    import asyncio

    import httpx2
    import openai

    from client_shim import InProcessProxy

    body = json.dumps(c.response_body(0), separators=(",", ":")).encode()

    class FixedBytes(httpx2.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
            await request.aread()
            return httpx2.Response(200, headers=[("content-type", "application/json")], content=body, request=request)

    async def timed(client: Any, i: int) -> float:
        started = time.perf_counter()
        await client.chat.completions.create(**c.request_body(i))
        return time.perf_counter() - started

    async def both() -> tuple[list[float], list[float]]:
        floor = openai.AsyncOpenAI(base_url=BASE, api_key="sk-bench", max_retries=0, http_client=httpx2.AsyncClient(transport=FixedBytes()))
        proxy = InProcessProxy(mode="replay", cassettes_dir=tmp / "cassettes", cassette=cassette, cache_dir=tmp / f"cache-async-{cassette}")
        seedtape = proxy.async_openai()
        for i in indices:  # every recording read once
            await timed(seedtape, i)
        floors, times = [], []
        gc.collect()
        for k, i in enumerate(indices):
            pair = (floor, seedtape) if k % 2 else (seedtape, floor)
            first, second = await timed(pair[0], i), await timed(pair[1], i)
            floors.append(first if pair[0] is floor else second)
            times.append(second if pair[0] is floor else first)
        return floors, times

    return asyncio.run(both())


def floor_client() -> Any:
    import httpx2

    body = json.dumps(c.response_body(0), separators=(",", ":")).encode()

    class FixedBytes(httpx2.BaseTransport):
        def handle_request(self, request: httpx2.Request) -> httpx2.Response:
            request.read()
            return httpx2.Response(200, headers=[("content-type", "application/json")], content=body, request=request)

    return sdk_client(httpx2.Client(transport=FixedBytes()))


def bench_size(
    n: int, tmp: Path, calls: int, vcr_calls: int, vcr_budget: float, rng: random.Random, no_vcr: bool = False
) -> dict[str, Any]:
    from client_shim import InProcessProxy

    c.make_cassette(tmp / "cassettes", f"n{n}", n)
    indices = [rng.randrange(n) for _ in range(calls)]
    distinct = list(dict.fromkeys(indices))
    out: dict[str, Any] = {"n": n}

    floor = floor_client()
    for i in indices[:50]:
        call(floor, i)

    started = time.perf_counter()
    proxy = InProcessProxy(mode="replay", cassettes_dir=tmp / "cassettes", cassette=f"n{n}", cache_dir=tmp / f"cache{n}")
    client = proxy.openai()
    out["seedtape_start_s"] = time.perf_counter() - started
    check(client, distinct[0])
    out["floor_seedtape_cold"], out["seedtape_cold"] = paired(floor, client, indices, 60, emptier(proxy))
    paired(floor, client, indices, 60)
    out["floor_seedtape_warm"], out["seedtape_warm"] = paired(floor, client, indices, 60)
    proxy.close()

    out["floor_seedtape_async"], out["seedtape_async"] = async_arms(tmp, f"n{n}", indices)

    if no_vcr or not has_vcr():
        return out
    import vcr

    cassette = tmp / f"vcr{n}.yaml"
    out["vcr_write_s"] = write_vcr_cassette(cassette, n)
    recorder = vcr.VCR(record_mode="none", match_on=["method", "scheme", "host", "port", "path", "query", "body"])
    vclient = sdk_client()
    started = time.perf_counter()
    with recorder.use_cassette(str(cassette), allow_playback_repeats=True) as cass:
        out["vcr_load_s"] = time.perf_counter() - started
        check(vclient, indices[0])
        out["floor_vcr"], out["vcr"] = paired(floor, vclient, [rng.randrange(n) for _ in range(vcr_calls)], vcr_budget)
        out["vcr_played"] = cass.play_count
    return out


def has_vcr() -> bool:
    try:
        import vcr.patch as vp
    except ImportError:
        return False
    if not getattr(vp, "_Httpx2HttpTransport_handle_request", None):
        sys.exit("this vcrpy does not patch httpx2: install vcrpy >= 9.4 (or give the SDK a legacy httpx client)")
    return True


def report(results: list[dict[str, Any]]) -> None:
    rows = []
    arms = (
        ("seedtape_cold", "seedtape, file read"),
        ("seedtape_warm", "seedtape, repeat"),
        ("vcr", "vcrpy"),
        ("seedtape_async", "seedtape async, repeat"),
    )
    for r in results:
        for arm, label in arms:
            if arm not in r:
                continue
            ms, floor = c.median(r[arm]) * 1000, c.median(r["floor_" + arm]) * 1000
            rows.append(
                (
                    f"{r['n']:,}",
                    label,
                    f"{ms:.3f}",
                    f"{floor:.3f}",
                    f"{ms / floor:.2f}x",
                    len(r[arm]),
                    f"{c.percentile(r[arm], 0.99) * 1000:.3f}",
                )
            )
    print(c.table(rows, ("recordings", "arm", "ms/call p50", "floor ms", "vs floor", "calls", "ms p99")))
    print()
    print(
        c.table(
            [(f"{r['n']:,}", f"{r['seedtape_start_s'] * 1000:.1f}", f"{r.get('vcr_load_s', float('nan')) * 1000:.1f}") for r in results],
            ("recordings", "seedtape start (ms)", "vcrpy cassette load (ms)"),
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,1000,10000")
    parser.add_argument("--calls", type=int, default=400, help="timed calls per seedtape/floor arm")
    parser.add_argument("--vcr-calls", type=int, default=200)
    parser.add_argument("--vcr-budget", type=float, default=15.0, help="seconds of vcrpy calls per size at most")
    parser.add_argument("--no-vcr", action="store_true", help="leave the vcrpy arm out")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", dest="json_out", default=None)
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.calls, args.vcr_calls, args.vcr_budget = "10,200", 40, 20, 3.0

    import openai

    vcr_version = __import__("vcr").__version__ if has_vcr() else "not installed (pip install '.[bench]'): arm skipped"
    print(f"in-process replay, openai {openai.__version__}, vcrpy {vcr_version}, SDK stack httpx2")
    rng = random.Random(7)
    results = []
    with tempfile.TemporaryDirectory(prefix="seedtape-bench-") as tmp:
        for n in [int(s) for s in args.sizes.split(",")]:
            results.append(bench_size(n, Path(tmp), args.calls, args.vcr_calls, args.vcr_budget, rng, args.no_vcr))
            print(f"  {n:,} recordings done", file=sys.stderr)
    report(results)
    c.emit_json(args.json_out, results)


if __name__ == "__main__":
    main()
