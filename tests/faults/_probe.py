"""The probe client of the event-loop fault tests, run as a process of its own.

It sends one recorded request every 10 ms on a kept-alive connection until its
stdin closes, then prints one JSON line: every latency in ms and every failure. A
latency is counted from when the request was due, not from when it could be sent:
a 100 ms stall is ten late requests (100, 90, ... 10 ms), not one (no "coordinated
omission", as wrk2 measures). A process of
its own, so that neither the attacks nor the simulator (both in the test process)
share an interpreter with it: what it measures is the proxy.

    python -m tests.faults._probe URL PATH BODY_JSON HEADERS_JSON
"""

from __future__ import annotations

import json
import sys
import threading
import time

import httpx

INTERVAL = 0.010


def main() -> None:
    url, path, body, headers = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    latencies: list[float] = []
    failures: list[str] = []
    with httpx.Client(base_url=url, timeout=30) as client:
        client.post(path, json=body, headers=headers)  # the connection is open before the first timed request
        print("ready", flush=True)
        first = time.perf_counter()
        tick = 0
        while not stop.is_set():
            due = first + tick * INTERVAL
            tick += 1
            time.sleep(max(0.0, due - time.perf_counter()))
            try:
                response = client.post(path, json=body, headers=headers)
                if response.status_code != 200 or response.headers.get("x-seedtape-cache") != "hit":
                    failures.append(f"{response.status_code} {response.headers.get('x-seedtape-cache')}")
            except httpx.HTTPError as exc:
                failures.append(f"{type(exc).__name__}: {exc}")
            latencies.append((time.perf_counter() - due) * 1000)
    print(json.dumps({"latencies_ms": latencies, "failures": failures}), flush=True)


if __name__ == "__main__":
    main()
