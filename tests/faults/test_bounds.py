"""Issue 13, item 6 (bounds): nothing a client or an upstream sends grows without bound.

* an answer is at most ``--max-response`` bytes once decoded (a gzip bomb stops
  there, with a clear 502) and a stream at most ``--max-stream-events`` events (it
  ends with an error event the SDK raises); neither is recorded;
* the session table keeps the ``--max-sessions`` most recently used sessions;
* the request path goes upstream byte for byte as the client sent it, and a path
  with a control character in it is a 400, never a 500 nor a split log line.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest

from client_shim import azure_client
from seedtape.serving import serve_in_thread
from tests.conftest import AZURE_KEY, RunningProxy, quiet_logger
from tests.faults._helpers import PANDA, assert_openai_error, cassette_files

CHAT = "/openai/deployments/gpt-4/chat/completions?api-version=2024-02-01"
AUTH = {"api-key": AZURE_KEY}
SEEDED = {"model": "gpt-4", "messages": PANDA, "seed": 42}


def test_a_gzip_bomb_stops_at_max_response_with_a_clear_502_and_nothing_recorded(
    proxy_factory: Callable[..., RunningProxy], sim: Any
) -> None:
    proxy = proxy_factory(mode="auto", max_response=4 * 1024 * 1024)
    sim.inject({"kind": "gzip_bomb", "mb": 64})  # 64 MB of JSON, about 0.3 MB on the wire
    error = assert_openai_error(httpx.post(proxy.url + CHAT, json=SEEDED, headers=AUTH, timeout=30), 502, "upstream_error")
    assert "--max-response" in error["message"] and error["code"] == "response_too_large"
    assert cassette_files(proxy.settings.cassettes_dir) == []
    assert httpx.post(proxy.url + CHAT, json=SEEDED, headers=AUTH).headers["x-seedtape-cache"] == "recorded"


@pytest.mark.parametrize(
    ("limit", "says"), [({"max_stream_events": 50}, "--max-stream-events"), ({"max_response": 20_000}, "--max-response")]
)
def test_a_stream_over_its_limits_ends_with_an_error_the_sdk_raises_and_is_not_recorded(
    limit: dict[str, int], says: str, proxy_factory: Callable[..., RunningProxy], sim: Any
) -> None:
    proxy = proxy_factory(mode="auto", **limit)
    sim.inject({"kind": "flood", "events": 2000})
    client = azure_client(proxy.url, api_key=AZURE_KEY, max_retries=0)
    received = 0
    with pytest.raises(openai.APIError) as caught:
        for _ in client.chat.completions.create(**SEEDED, stream=True):
            received += 1
    assert says in caught.value.message and received >= 1, "the stream had started: the error is its last event"
    assert cassette_files(proxy.settings.cassettes_dir) == []


def test_a_stream_over_the_limit_as_the_first_event_is_a_clean_502(proxy_factory: Callable[..., RunningProxy], sim: Any) -> None:
    proxy = proxy_factory(mode="auto", max_response=100)
    sim.inject({"kind": "flood", "events": 10})
    error = assert_openai_error(httpx.post(proxy.url + CHAT, json={**SEEDED, "stream": True}, headers=AUTH), 502, "upstream_error")
    assert "--max-response" in error["message"]


def test_the_session_table_forgets_the_least_recently_used_sessions(proxy_factory: Callable[..., RunningProxy]) -> None:
    proxy = proxy_factory(mode="auto", max_sessions=50)
    unseeded = {"model": "gpt-4", "messages": PANDA, "temperature": 0.9}
    first, second = (httpx.post(proxy.url + CHAT, json=unseeded, headers={**AUTH, "x-seedtape-session": "a"}) for _ in range(2))
    assert (first.headers["x-seedtape-episode"], second.headers["x-seedtape-episode"]) == ("1", "2")
    for i in range(300):  # 300 other sessions pass by; "a" is least recently used
        httpx.post(proxy.url + CHAT, json=SEEDED, headers={**AUTH, "x-seedtape-session": f"s{i}"})
    assert len(proxy.engine.coordinator._sessions) <= 50  # type: ignore[attr-defined]
    again = httpx.post(proxy.url + CHAT, json=unseeded, headers={**AUTH, "x-seedtape-session": "a"})
    assert (again.headers["x-seedtape-cache"], again.headers["x-seedtape-episode"]) == ("hit", "1"), "forgotten: it starts again"


def test_a_session_header_over_200_characters_is_refused(proxy_factory: Callable[..., RunningProxy]) -> None:
    proxy = proxy_factory(mode="auto")
    response = httpx.post(proxy.url + CHAT, json=SEEDED, headers={**AUTH, "x-seedtape-session": "s" * 201})
    assert assert_openai_error(response, 400, "invalid_request_error")["code"] == "invalid_session"


@pytest.mark.parametrize(
    ("sent", "recorded"),
    [
        ("/v1/files/a%2Fb%3Fc", False),  # forwarded untouched: %2F and %3F must not become / and ?
        ("/v1/files/%2e%2e/models", False),
        ("/openai/deployments/my%20dep/chat/completions?api-version=2024-02-01", True),
        ("/openai/deployments/a%2Fb/chat/completions?api-version=2024-02-01", False),
    ],
)
def test_the_request_path_is_forwarded_byte_for_byte(sent: str, recorded: bool, tmp_path: Any, sim: Any, sim_url: str) -> None:
    from seedtape.app import create_app
    from seedtape.config import Settings

    sim.config.keep_requests = True
    app = create_app(Settings(upstream=sim_url, cassettes_dir=tmp_path / "c", cache_dir=tmp_path / "k"))
    with serve_in_thread(app) as url:
        body = {"model": "gpt-4", "seed": 1, "messages": [{"role": "user", "content": "hi"}]}
        response = httpx.post(url + sent, json=body, headers=AUTH)
    path = sent.partition("?")[0]
    assert [r.raw_path for r in sim.received] == [path.encode()]
    assert (response.headers["x-seedtape-cache"] == "recorded") == recorded


@pytest.mark.parametrize(
    "path",
    [
        "/openai/deployments/a%00b/chat/completions?api-version=2024-02-01",
        "/openai/deployments/a%0d%0aINFO%20fake/chat/completions?api-version=2024-02-01",
        "/v1/chat/completions%0a",
        "/v1/files/%1b[31m",
        "/openai/deployments/gpt-4/chat/completions?api-version=2024%0d%0a01",
    ],
)
def test_a_control_character_in_the_path_is_a_400_never_a_500_or_a_split_log_line(
    path: str, proxy_factory: Callable[..., RunningProxy], sim: Any, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = proxy_factory(mode="auto")
    caplog.set_level(logging.INFO)
    with quiet_logger("uvicorn.access"):
        response = httpx.post(proxy.url + path, json=SEEDED, headers=AUTH)
    assert assert_openai_error(response, 400, "invalid_request_error")["code"] == "invalid_path"
    assert sim.calls == 0 and cassette_files(proxy.settings.cassettes_dir) == []
    assert not any("\n" in r.getMessage() or "\r" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("head", "says"),
    [
        (b"x-big: " + b"a" * 100_000 + b"\r\n", "--max-header-size"),
        (b"".join(b"x-h%d: v\r\n" % i for i in range(200)), "--max-headers"),
    ],
    ids=["100-KB-header", "200-headers"],
)
def test_a_request_head_over_the_limits_is_a_431_before_the_app(
    head: bytes, says: str, proxy_factory: Callable[..., RunningProxy], sim: Any
) -> None:
    proxy = proxy_factory(mode="auto")
    host, port = proxy.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        # The server may close before the whole head is sent; its answer is there already.
        with contextlib.suppress(OSError):
            sock.sendall(b"POST " + CHAT.encode() + b" HTTP/1.1\r\nhost: x\r\n" + head + b"\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status, _, rest = answer.partition(b"\r\n")
    assert status == b"HTTP/1.1 431 Request Header Fields Too Large"
    assert says.encode() in rest and b'"code": "headers_too_large"' in rest
    assert sim.calls == 0 and httpx.post(proxy.url + CHAT, json=SEEDED, headers=AUTH).status_code == 200
