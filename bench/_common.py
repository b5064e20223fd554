"""Shared pieces of the benchmark scripts: sample recordings, cassette generation,
statistics, subprocess servers and memory readings.

Every script measures seedtape and its baseline in the same run, on the same machine,
and prints medians and ratios; absolute times on a shared 2-core box mean little alone.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable

from seedtape.cassette import Recording  # noqa: E402
from seedtape.key import make_key  # noqa: E402
from seedtape.routes import Target  # noqa: E402

OPENAI_CHAT = Target("openai", "chat/completions")
SYSTEM = "You always produce 3-sentence answers."
STORY = (
    "In the misty bamboo forests of the eastern Himalayas, a young red panda named Pemba discovered a hidden "
    "grove where the leaves shimmered like copper coins. Each evening she climbed the tallest fir to watch the "
    "lanterns of a distant village flicker on. One night a lost snow leopard cub wandered into her grove, and "
    "Pemba led him home along the ridge, earning a friend for life."
)


def request_body(i: int, *, stream: bool = False) -> dict[str, Any]:
    """The i-th distinct request: the seed notebook's red panda prompt, numbered."""
    body: dict[str, Any] = {
        "model": "gpt-4",
        "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": f"Create a story about red panda #{i}."}],
        "seed": 42,
        "temperature": 0.1,
    }
    if stream:
        body["stream"] = True
    return body


def response_body(i: int) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-bench{i:08d}",
        "object": "chat.completion",
        "created": 1717000000 + i,
        "model": "gpt-4-0613",
        "system_fingerprint": "fp_bench0001",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": f"{STORY} (#{i})"}, "logprobs": None, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 29, "completion_tokens": 74, "total_tokens": 103},
    }


def stream_events(i: int, words: int = 60) -> list[dict[str, Any]]:
    """A chat.completion.chunk stream of about ``words`` content events and [DONE]."""
    base = {
        "id": f"chatcmpl-bench{i:08d}",
        "object": "chat.completion.chunk",
        "created": 1717000000 + i,
        "model": "gpt-4-0613",
        "system_fingerprint": "fp_bench0001",
    }
    tokens = (STORY + " ") * (1 + words // 60)
    tokens_list = tokens.split()[:words]
    events: list[dict[str, Any]] = [
        {"ms": 0, "data": {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}}
    ]
    for n, word in enumerate(tokens_list, 1):
        events.append({"ms": n, "data": {**base, "choices": [{"index": 0, "delta": {"content": word + " "}, "finish_reason": None}]}})
    events.append({"ms": words + 1, "data": {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}})
    events.append({"ms": words + 2, "data": "[DONE]"})
    return events


OPENAI_RESPONSES = Target("openai", "responses")


def responses_request(i: int) -> dict[str, Any]:
    """The i-th distinct streamed Responses request (temperature 0: deterministic)."""
    return {"model": "gpt-4o", "input": f"Create a story about red panda #{i}.", "temperature": 0, "stream": True}


def responses_events(i: int, words: int = 60) -> list[dict[str, Any]]:
    """A Responses stream as the API sends it (typed events, sequence numbers, no [DONE])
    for an answer of ``words`` words, each event with its SSE event name."""
    from seedtape.sim.apis import response_events

    text = " ".join(((STORY + " ") * (1 + words // 60)).split()[:words])
    message = {
        "type": "message",
        "id": f"msg_bench{i:08d}",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
    }
    final = {
        "id": f"resp_bench{i:08d}",
        "object": "response",
        "created_at": 1717000000 + i,
        "status": "completed",
        "model": "gpt-4o-2024-08-06",
        "output": [message],
    }
    return [{"ms": n, "event": e["type"], "data": e} for n, e in enumerate(response_events(final))]


def responses_recording(i: int, words: int = 60) -> Recording:
    body = responses_request(i)
    episode = {
        "recorded_at": "2024-06-01T12:00:00.000000Z",
        "status": 200,
        "latency_ms": 812,
        "headers": {"content-type": "text/event-stream; charset=utf-8"},
        "events": responses_events(i, words),
    }
    return Recording(key=make_key(OPENAI_RESPONSES, body), request={**OPENAI_RESPONSES.as_dict(), "body": body}, episodes=[episode])


def key_of(i: int, *, stream: bool = False) -> str:
    return make_key(OPENAI_CHAT, request_body(i, stream=stream))


def recording(i: int, *, stream: bool = False) -> Recording:
    body = request_body(i, stream=stream)
    key = make_key(OPENAI_CHAT, body)
    episode: dict[str, Any] = {
        "recorded_at": "2024-06-01T12:00:00.000000Z",
        "status": 200,
        "latency_ms": 812,
        "system_fingerprint": "fp_bench0001",
    }
    if stream:
        episode["headers"] = {"content-type": "text/event-stream; charset=utf-8"}
        episode["events"] = stream_events(i)
    else:
        episode["headers"] = {"content-type": "application/json"}
        episode["body"] = response_body(i)
    return Recording(key=key, request={**OPENAI_CHAT.as_dict(), "body": body}, episodes=[episode])


def _write_range(args: tuple[str, str, int, int, bool]) -> int:
    root, cassette, start, stop, stream = args
    from seedtape.store import CassetteStore

    store = CassetteStore(Path(root), None)
    made: set[Path] = set()
    for i in range(start, stop):
        rec = recording(i, stream=stream)
        path = store.path_for(cassette, rec.key)
        if path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent)
        # No fsync: benchmark data, and a million fsyncs would measure the disk, not seedtape.
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(rec.dumps())
    return stop - start


def make_cassette(root: Path, cassette: str, n: int, *, stream: bool = False, jobs: int = 2) -> float:
    """Write recordings 0..n-1 as cassette files (the store's own layout); seconds taken.

    Skipped when a marker says this exact set is already there (the 1M case is slow).
    """
    marker = Path(root) / f".bench-{cassette.replace('/', '_')}-{n}-{int(stream)}"
    if marker.exists():
        return 0.0
    started = time.perf_counter()
    chunk = max(1, (n + jobs * 8 - 1) // (jobs * 8))
    ranges = [(str(root), cassette, s, min(n, s + chunk), stream) for s in range(0, n, chunk)]
    if jobs > 1 and n >= 5000:
        from multiprocessing import get_context

        with get_context("fork").Pool(jobs) as pool:
            sum(pool.imap_unordered(_write_range, ranges))
    else:
        for r in ranges:
            _write_range(r)
    marker.write_text("ok\n")
    return time.perf_counter() - started


async def asgi_post(app: Any, path: bytes, headers: list[tuple[bytes, bytes]], body: bytes) -> tuple[int, bytes]:
    """One POST straight into an ASGI app (no client_shim import: it pulls in openai)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "headers": headers,
        "scheme": "http",
        "path": path.decode(),
        "raw_path": path,
        "query_string": b"",
        "server": ("127.0.0.1", 80),
        "client": ("127.0.0.1", 1),
        "root_path": "",
    }
    sent = False
    status = 0
    parts: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            parts.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(parts)


# statistics ------------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float:
    data = sorted(values)
    if not data:
        return float("nan")
    k = (len(data) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (k - lo)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def table(rows: list[Sequence[Any]], header: Sequence[str]) -> str:
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def emit_json(path: str | None, data: Any) -> None:
    if path:
        Path(path).write_text(json.dumps(data, indent=2) + "\n")


# processes -------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 20.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError(f"server at {url} did not come up in {timeout}s")


@contextmanager
def server_process(args: list[str], health_url: str, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server command (its own process group) until the block ends."""
    import tempfile

    errors = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below; not a pipe: a chatty server must never block on it
    proc = subprocess.Popen(args, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=errors, start_new_session=True)
    try:
        try:
            wait_http(health_url)
        except RuntimeError:
            proc.kill()
            proc.wait(timeout=5)
            errors.seek(0)
            err = errors.read().decode(errors="replace")
            raise RuntimeError(f"{' '.join(args)} failed:\n{err[-2000:]}") from None
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 15)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait(timeout=5)
        errors.close()


def rss_mb(pid: int | None = None) -> float:
    """Resident set size in MB (this process by default), from /proc."""
    with open(f"/proc/{pid or 'self'}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def tree_rss_mb(pid: int) -> float:
    """RSS of a process and its children (uvicorn --workers)."""
    total = rss_mb(pid)
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return total + sum(tree_rss_mb(int(c)) for c in children)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, all its threads (Linux /proc): the
    server's own cost, which the client's speed does not hide."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def disk_usage_mb(path: Path) -> float:
    out = subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True, check=False).stdout.split()
    return int(out[0]) / 1024 if out else float("nan")
