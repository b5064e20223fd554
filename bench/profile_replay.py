"""Profile the replay hot path with pyinstrument (a bench extra).

    python bench/profile_replay.py app         # the ASGI app alone, driven in a loop (HTTP replay's own cost)
    python bench/profile_replay.py inprocess   # the SDK through InProcessProxy (sync)
    python bench/profile_replay.py cold        # first lookups: index empty, every call reads its file

Prints pyinstrument's call tree (``--html FILE`` for the interactive page) and the
median per-call time without the profiler, next to a bare Starlette app answering the
same bytes through the same driver.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c

from seedtape.app import create_app
from seedtape.client.loop import call_asgi
from seedtape.config import Settings

PATH = b"/v1/chat/completions"


def drive(app, bodies: list[bytes], rounds: int) -> list[float]:
    async def run() -> list[float]:
        times = []
        headers = [(b"content-type", b"application/json"), (b"host", b"127.0.0.1")]
        for _ in range(rounds):
            for body in bodies:
                started = time.perf_counter()
                status, _, _ = await call_asgi(app, "POST", "http", "127.0.0.1", 80, PATH, b"", headers, body)
                times.append(time.perf_counter() - started)
                assert status == 200, status
        return times

    return asyncio.run(run())


def bare(body: bytes, headers: list[tuple[str, str]]):
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    async def answer(request):
        await request.body()
        return Response(body, headers=dict(headers))

    return Starlette(routes=[Route("/{path:path}", answer, methods=["POST"])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["app", "inprocess", "cold"])
    parser.add_argument("--recordings", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--html", default=None)
    parser.add_argument("--no-profile", action="store_true")
    args = parser.parse_args()
    from pyinstrument import Profiler

    with tempfile.TemporaryDirectory(prefix="seedtape-prof-") as tmp:
        root = Path(tmp)
        c.make_cassette(root / "cassettes", "bench", args.recordings)
        settings = Settings(
            mode="replay",
            upstream="http://127.0.0.1:9",
            cassettes_dir=root / "cassettes",
            cassette="bench",
            cache_dir=root / "cache",
            session="prof",
        )
        n = min(args.recordings, args.calls)
        bodies = [json.dumps(c.request_body(i)).encode() for i in range(n)]
        profiler = Profiler(interval=0.0002)
        if args.what == "app":
            app = create_app(settings)
            drive(app, bodies[:100], 2)
            base = drive(app, bodies[:100], max(1, args.calls // 100))
            # the bare app answers one recorded answer's bytes
            one = asyncio.run(
                call_asgi(app, "POST", "http", "127.0.0.1", 80, PATH, b"", [(b"content-type", b"application/json")], bodies[0])
            )
            bapp = bare(one[2], [(k.decode(), v.decode()) for k, v in one[1] if k != b"content-length"])
            drive(bapp, bodies[:100], 2)
            bare_times = drive(bapp, bodies[:100], max(1, args.calls // 100))
            print(
                f"app per call p50 {c.median(base) * 1e6:.0f} us vs bare Starlette {c.median(bare_times) * 1e6:.0f} us "
                f"(+{(c.median(base) - c.median(bare_times)) * 1e6:.0f} us)"
            )
            if not args.no_profile:
                with profiler:
                    drive(app, bodies[:100], max(1, args.calls // 100))
        else:
            from inprocess import call, floor_client

            from client_shim import InProcessProxy

            proxy = InProcessProxy(settings)
            client = proxy.openai()
            floor = floor_client()
            for i in range(50):
                call(floor, i)
            f = [call(floor, i % n) for i in range(min(args.calls, 1000))]
            if args.what == "cold":
                with profiler:
                    t = [call(client, i) for i in range(n)]
            else:
                for i in range(min(n, 100)):
                    call(client, i)
                t = [call(client, i % 100) for i in range(args.calls)]
                if not args.no_profile:
                    with profiler:
                        [call(client, i % 100) for i in range(args.calls)]
            print(
                f"in-process {args.what} p50 {c.median(t) * 1e6:.0f} us vs floor {c.median(f) * 1e6:.0f} us "
                f"({c.median(t) / c.median(f):.2f}x)"
            )
            proxy.close()
        if not args.no_profile:
            print(profiler.output_text(unicode=True, color=False, show_all=False))
            if args.html:
                Path(args.html).write_text(profiler.output_html())


if __name__ == "__main__":
    main()
