"""Helpers for the fault-injection suite: a real ``seedtape serve`` process, an echo
upstream, OpenAI-shaped error checks and a byte scanner for secrets.

Everything listens on 127.0.0.1 only, and every wait is bounded in time.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

PANDA = [
    {"role": "system", "content": "You always produce 3-sentence answers."},
    {"role": "user", "content": "Create a story about red panda."},
]
TRACEBACK_MARKERS = ("Traceback (most recent call last)", 'File "/', "\n  File ")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def closed_port_url() -> str:
    """A loopback URL where nothing listens: connecting is refused at once."""
    return f"http://127.0.0.1:{free_port()}"


def assert_openai_error(response: httpx.Response, status: int, type_: str | None = None) -> dict[str, Any]:
    """The answer is the shape the openai SDK turns into its typed exceptions."""
    assert response.status_code == status, (response.status_code, response.text[:300])
    text = response.text
    assert not any(marker in text for marker in TRACEBACK_MARKERS), text[:300]
    error = response.json()["error"]
    assert isinstance(error["message"], str) and error["message"]
    assert set(error) >= {"message", "type", "param", "code"}
    if type_ is not None:
        assert error["type"] == type_, error
    return error


@dataclass
class ServeProcess:
    """A ``seedtape serve`` child process (its own process group) and where it logs."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def stop(self, sig: int = signal.SIGINT, wait: float = 15.0) -> None:
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, sig)  # the group: uvicorn's worker processes too
        except ProcessLookupError:
            return
        try:
            self.process.wait(wait)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)

    def kill(self) -> None:
        """SIGKILL the server: no shutdown code of ours runs."""
        self.stop(signal.SIGKILL, wait=10)


def start_serve(args: Sequence[str], cwd: Path, log: Path, timeout: float = 30.0, headers: dict[str, str] | None = None) -> ServeProcess:
    """Start ``seedtape serve`` on a free loopback port; return once it answers health.

    The port is picked, then bound by the child: another process on this machine can
    take it in between, so a start that lost the race is retried on a new port.
    """
    for _ in range(3):
        try:
            return _start_serve_once(args, cwd, log, timeout, headers or {})
        except _PortTaken:
            continue
    raise RuntimeError("could not find a free port for seedtape serve in 3 attempts")


class _PortTaken(Exception):
    pass


def _start_serve_once(args: Sequence[str], cwd: Path, log: Path, timeout: float, headers: dict[str, str]) -> ServeProcess:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEEDTAPE_", "AZURE_OPENAI", "OPENAI_"))}
    log.parent.mkdir(parents=True, exist_ok=True)
    offset = log.stat().st_size if log.exists() else 0
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "seedtape.cli", "serve", "--host", "127.0.0.1", "--port", str(port), *args],
            cwd=cwd,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = ServeProcess(process, f"http://127.0.0.1:{port}", log)

    def output() -> str:
        return log.read_bytes()[offset:].decode(errors="replace")

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            if "address already in use" in output().lower():
                raise _PortTaken()
            raise RuntimeError(f"seedtape serve exited with {process.returncode}:\n{output()[-3000:]}")
        try:
            stats = httpx.get(server.url + "/_seedtape/stats", headers=headers, timeout=1)
            # Answered by this child (or one of its workers), not by whoever else took the port.
            if stats.status_code == 200 and os.getpgid(stats.json()["pid"]) == process.pid:
                return server
        except (httpx.HTTPError, ProcessLookupError, KeyError, ValueError):
            pass
        time.sleep(0.1)
    server.kill()
    raise RuntimeError(f"seedtape serve did not start in {timeout}s:\n{output()[-3000:]}")


@contextmanager
def serving(args: Sequence[str], cwd: Path, log: Path, **options: Any) -> Iterator[ServeProcess]:
    server = start_serve(args, cwd, log, **options)
    try:
        yield server
    finally:
        server.stop()


def chat_completion(content: str, model: str = "echo-1") -> dict[str, Any]:
    return {
        "id": "chatcmpl-echo",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "system_fingerprint": "fp_echo",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop", "logprobs": None}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def echo_upstream(seen: list[dict[str, Any]] | None = None) -> Starlette:
    """An upstream that answers anything well-formed and repeats the last user message.

    Deterministic, never 5xx: a failure seen through the proxy is the proxy's. It
    records every request's headers in ``seen`` (to check what was forwarded).
    """

    async def answer(request: Request) -> Response:
        raw = await request.body()
        if seen is not None:
            seen.append({"path": request.url.path, "raw_path": request.scope.get("raw_path"), "headers": dict(request.headers)})
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        messages = body.get("messages") if isinstance(body.get("messages"), list) else []
        last = messages[-1] if messages and isinstance(messages[-1], dict) else {}
        content = last.get("content") if isinstance(last.get("content"), str) else "echo"
        if body.get("stream") is True:
            chunks = [
                {
                    "id": "c1",
                    "object": "chat.completion.chunk",
                    "created": 1,
                    "model": "echo-1",
                    "system_fingerprint": "fp_echo",
                    "choices": [{"index": 0, "delta": {"role": "assistant", "content": piece}, "finish_reason": None}],
                }
                for piece in (content[: len(content) // 2], content[len(content) // 2 :])
            ]
            chunks.append(
                {
                    "id": "c1",
                    "object": "chat.completion.chunk",
                    "created": 1,
                    "model": "echo-1",
                    "system_fingerprint": "fp_echo",
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                }
            )
            frames = [f"data: {json.dumps(c)}\n\n".encode() for c in chunks] + [b"data: [DONE]\n\n"]

            async def events() -> Any:
                for frame in frames:
                    yield frame

            return StreamingResponse(events(), media_type="text/event-stream")
        return JSONResponse(chat_completion(content))

    async def not_found(request: Request) -> Response:
        if seen is not None:
            seen.append({"path": request.url.path, "raw_path": request.scope.get("raw_path"), "headers": dict(request.headers)})
        return JSONResponse({"error": {"message": "no such route", "type": "invalid_request_error", "param": None, "code": None}}, 404)

    return Starlette(
        routes=[
            Route("/v1/chat/completions", answer, methods=["POST"]),
            Route("/openai/v1/chat/completions", answer, methods=["POST"]),
            Route("/openai/deployments/{name}/chat/completions", answer, methods=["POST"]),
            Route("/{path:path}", not_found, methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]),
        ]
    )


def secret_variants(secret: str) -> list[bytes]:
    """The ways a secret could be written down: as is, base64, and a distinctive middle part."""
    import base64

    raw = secret.encode()
    middle = raw[len(raw) // 4 : len(raw) // 4 + 16]
    return [raw, base64.b64encode(raw), middle]


def scan_bytes(root: Path, secrets: Sequence[str]) -> tuple[list[str], int, int]:
    """(hits, files scanned, bytes scanned) for every file under ``root``, any format."""
    hits: list[str] = []
    files = size = 0
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        files += 1
        size += len(data)
        for secret in secrets:
            for variant in secret_variants(secret):
                if variant in data:
                    hits.append(f"{path.relative_to(root)}: {secret[:6]}... ({variant[:6]!r}...)")
    return hits, files, size


def cassette_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.json") if not p.name.startswith("."))
