"""HTTP replay vs the limit: seedtape serving replay hits vs a bare Starlette app.

Both run under uvicorn with identical settings (``bench/_serve.py``) in their own
process; the load comes from ``wrk`` in another process (installed with apt-get if
missing; a Python load generator in a subprocess otherwise). The bare app reads the
request body and answers the very bytes and headers seedtape's replay answers.

    python bench/http_replay.py                 # default: 1,000 recordings, 3 rounds
    python bench/http_replay.py --workers 1,2   # scaling with uvicorn --workers
    python bench/http_replay.py --quick         # a few seconds, for the smoke test

Throughput: ``-c 16`` connections; latency: one connection (p50 there is the latency a
single client sees, so "added p50" is seedtape's own cost per request).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c

from seedtape.config import Settings

PATH = "/v1/chat/completions"


def ensure_wrk() -> str | None:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk missing: apt-get install wrk ...", file=sys.stderr)
        subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True, timeout=300)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, capture_output=True, timeout=300)
    return shutil.which("wrk")


def wrk_script(bodies: list[str], folder: Path) -> Path:
    entries = ",\n".join(f"[==[{b}]==]" for b in bodies)
    script = folder / "bodies.lua"
    script.write_text(
        "local bodies = {\n" + entries + "\n}\nlocal i = 0\n"
        "request = function()\n  i = i + 1\n"
        f'  return wrk.format("POST", "{PATH}", {{["Content-Type"] = "application/json"}}, bodies[(i % #bodies) + 1])\nend\n'
    )
    return script


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * _UNITS[unit]


def run_wrk(wrk: str, script: Path, port: int, conns: int, seconds: float) -> dict[str, float]:
    out = subprocess.run(
        [wrk, "-t1", f"-c{conns}", f"-d{max(1, round(seconds))}s", "--latency", "-s", str(script), f"http://127.0.0.1:{port}"],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.M))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    if bad or errors:
        raise RuntimeError(f"load run had errors:\n{out}")
    return {"rps": rps, "p50_ms": _ms(lat["50"]), "p99_ms": _ms(lat["99"])}


def run_python(bodies_file: Path, port: int, conns: int, seconds: float) -> dict[str, float]:
    out = subprocess.run(
        [c.PYTHON, str(c.HERE / "_loadgen.py"), PATH, str(port), str(bodies_file), str(conns), str(seconds)],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    result = json.loads(out)
    if result["errors"]:
        raise RuntimeError(f"load run had {result['errors']} non-2xx answers")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recordings", type=int, default=1000)
    parser.add_argument("--keys", type=int, default=100, help="distinct requests the load cycles through")
    parser.add_argument("--seconds", type=float, default=3.0, help="per load run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating seedtape/bare rounds; medians reported")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", default="1", help="comma list, e.g. 1,2")
    parser.add_argument("--uvicorn", default="{}", help='extra uvicorn options as JSON, e.g. {"loop": "uvloop", "http": "httptools"}')
    parser.add_argument("--loadgen", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one short round (smoke test)")
    parser.add_argument("--json", dest="json_out", default=None, help="also write the figures here")
    args = parser.parse_args()
    if args.quick:
        args.recordings, args.keys, args.seconds, args.rounds = 10, 10, 1.0, 1
    workers = [int(w) for w in args.workers.split(",")]

    wrk = ensure_wrk() if args.loadgen in ("auto", "wrk") else None
    if args.loadgen == "wrk" and not wrk:
        sys.exit("wrk not available")
    loadgen = "wrk" if wrk else "python (wrk unavailable)"

    with tempfile.TemporaryDirectory(prefix="seedtape-bench-") as tmp:
        tmpdir = Path(tmp)
        made = c.make_cassette(tmpdir / "cassettes", "bench", args.recordings)
        keys = min(args.keys, args.recordings)
        bodies = [json.dumps(c.request_body(i * (args.recordings // keys)), separators=(",", ":")) for i in range(keys)]
        bodies_file = tmpdir / "bodies.json"
        bodies_file.write_text(json.dumps(bodies))
        script = wrk_script(bodies, tmpdir)
        settings = Settings(
            mode="replay",
            upstream="http://127.0.0.1:9",
            cassettes_dir=tmpdir / "cassettes",
            cassette="bench",
            cache_dir=tmpdir / "cache",
            session="bench",
        )
        env = {
            "SEEDTAPE_SETTINGS_JSON": settings.to_env(),
            "BENCH_BARE_SPEC": str(tmpdir / "bare.json"),
            "PYTHONPATH": os.pathsep.join([str(c.HERE), os.environ.get("PYTHONPATH", "")]),
        }

        def load(port: int, conns: int) -> dict[str, float]:
            if wrk:
                return run_wrk(wrk, script, port, conns, args.seconds)
            return run_python(bodies_file, port, conns, args.seconds)

        print(
            f"HTTP replay: {args.recordings} recordings ({made:.1f}s to write), {keys} distinct requests, load from {loadgen}, "
            f"{args.rounds} round(s) of {args.seconds:.0f}s, uvicorn options {args.uvicorn}"
        )
        results: dict[str, dict[str, list[dict[str, float]]]] = {}
        for w in workers:
            ports = {"seedtape": c.free_port(), "bare": c.free_port()}
            procs = {}
            import contextlib

            with contextlib.ExitStack() as stack:
                for name in ("seedtape", "bare"):
                    if name == "bare":
                        _write_bare_spec(ports["seedtape"], bodies[0], tmpdir / "bare.json")
                    procs[name] = stack.enter_context(
                        c.server_process(
                            [c.PYTHON, str(c.HERE / "_serve.py"), name, str(ports[name]), str(w), args.uvicorn],
                            f"http://127.0.0.1:{ports[name]}/_seedtape/health",
                            env,
                        )
                    )
                for name in ("seedtape", "bare") if not args.quick else ():  # warm-up: index filled, code paths hot
                    (
                        run_wrk(wrk, script, ports[name], args.connections, 1.0)
                        if wrk
                        else run_python(bodies_file, ports[name], args.connections, 1.0)
                    )
                runs: dict[str, list[dict[str, float]]] = {"seedtape": [], "bare": [], "seedtape_1c": [], "bare_1c": []}
                for _ in range(args.rounds):
                    for name in ("seedtape", "bare"):
                        runs[name].append(load(ports[name], args.connections))
                    if w == workers[0]:
                        for name in ("seedtape", "bare"):
                            runs[name + "_1c"].append(load(ports[name], 1))
                runs["rss_mb"] = [{"seedtape": c.tree_rss_mb(procs["seedtape"].pid), "bare": c.tree_rss_mb(procs["bare"].pid)}]
            results[str(w)] = runs

        report(results, workers, args.connections)
        c.emit_json(args.json_out, results)


def _write_bare_spec(seedtape_port: int, body: str, path: Path) -> None:
    """The bare app answers what seedtape answers: same body bytes, same headers."""
    import httpx

    answer = httpx.post(f"http://127.0.0.1:{seedtape_port}{PATH}", content=body, headers={"content-type": "application/json"})
    answer.raise_for_status()
    assert answer.headers["x-seedtape-cache"] == "hit", answer.headers
    headers = [(k, v) for k, v in answer.headers.items() if k not in ("date", "server", "content-length")]
    path.write_text(json.dumps({"body_hex": answer.content.hex(), "headers": headers}))


def report(results: dict[str, dict[str, list[dict[str, float]]]], workers: list[int], conns: int) -> None:
    med = lambda runs, field: c.median([r[field] for r in runs])  # noqa: E731
    first = results[str(workers[0])]
    rows = []
    s, b = med(first["seedtape"], "rps"), med(first["bare"], "rps")
    rows.append((f"throughput, {conns} conns, {workers[0]} worker(s) (req/s)", f"{s:,.0f}", f"{b:,.0f}", f"{s / b:.2f}", ">= 0.60"))
    for field in ("p50_ms", "p99_ms"):
        s, b = med(first["seedtape_1c"], field), med(first["bare_1c"], field)
        rows.append(
            (f"latency {field[:3]}, 1 conn (ms)", f"{s:.3f}", f"{b:.3f}", f"{s - b:+.3f} ms", "<= +1 ms" if field == "p50_ms" else "")
        )
    for field in ("p50_ms", "p99_ms"):
        s, b = med(first["seedtape"], field), med(first["bare"], field)
        rows.append((f"latency {field[:3]}, {conns} conns (ms)", f"{s:.3f}", f"{b:.3f}", f"{s / b:.2f}", ""))
    for w in workers[1:]:
        runs = results[str(w)]
        s, b = med(runs["seedtape"], "rps"), med(runs["bare"], "rps")
        s1 = med(first["seedtape"], "rps")
        rows.append((f"throughput, {w} workers (req/s)", f"{s:,.0f}", f"{b:,.0f}", f"{s / b:.2f}", f"{s / s1:.2f}x of 1 worker"))
    for w in workers:
        rss = results[str(w)]["rss_mb"][0]
        rows.append(
            (f"RSS, {w} worker(s) (MB)", f"{rss['seedtape']:.0f}", f"{rss['bare']:.0f}", f"{rss['seedtape'] / rss['bare']:.2f}", "")
        )
    print(c.table(rows, ("metric", "seedtape", "bare app", "ratio / added", "target")))


if __name__ == "__main__":
    main()
