"""Fallback load generator when ``wrk`` cannot be installed: run as its own process.

    python bench/_loadgen.py URL_PATH PORT BODIES.json CONNECTIONS SECONDS [MAX_REQUESTS]

Keep-alive HTTP/1.1 over asyncio streams, one task per connection, bounded by time
and by count. Prints one JSON line: rps, p50_ms, p99_ms, requests, errors.
It is slower than wrk (Python), so its figures understate both servers alike.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time


async def connection(
    port: int, requests: list[bytes], deadline: float, budget: list[int], latencies: list[float], errors: list[int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = 0
    try:
        while time.perf_counter() < deadline and budget[0] > 0:
            budget[0] -= 1
            started = time.perf_counter()
            writer.write(requests[i % len(requests)])
            i += 1
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            chunked = False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"transfer-encoding" and b"chunked" in value.lower():
                    chunked = True
            if chunked:
                while True:
                    size = int((await reader.readuntil(b"\r\n")).strip(), 16)
                    await reader.readexactly(size + 2)
                    if size == 0:
                        break
            else:
                await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if not 200 <= status < 300:
                errors[0] += 1
    finally:
        writer.close()


async def main() -> None:
    path, port, bodies_file, conns, seconds = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
    max_requests = int(sys.argv[6]) if len(sys.argv) > 6 else 10_000_000
    with open(bodies_file, encoding="utf-8") as handle:
        bodies = json.load(handle)
    requests = [
        (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {len(b.encode())}\r\n\r\n"
        ).encode()
        + b.encode()
        for b in bodies
    ]
    latencies: list[float] = []
    errors = [0]
    budget = [max_requests]
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*(connection(port, requests[c:] + requests[:c], deadline, budget, latencies, errors) for c in range(conns)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else float("nan")  # noqa: E731
    print(
        json.dumps(
            {"rps": len(latencies) / elapsed, "p50_ms": pick(0.5), "p99_ms": pick(0.99), "requests": len(latencies), "errors": errors[0]}
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
