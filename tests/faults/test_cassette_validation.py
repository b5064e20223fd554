"""Issue 13, item 5: a cassette value never drops a client's connection.

Each case records a real answer, hand-edits one value of the file the way a bad
merge or a careless edit would, and replays it through a real server: the client
always gets an HTTP answer. An episode HTTP cannot send is the OpenAI-shaped 500
``seedtape_cassette_error`` naming the file; framing headers found in a file are
never sent (the server frames the body itself) and ``--keep-header`` refuses them.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from seedtape.config import Settings
from tests.conftest import AZURE_KEY, RunningProxy
from tests.faults._helpers import PANDA, assert_openai_error, cassette_files

CHAT = "/openai/deployments/gpt-4/chat/completions?api-version=2024-02-01"
AUTH = {"api-key": AZURE_KEY}
SEEDED = {"model": "gpt-4", "messages": PANDA, "seed": 42}
REPLAY = {**AUTH, "x-seedtape-mode": "replay"}


def edit(episode: dict[str, Any], **changes: Any) -> None:
    for name, value in changes.items():
        if value is _DROP:
            episode.pop(name, None)
        else:
            episode[name] = value


_DROP = object()

UNSERVABLE: dict[str, Callable[[dict[str, Any]], None]] = {
    "status-true": lambda e: edit(e, status=True),
    "status-99": lambda e: edit(e, status=99),
    "status-1000": lambda e: edit(e, status=1000),
    "status-100": lambda e: edit(e, status=100),
    "status-text": lambda e: edit(e, status="200"),
    "header-value-crlf": lambda e: e["headers"].update({"x-note": "a\r\nset-cookie: evil=1"}),
    "header-name-space": lambda e: e["headers"].update({"x bad": "1"}),
    "header-value-number": lambda e: e["headers"].update({"x-count": 5}),
    "headers-not-object": lambda e: edit(e, headers=["content-type"]),
    "no-body": lambda e: edit(e, body=_DROP),
    "body-and-events": lambda e: edit(e, events=[{"ms": 0, "data": "[DONE]"}]),
    "text-not-string": lambda e: (edit(e, body=_DROP), edit(e, body_text=["a"])),
    "base64-wrong-hash": lambda e: (
        edit(e, body=_DROP),
        edit(e, body_base64=base64.b64encode(b"abc").decode(), body_sha256="0" * 64, body_size=3),
    ),
    "base64-not-base64": lambda e: (edit(e, body=_DROP), edit(e, body_base64="%%%")),
    "events-not-list": lambda e: (edit(e, body=_DROP), edit(e, events={"data": 1})),
    "event-data-newline": lambda e: (edit(e, body=_DROP), edit(e, events=[{"ms": 0, "data": "line\ndata: [DONE]"}])),
    "event-name-newline": lambda e: (edit(e, body=_DROP), edit(e, events=[{"ms": 0, "data": "x", "event": "a\nb"}])),
    "event-ms-negative": lambda e: (edit(e, body=_DROP), edit(e, events=[{"ms": -1, "data": "[DONE]"}])),
}


def recorded(proxy: RunningProxy) -> Path:
    response = httpx.post(proxy.url + CHAT, json=SEEDED, headers=AUTH)
    assert response.headers["x-seedtape-cache"] == "recorded"
    [path] = cassette_files(proxy.settings.cassettes_dir)
    return path


def rewrite(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    data = json.loads(path.read_text())
    change(data["episodes"][0])
    path.write_text(json.dumps(data, indent=2))


@pytest.mark.parametrize("case", sorted(UNSERVABLE))
def test_an_unservable_episode_is_a_500_naming_the_file_never_a_dropped_connection(
    case: str, proxy_factory: Callable[..., RunningProxy]
) -> None:
    proxy = proxy_factory(mode="auto")
    path = recorded(proxy)
    rewrite(path, UNSERVABLE[case])
    response = httpx.post(proxy.url + CHAT, json=SEEDED, headers=REPLAY)  # raises if the connection were dropped
    error = assert_openai_error(response, 500, "seedtape_cassette_error")
    assert path.name in error["message"] and "episode 1" in error["message"], error["message"]
    assert response.headers["x-should-retry"] == "false"
    assert "set-cookie" not in response.headers
    healthy = httpx.post(proxy.url + CHAT, json={**SEEDED, "seed": 7}, headers=AUTH)
    assert healthy.status_code == 200, "every other key keeps working"


@pytest.mark.parametrize("name", ["content-length", "transfer-encoding", "content-encoding", "connection"])
def test_a_stored_framing_header_is_never_served(name: str, proxy_factory: Callable[..., RunningProxy]) -> None:
    proxy = proxy_factory(mode="auto")
    path = recorded(proxy)
    value = {"content-length": "3", "transfer-encoding": "chunked", "content-encoding": "gzip", "connection": "close"}[name]
    rewrite(path, lambda e: e["headers"].update({name: value}))
    response = httpx.post(proxy.url + CHAT, json=SEEDED, headers=REPLAY)
    assert response.status_code == 200 and response.json()["choices"][0]["message"]["content"]
    assert response.headers.get(name) != value


def test_a_stream_episode_with_a_stored_content_length_replays_whole(proxy_factory: Callable[..., RunningProxy]) -> None:
    proxy = proxy_factory(mode="auto")
    body = {**SEEDED, "stream": True}
    assert httpx.post(proxy.url + CHAT, json=body, headers=AUTH).status_code == 200
    [path] = cassette_files(proxy.settings.cassettes_dir)
    rewrite(path, lambda e: e["headers"].update({"content-length": "10"}))
    response = httpx.post(proxy.url + CHAT, json=body, headers=REPLAY)
    assert response.status_code == 200 and response.text.rstrip().endswith("data: [DONE]")


@pytest.mark.parametrize("name", ["content-length", "Transfer-Encoding", "content-encoding", "connection", "bad name"])
def test_keep_header_refuses_framing_headers_with_a_clear_error(
    name: str, serve_cli: Callable[..., tuple[Any, dict[str, Any] | None]]
) -> None:
    with pytest.raises(ValueError, match="--keep-header"):
        Settings(keep_headers=(name,))
    result, listened = serve_cli("--keep-header", name)
    assert result.exit_code == 2 and listened is None
    [line] = result.output.strip().splitlines()
    assert line.startswith("Error: ") and "--keep-header" in line


def test_framing_headers_are_never_stored_even_when_upstream_sends_them(proxy_factory: Callable[..., RunningProxy]) -> None:
    proxy = proxy_factory(mode="auto", keep_headers=("x-request-id", "openai-version"))
    path = recorded(proxy)
    stored = json.loads(path.read_text())["episodes"][0]["headers"]
    assert not {"content-length", "transfer-encoding", "content-encoding", "connection"} & set(stored)
