"""Scale: 100,000 (default) or 1,000,000 (``--scale 1000000``, opt-in) recordings in one
cassette, against a 10-recording cassette measured the same way in the same run.

For each size, in a fresh process: start-up (create the app and answer the first
replay), lookup p50/p99 over recordings picked at random across the cassette (the
in-memory tier emptied before each, so every lookup stats and reads its file), the same through the whole
app, one replay miss (its "closest recording" scan), resident memory after start and
after 20,000 distinct lookups; then disk used and how ``seedtape ls`` copes.

    python bench/scale.py                          # 100,000 (about a minute to generate)
    python bench/scale.py --scale 1000000 --dir /var/tmp/seedtape-1m --keep
    python bench/scale.py --quick                  # 500, for the smoke test

Generated cassettes are reused from ``--dir`` when a marker says they are complete.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c


def probe(root: Path, cassette: str, n: int, lookups: int, fill: int) -> dict[str, float]:
    """Runs in a fresh child process (``--probe``): everything measured from cold."""
    started = time.perf_counter()
    import asyncio

    from seedtape.app import create_app
    from seedtape.config import Settings

    imported = time.perf_counter()
    settings = Settings(
        mode="replay",
        upstream="http://127.0.0.1:9",
        cassettes_dir=root,
        cassette=cassette,
        cache_dir=root.parent / f"cache-{cassette}",
        session="scale",
    )
    app = create_app(settings)
    store = app.state.engine.store
    headers = [(b"content-type", b"application/json"), (b"host", b"127.0.0.1")]
    rng = random.Random(n)
    loop = asyncio.new_event_loop()

    def request(i: int) -> int:
        body = json.dumps(c.request_body(i)).encode()
        return loop.run_until_complete(c.asgi_post(app, b"/v1/chat/completions", headers, body))[0]

    assert request(rng.randrange(n)) == 200
    ready = time.perf_counter()
    out: dict[str, float] = {"import_s": imported - started, "startup_s": ready - imported, "rss_start_mb": c.rss_mb()}

    # Every timed lookup is a key's first (its file is read): with 10 recordings the
    # same keys come back, so the in-memory tier is emptied before each one.
    cold = type(store._memory)
    keys = [c.key_of(rng.randrange(n)) for _ in range(lookups)]
    times = []
    for key in keys:
        store._memory = cold(4096)
        t = time.perf_counter()
        assert store.load(cassette, key) is not None
        times.append(time.perf_counter() - t)
    out["lookup_p50_ms"], out["lookup_p99_ms"] = c.percentile(times, 0.5) * 1000, c.percentile(times, 0.99) * 1000
    picks = [rng.randrange(n) for _ in range(lookups)]
    times = []
    for i in picks:
        store._memory = cold(4096)
        t = time.perf_counter()
        assert request(i) == 200
        times.append(time.perf_counter() - t)
    out["request_p50_ms"], out["request_p99_ms"] = c.percentile(times, 0.5) * 1000, c.percentile(times, 0.99) * 1000
    t = time.perf_counter()
    assert request(n + 12345) == 404
    out["miss_ms"] = (time.perf_counter() - t) * 1000
    for i in rng.sample(range(n), min(n, fill)):
        store.load(cassette, c.key_of(i))
    out["rss_filled_mb"] = c.rss_mb()
    return out


def run_probe(root: Path, cassette: str, n: int, lookups: int, fill: int) -> dict[str, float]:
    out = subprocess.run(
        [c.PYTHON, __file__, "--probe", str(root), cassette, str(n), str(lookups), str(fill)], capture_output=True, text=True, timeout=900
    )
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_ls(root: Path, *extra: str) -> dict[str, float]:
    seedtape = Path(c.PYTHON).with_name("seedtape")
    t = time.perf_counter()
    try:
        out = subprocess.run([str(seedtape), "ls", "--cassettes", str(root), *extra], capture_output=True, text=True, timeout=300)
        lines = out.stdout.count("\n")
        tail = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else out.stderr.strip()[-200:]
    except subprocess.TimeoutExpired:
        lines, tail = -1, "timed out after 300 s"
    return {"s": time.perf_counter() - t, "lines": lines, "last": tail}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=100_000)
    parser.add_argument("--dir", default=None, help="where to generate (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the generated cassettes for another run")
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--fill", type=int, default=20_000, help="distinct lookups before the second RSS reading")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", dest="json_out", default=None)
    parser.add_argument("--probe", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        root, cassette, n, lookups, fill = args.probe
        print(json.dumps(probe(Path(root), cassette, int(n), int(lookups), int(fill))))
        return
    if args.quick:
        args.scale, args.lookups, args.fill = 500, 100, 500

    base = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="seedtape-scale-"))
    root = base / "cassettes"
    results = {}
    try:
        for n in (10, args.scale):
            name = f"n{n}"
            gen_s = c.make_cassette(root, name, n)
            print(f"  {n:,} recordings: {f'generated in {gen_s:.0f} s' if gen_s else 'reused'}", file=sys.stderr)
            r = run_probe(root, name, n, args.lookups, args.fill)
            r["generate_s"] = gen_s
            r["disk_mb"] = c.disk_usage_mb(root / name)
            results[n] = r
        ls_default = run_ls(root)
        ls_limited = run_ls(root, "--cassette", f"n{args.scale}", "--limit", "20")
    finally:
        if not args.keep and not args.dir:
            shutil.rmtree(base, ignore_errors=True)

    small, big = results[10], results[args.scale]
    rows = []
    for field, label, unit, target in (
        ("startup_s", "start-up: create app + first replay", "s", "< 1 s"),
        ("lookup_p50_ms", "lookup p50 (store, file read)", "ms", "< 1 ms"),
        ("lookup_p99_ms", "lookup p99 (store, file read)", "ms", "< 1 ms"),
        ("request_p50_ms", "replay request p50 (whole app, file read)", "ms", ""),
        ("request_p99_ms", "replay request p99 (whole app, file read)", "ms", ""),
        ("miss_ms", "one replay miss (closest-recording scan)", "ms", ""),
        ("rss_start_mb", "RSS after start", "MB", "< 150 MB"),
        ("rss_filled_mb", f"RSS after {args.fill:,} distinct lookups", "MB", "< 150 MB, flat"),
        ("disk_mb", "disk used by the cassette", "MB", ""),
        ("generate_s", "time to generate the cassette", "s", ""),
    ):
        fmt = "{:.3f}" if unit == "ms" else "{:.2f}" if unit == "s" else "{:.0f}"
        rows.append(
            (
                f"{label} ({unit})",
                fmt.format(big[field]),
                fmt.format(small[field]),
                c.ratio(big[field], small[field]) if small[field] else "",
                target,
            )
        )
    print(f"scale: {args.scale:,} recordings in one cassette vs 10 (python imports: {big['import_s']:.2f} s, not counted)")
    print(c.table(rows, ("metric", f"{args.scale:,}", "10", "ratio", "target")))
    print(f"seedtape ls (all cassettes): {ls_default['s']:.1f} s, {ls_default['lines']} lines; last: {ls_default['last']}")
    print(
        f"seedtape ls --cassette n{args.scale} --limit 20: {ls_limited['s']:.1f} s, {ls_limited['lines']} lines; last: {ls_limited['last']}"
    )
    c.emit_json(args.json_out, {"results": results, "ls": ls_default, "ls_limited": ls_limited})


if __name__ == "__main__":
    main()
