"""Issue 13, item 1: a chat stream cut short never looks complete.

An upstream that sends a few ``data:`` chunks and closes cleanly without ``data:
[DONE]`` must not reach the openai SDK as a short, whole-looking answer: the proxy
aborts the client's connection after the last byte, so the SDK raises exactly as it
would against the broken upstream, and nothing is recorded. (Fixed on main before
this round for every family; tests/families/test_responses.py covers Responses.
These cover chat completions through the real SDK, sync and async, in every mode
that forwards a stream.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest

from client_shim import azure_client
from tests.conftest import AZURE_KEY, RunningProxy, quiet_logger
from tests.faults._helpers import PANDA, cassette_files

SEEDED = {"model": "gpt-4", "messages": PANDA, "seed": 42, "temperature": 0.1}


@pytest.mark.parametrize("mode", ["auto", "record", "passthrough"])
def test_a_chat_stream_ended_without_done_makes_the_sync_sdk_raise_and_records_nothing(
    mode: str, proxy_factory: Callable[..., RunningProxy], sim: Any
) -> None:
    proxy = proxy_factory(mode=mode)
    sim.inject({"kind": "end_stream_early", "after_chunks": 3})
    client = azure_client(proxy.url, api_key=AZURE_KEY, max_retries=0)
    received = []
    with quiet_logger(), pytest.raises((openai.APIError, httpx.HTTPError)):
        for chunk in client.chat.completions.create(**SEEDED, stream=True):
            received.append(chunk)
    assert 0 < len(received) <= 3, "what arrived was passed on live, and then the stream broke"
    assert cassette_files(proxy.settings.cassettes_dir) == []
    whole = list(client.chat.completions.create(**SEEDED, stream=True))
    assert whole[-1].choices[0].finish_reason == "stop"
    assert len(cassette_files(proxy.settings.cassettes_dir)) == (0 if mode == "passthrough" else 1)


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["auto", "record"])
async def test_a_chat_stream_ended_without_done_makes_the_async_sdk_raise_and_records_nothing(
    mode: str, proxy_factory: Callable[..., RunningProxy], sim: Any
) -> None:
    proxy = proxy_factory(mode=mode)
    sim.inject({"kind": "end_stream_early", "after_chunks": 2})
    client = openai.AsyncAzureOpenAI(azure_endpoint=proxy.url, api_key=AZURE_KEY, api_version="2024-02-01", max_retries=0)
    received = []
    with quiet_logger(), pytest.raises((openai.APIError, httpx.HTTPError)):
        async for chunk in await client.chat.completions.create(**SEEDED, stream=True):
            received.append(chunk)
    assert 0 < len(received) <= 2
    assert cassette_files(proxy.settings.cassettes_dir) == []
    await client.close()


@pytest.mark.anyio
async def test_the_async_stream_helper_raises_too_instead_of_a_short_final_message(
    proxy_factory: Callable[..., RunningProxy], sim: Any
) -> None:
    """``client.chat.completions.stream(...)`` builds the final message from the chunks:
    a cut stream must fail it, never hand back a truncated completion."""
    proxy = proxy_factory(mode="auto")
    sim.inject({"kind": "end_stream_early", "after_chunks": 3})
    client = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key="sk-test", max_retries=0)
    with quiet_logger(), pytest.raises((openai.APIError, httpx.HTTPError)):
        async with client.chat.completions.stream(model="gpt-4o", messages=PANDA, seed=42) as stream:
            await stream.get_final_completion()
    assert cassette_files(proxy.settings.cassettes_dir) == []
    await client.close()
