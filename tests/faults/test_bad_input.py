"""Bad input from clients: a clear OpenAI-shaped 4xx, nothing written, the server stays up.

The explicit cases go through a real uvicorn server on 127.0.0.1 (what a client
sees on the wire); the property-based ones call the app in-process through
``httpx.ASGITransport`` so hypothesis can throw hundreds of bodies and headers at it.
"""

from __future__ import annotations

import asyncio
import json
import select
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from client_shim import azure_client, openai_client
from seedtape.app import create_app
from seedtape.config import Settings
from seedtape.exchange import MAX_DEPTH
from seedtape.modes import MODE_NAMES as MODES
from seedtape.serving import serve_in_thread
from seedtape.sim import transport as sim_transport
from seedtape.sim.simulator import Simulator, create_simulator
from tests.conftest import AZURE_KEY, OPENAI_KEY, RunningProxy
from tests.faults._helpers import PANDA, TRACEBACK_MARKERS, assert_openai_error, cassette_files

CHAT = "/v1/chat/completions"
AUTH = {"authorization": f"Bearer {OPENAI_KEY}"}
JSON = {**AUTH, "content-type": "application/json"}


def still_serving(proxy: RunningProxy) -> None:
    """The server answers health and a real request after the bad one (in a cassette
    of its own, so the default one shows that the bad request wrote nothing)."""
    assert httpx.get(proxy.url + "/_seedtape/health").json()["status"] == "ok"
    good = httpx.post(
        proxy.url + CHAT, json={"model": "gpt-4", "messages": PANDA, "seed": 1}, headers={**AUTH, "x-seedtape-cassette": "alive"}
    )
    assert good.status_code == 200 and good.json()["choices"][0]["message"]["content"]


@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[RunningProxy, Simulator]]:
    """One simulator and one proxy for the many bad-input cases: each case checks the
    server is still up, which a fresh server per case would not show as well."""
    with tempfile.TemporaryDirectory() as folder, ExitStack() as stack:
        simulator = create_simulator()
        upstream = stack.enter_context(serve_in_thread(simulator.app))
        settings = Settings(mode="auto", upstream=upstream, cassettes_dir=Path(folder) / "cassettes", cache_dir=Path(folder) / "cache")
        app = create_app(settings)
        yield RunningProxy(stack.enter_context(serve_in_thread(app)), settings, app), simulator


def nested(depth: int) -> bytes:
    """A chat body whose ``metadata`` holds ``depth - 1`` nested lists (the body is level 1)."""
    return (
        b'{"model":"gpt-4","seed":1,"messages":[{"role":"user","content":"hi"}],"metadata":'
        + b"[" * (depth - 1)
        + b"]" * (depth - 1)
        + b"}"
    )


BAD_BODIES: dict[str, tuple[bytes, dict[str, str], int, str]] = {
    # name: (body, extra headers, status, text the message must contain)
    "malformed": (b'{"model": "gpt-4", "messages": [', {}, 400, "not valid JSON"),
    "trailing-garbage": (b'{"model": "gpt-4"} extra', {}, 400, "not valid JSON"),
    "array": (b"[1, 2, 3]", {}, 400, "must be a JSON object, not list"),
    "string": (b'"hello"', {}, 400, "must be a JSON object, not str"),
    "number": (b"42", {}, 400, "must be a JSON object, not int"),
    "null": (b"null", {}, 400, "must be a JSON object, not NoneType"),
    "empty": (b"", {}, 400, "empty"),
    "whitespace": (b"   \n ", {}, 400, "not valid JSON"),
    "invalid-utf8": (b'{"model": "gpt-\xff\xfe"}', {}, 400, "not UTF-8"),
    "utf16": ('{"model": "gpt-4"}'.encode("utf-16"), {}, 400, "not UTF-8"),
    "nan": (b'{"model": "gpt-4", "temperature": NaN}', {}, 400, "NaN"),
    "infinity": (b'{"model": "gpt-4", "temperature": Infinity}', {}, 400, "Infinity"),
    "minus-infinity": (b'{"model": "gpt-4", "temperature": -Infinity}', {}, 400, "-Infinity"),
    "overflowing-float": (b'{"model": "gpt-4", "temperature": 1e400}', {}, 400, "cannot be keyed"),
    "huge-integer": (b'{"model": "gpt-4", "seed": ' + b"9" * 5000 + b"}", {}, 400, "not valid JSON"),
    "lone-surrogate": (b'{"model": "gpt-4", "user": "\\ud800"}', {}, 400, "cannot be keyed"),
    "deep-array-bomb": (b"[" * 200_000 + b"]" * 200_000, {}, 400, "nested more than"),
    "deep-object-bomb": (b'{"a":' * 50_000 + b"1" + b"}" * 50_000, {}, 400, "nested more than"),
    "nested-past-limit": (nested(MAX_DEPTH + 1), {}, 400, "nested more than"),
    "text-plain": (b'{"model": "gpt-4"}', {"content-type": "text/plain"}, 415, "not JSON"),
    "form": (b"model=gpt-4", {"content-type": "application/x-www-form-urlencoded"}, 415, "not JSON"),
    "multipart": (b"--x\r\n\r\n--x--", {"content-type": "multipart/form-data; boundary=x"}, 415, "not JSON"),
    "latin1-charset": (b'{"model": "gpt-4"}', {"content-type": "application/json; charset=latin-1"}, 415, "charset"),
    "unknown-mode": (b'{"model": "gpt-4"}', {"x-seedtape-mode": "fast-forward"}, 400, "fast-forward"),
}

BAD_CASSETTES = [
    "..",
    "../escape",
    "a/../../escape",
    "/etc/passwd",
    "//root",
    "a//b",
    "./a",
    "a/.",
    "C:\\windows",
    "back\\slash",
    "~root",
    "white space",
    "x" * 201,
    "%2e%2e/escape",
    "",
]


@pytest.mark.parametrize("name", sorted(BAD_BODIES))
def test_bad_body_gets_a_clear_4xx_and_the_server_stays_up(name: str, shared: tuple[RunningProxy, Simulator]) -> None:
    proxy, sim = shared
    calls = sim.calls
    body, extra, status, says = BAD_BODIES[name]
    response = httpx.post(proxy.url + CHAT, content=body, headers={**JSON, **extra}, timeout=30)
    error = assert_openai_error(response, status, "invalid_request_error")
    assert says in error["message"], error
    assert response.headers["x-seedtape-cache"] == "miss"
    assert sim.calls == calls, "bad input never reaches upstream"
    assert cassette_files(proxy.settings.cassettes_dir / "default") == []
    still_serving(proxy)


@pytest.mark.parametrize("name", BAD_CASSETTES, ids=lambda n: n[:12] or "empty")
def test_cassette_names_that_leave_the_folder_are_refused(name: str, shared: tuple[RunningProxy, Simulator]) -> None:
    proxy, _ = shared
    root = proxy.settings.cassettes_dir.parent
    before = sorted(p for p in root.rglob("*") if p.is_file() and "cache" not in p.parts)
    response = httpx.post(
        proxy.url + CHAT, json={"model": "gpt-4", "messages": PANDA, "seed": 1}, headers={**AUTH, "x-seedtape-cassette": name}
    )
    if name == "":  # an empty header is no header: the default cassette
        assert response.status_code == 200
        return
    error = assert_openai_error(response, 400, "invalid_request_error")
    assert "invalid cassette name" in error["message"]
    after = sorted(p for p in root.rglob("*") if p.is_file() and "cache" not in p.parts)
    assert after == before and not (root.parent / "escape").exists(), "nothing is written anywhere"
    still_serving(proxy)


@pytest.mark.anyio
@pytest.mark.parametrize("name", [b"a\x00b", b"\x00", b"..\x00/x", "caf\u00e9".encode("latin-1")])
async def test_cassette_names_with_nul_or_non_ascii_bytes_in_process(name: bytes, tmp_path: Path) -> None:
    """A NUL byte never gets past uvicorn's HTTP parser; in-process the app refuses it too."""
    app = create_app(
        Settings(upstream="http://upstream.invalid", cassettes_dir=tmp_path / "c", cache_dir=tmp_path / "i"),
        upstream_transport=sim_transport(),
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://proxy") as client:
        response = await client.post(CHAT, json={"model": "m", "messages": PANDA}, headers={"x-seedtape-cassette": name})
    assert_openai_error(response, 400, "invalid_request_error")
    assert not (tmp_path / "c").exists()


def test_nesting_at_the_limit_is_recorded_replayed_and_verified(proxy_factory: Callable[..., RunningProxy]) -> None:
    """The limit leaves room: every recursive step after parsing copes with MAX_DEPTH."""
    body = nested(MAX_DEPTH)
    recorder = proxy_factory(mode="record")
    first = httpx.post(recorder.url + CHAT, content=body, headers=JSON)
    assert first.status_code == 200 and first.headers["x-seedtape-cache"] == "recorded"
    [path] = cassette_files(recorder.settings.cassettes_dir)
    assert json.loads(path.read_text())["request"]["body"]["metadata"]
    for mode, cache in (("replay", "hit"), ("verify", "verified"), ("auto", "hit")):
        again = httpx.post(recorder.url + CHAT, content=body, headers={**JSON, "x-seedtape-mode": mode})
        assert (again.status_code, again.headers["x-seedtape-cache"]) == (200, cache), again.text[:200]
    miss = httpx.post(recorder.url + CHAT, content=body.replace(b'"hi"', b'"ho"'), headers={**JSON, "x-seedtape-mode": "replay"})
    assert_openai_error(miss, 404, "seedtape_cassette_miss")


def test_declared_body_over_max_body_is_refused_before_it_is_sent(proxy_factory: Callable[..., RunningProxy]) -> None:
    """Content-Length over the limit: 413 answered to the headers alone (nothing read)."""
    proxy = proxy_factory(mode="auto")
    host, port = proxy.url.removeprefix("http://").split(":")
    head = (
        f"POST {CHAT} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\ncontent-length: {100 * 1024 * 1024}\r\n\r\n"
    ).encode()
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head + b'{"model": ')  # a few bytes of a 100 MiB promise
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert b"over the limit of 16777216 bytes" in reply and b'"code":"body_too_large"' in reply
    assert time.monotonic() - started < 5
    still_serving(proxy)


def test_chunked_body_over_max_body_is_refused_while_streaming(proxy_factory: Callable[..., RunningProxy], sim: Any) -> None:
    """No Content-Length (chunked): counted as it arrives, refused at the limit.

    On a raw socket the 413 arrives while the client is still sending; uvicorn then
    discards (does not buffer) the rest so a client that only reads after sending, like
    httpx, still gets the clean 413 instead of a reset.
    """
    proxy = proxy_factory(mode="auto", max_body=64 * 1024)
    host, port = proxy.url.removeprefix("http://").split(":")
    piece = b"x" * 65536
    frame = b"%x\r\n" % len(piece) + piece + b"\r\n"
    sent = 0
    reply = b""
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            f"POST {CHAT} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n".encode()
        )
        for _ in range(1024):  # up to 64 MiB offered, 64 KiB allowed
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            sock.sendall(frame)
            sent += len(piece)
        deadline = time.monotonic() + 5
        while b"}}" not in reply and time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert sent < 16 * 1024 * 1024, f"the answer came only after {sent} bytes"

    def chunks() -> Any:
        yield b'{"model": "gpt-4", "messages": [{"role": "user", "content": "'
        for _ in range(256):
            yield piece
        yield b'"}]}'

    response = httpx.post(proxy.url + CHAT, content=chunks(), headers=JSON, timeout=30)
    error = assert_openai_error(response, 413, "invalid_request_error")
    assert error["code"] == "body_too_large" and "65536" in error["message"]
    assert sim.calls == 0
    still_serving(proxy)


def test_body_exactly_at_max_body_is_accepted(proxy_factory: Callable[..., RunningProxy]) -> None:
    base = {"model": "gpt-4", "messages": PANDA, "seed": 3, "user": ""}
    size = 4096
    padding = size - len(json.dumps(base).encode())
    body = json.dumps({**base, "user": "u" * padding}).encode()
    assert len(body) == size
    proxy = proxy_factory(mode="auto", max_body=size)
    assert httpx.post(proxy.url + CHAT, content=body, headers=JSON).status_code == 200
    assert httpx.post(proxy.url + CHAT, content=body + b" ", headers=JSON).status_code == 413


def test_the_sdk_sees_typed_errors_and_does_not_retry_them(proxy: RunningProxy, sim: Any) -> None:
    client = openai_client(proxy.url, api_key=OPENAI_KEY, default_headers={"x-seedtape-mode": "rewind"})
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="gpt-4", messages=PANDA)  # type: ignore[arg-type]
    assert "rewind" in caught.value.message
    big = proxy.settings.max_body
    azure = azure_client(proxy.url, api_key=AZURE_KEY)
    with pytest.raises(openai.APIStatusError) as too_big:
        azure.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "x" * (big + 1)}])
    assert too_big.value.status_code == 413
    assert sim.calls == 0


# --------------------------------------------------------------------------- properties

RECORDED_PATHS = [
    "/v1/chat/completions",
    "/openai/v1/chat/completions",
    "/openai/deployments/gpt-4/chat/completions?api-version=2024-02-01",
    "/v1/embeddings",
    "/openai/deployments/ada/embeddings?api-version=2024-02-01",
    "/v1/completions",
]
JUNK_PATHS = ["/", "/v1/models", "/v1/chat/completions/extra", "/openai/deployments//chat/completions", "/_seedtape/nope"]

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20
)
chat_like = st.fixed_dictionaries(
    {"model": st.text(max_size=10) | st.integers()},
    optional={
        "messages": st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "system", ""]), "content": json_values}), max_size=3)
        | json_values,
        "seed": json_values,
        "temperature": json_values,
        "stream": st.booleans() | json_values,
        "input": json_values,
        "prompt": json_values,
    },
)
# Chat bodies the upstream accepts (a model, messages, a temperature in range) with any
# JSON where the API takes any: without them nearly every chat_like body is refused
# upstream, and the recording and replay paths would seldom see an odd body.
accepted_chat = st.fixed_dictionaries(
    {
        "model": st.text(min_size=1, max_size=10),
        "messages": st.lists(
            st.fixed_dictionaries({"role": st.sampled_from(["user", "system"]), "content": json_values}), min_size=1, max_size=3
        ),
    },
    optional={
        "seed": json_values,
        "temperature": st.floats(min_value=0, max_value=2),
        "stream": st.booleans(),
        "user": json_values,
        "metadata": json_values,
    },
)
bodies = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.text(max_size=10), json_values, max_size=6).map(lambda v: json.dumps(v, ensure_ascii=False).encode()),
    chat_like.map(lambda v: json.dumps(v).encode()),
    accepted_chat.map(lambda v: json.dumps(v, ensure_ascii=False).encode()),
    st.sampled_from([b"NaN", b'{"a": NaN}', b'{"a": -Infinity}', b"[" * 5000, b'{"a":' * 3000, b"\xef\xbb\xbf{}"]),
)
header_bytes = st.binary(max_size=40) | st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40).map(str.encode)
headers = st.fixed_dictionaries(
    {},
    optional={
        "x-seedtape-mode": st.sampled_from([m.encode() for m in MODES]) | header_bytes,
        "x-seedtape-cassette": st.sampled_from([b"default", b"a/b", b"..", b"../x", b"/abs", b"a\x00b", b"x" * 300]) | header_bytes,
        "x-seedtape-session": header_bytes,
        "content-type": st.sampled_from([b"application/json", b"text/plain", b"application/json; charset=utf-16", b""]) | header_bytes,
        "authorization": header_bytes,
        "api-key": header_bytes,
        "accept-encoding": header_bytes,
    },
)
paths = st.sampled_from(RECORDED_PATHS + JUNK_PATHS)
methods = st.sampled_from(["POST", "POST", "POST", "GET", "PUT", "DELETE"])


@pytest.fixture
def in_process(tmp_path: Path) -> Any:
    """The app in-process in front of the simulator, with one event loop for all examples.

    The client sends a key by default (a generated header may replace it), so most
    well-formed requests get a 2xx upstream and are recorded, as with any real key."""
    app = create_app(
        Settings(upstream="http://upstream.invalid", cassettes_dir=tmp_path / "c", cache_dir=tmp_path / "i", max_body=64 * 1024),
        upstream_transport=sim_transport(),
    )
    runner = asyncio.Runner()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://proxy", timeout=30, headers=AUTH)
    try:
        yield runner, client
    finally:
        runner.run(client.aclose())
        runner.run(app.state.engine.aclose())
        runner.close()


def check_answer(response: httpx.Response) -> None:
    """The properties: no 5xx from seedtape, no traceback, every error OpenAI-shaped."""
    text = response.content.decode("utf-8", "replace")
    assert response.status_code < 500, (response.status_code, text[:300])
    assert not any(marker in text for marker in TRACEBACK_MARKERS), text[:300]
    if response.status_code >= 400:
        error = response.json()["error"]
        assert isinstance(error["message"], str) and isinstance(error["type"], str)


@pytest.mark.slow  # hundreds of generated requests
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(method=methods, path=paths, body=bodies, extra=headers)
def test_property_generated_requests_never_get_a_500_or_a_traceback(
    in_process: Any, method: str, path: str, body: bytes, extra: dict[str, bytes]
) -> None:
    runner, client = in_process
    response = runner.run(client.request(method, path, content=body, headers=extra))
    check_answer(response)


@pytest.mark.slow  # hundreds of generated requests
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=chat_like | accepted_chat, mode=st.sampled_from(MODES), stream=st.booleans())
def test_property_any_chat_shaped_body_round_trips_or_is_refused_cleanly(
    in_process: Any, body: dict[str, Any], mode: str, stream: bool
) -> None:
    """Whatever a chat-shaped body holds, every mode answers it without a 5xx, and a
    body that was recorded replays with the same answer."""
    runner, client = in_process
    body = {**body, "stream": stream}
    first = runner.run(client.post(CHAT, json=body, headers={"x-seedtape-mode": mode}))
    check_answer(first)
    if first.headers.get("x-seedtape-cache") == "recorded":
        again = runner.run(client.post(CHAT, json=body, headers={"x-seedtape-mode": "replay"}))
        check_answer(again)
        assert again.status_code == first.status_code and payload(again) == payload(first)


def payload(response: httpx.Response) -> Any:
    """The JSON a client reads: the body, or each SSE event's data."""
    if response.headers["content-type"].startswith("text/event-stream"):
        data = [line[6:] for line in response.text.split("\n") if line.startswith("data: ")]
        return [item if item == "[DONE]" else json.loads(item) for item in data]
    return response.json()
