"""Issue 13, item 4: ``--upstream-timeout`` is a deadline, not a per-read timeout.

An upstream that sends its headers and then one byte at a time never trips a
per-read timeout: with ``--upstream-timeout 5`` it held a client for 40 s and then
answered 502. Now the whole exchange, from the request to the last byte, ends by
the deadline with a 504; a stream is also bounded between events
(``--stream-idle-timeout``), and once its first event has gone out it ends with an
OpenAI-shaped error event the SDK raises. Nothing is recorded.

Bounds on elapsed time are loose (a loaded CI machine), but far below what the drip
would take: every drip here would run for minutes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest

from client_shim import azure_client
from tests.conftest import AZURE_KEY, RunningProxy, quiet_logger
from tests.faults._helpers import PANDA, assert_openai_error, cassette_files

pytestmark = pytest.mark.slow  # each waits out a timeout on purpose

CHAT = "/openai/deployments/gpt-4/chat/completions?api-version=2024-02-01"
AUTH = {"api-key": AZURE_KEY}
SEEDED = {"model": "gpt-4", "messages": PANDA, "seed": 42}
SLACK = 3.0


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream-before-first-event"])
def test_a_drip_gets_a_504_by_the_upstream_timeout(stream: bool, proxy_factory: Callable[..., RunningProxy], sim: Any) -> None:
    proxy = proxy_factory(mode="auto", upstream_timeout=1.5)
    sim.inject({"kind": "drip", "interval_ms": 100})  # ~700 bytes: over a minute at this pace
    started = time.monotonic()
    response = httpx.post(proxy.url + CHAT, json={**SEEDED, "stream": stream}, headers=AUTH, timeout=30)
    elapsed = time.monotonic() - started
    error = assert_openai_error(response, 504, "upstream_timeout")
    assert "--upstream-timeout 1.5 s" in error["message"]
    assert 1.4 <= elapsed < 1.5 + SLACK, elapsed
    assert cassette_files(proxy.settings.cassettes_dir) == []


def test_a_stream_silent_between_events_ends_with_an_error_the_sdk_raises(proxy_factory: Callable[..., RunningProxy], sim: Any) -> None:
    proxy = proxy_factory(mode="auto", upstream_timeout=60, stream_idle_timeout=1.0)
    sim.inject({"kind": "drip", "interval_ms": 1500, "after_chunks": 3})  # three events, then a byte every 1.5 s
    client = azure_client(proxy.url, api_key=AZURE_KEY, max_retries=0)
    received = 0
    started = time.monotonic()
    with quiet_logger(), pytest.raises(openai.APIError) as caught:
        for _ in client.chat.completions.create(**SEEDED, stream=True):
            received += 1
    elapsed = time.monotonic() - started
    assert received == 3 and "--stream-idle-timeout" in caught.value.message
    assert elapsed < 1.0 + SLACK, elapsed
    assert cassette_files(proxy.settings.cassettes_dir) == []


def test_a_slow_stream_ends_at_the_upstream_timeout_however_lively(proxy_factory: Callable[..., RunningProxy], sim: Any) -> None:
    """Events every 200 ms never trip the idle timeout; the whole exchange still ends on time."""
    proxy = proxy_factory(mode="auto", upstream_timeout=1.5, stream_idle_timeout=None)
    sim.update_config({"stream_delay_ms": 200.0})
    client = azure_client(proxy.url, api_key=AZURE_KEY, max_retries=0)
    received = 0
    started = time.monotonic()
    with quiet_logger(), pytest.raises(openai.APIError) as caught:
        for _ in client.chat.completions.create(**SEEDED, max_tokens=200, stream=True):
            received += 1
    elapsed = time.monotonic() - started
    assert received >= 3 and "--upstream-timeout 1.5 s" in caught.value.message
    assert elapsed < 1.5 + SLACK, elapsed
    assert cassette_files(proxy.settings.cassettes_dir) == []


def test_verify_mode_keeps_the_same_deadline(proxy_factory: Callable[..., RunningProxy], sim: Any) -> None:
    recorder = proxy_factory(mode="auto")
    assert httpx.post(recorder.url + CHAT, json=SEEDED, headers=AUTH).status_code == 200
    verifier = proxy_factory(mode="verify", upstream_timeout=1.0, cache_dir=recorder.settings.cache_dir)
    sim.inject({"kind": "drip", "interval_ms": 100})
    started = time.monotonic()
    assert_openai_error(httpx.post(verifier.url + CHAT, json=SEEDED, headers=AUTH, timeout=30), 504, "upstream_timeout")
    assert time.monotonic() - started < 1.0 + SLACK
