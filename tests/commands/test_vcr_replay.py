"""Every imported corpus interaction, replayed by the real proxy to the real SDK (issue 5, item 4).

``test_vcr_import`` proves the stored episode equals the original body; this proves the
whole path: the SDK sends the recorded request to the proxy in replay mode (no
network), the proxy finds the key, and the SDK parses the answer into the same typed
objects (streams chunk for chunk) or raises the same exception as from the original.
"""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from seedtape.app import create_app
from seedtape.commands.vcr_import import import_paths
from seedtape.config import Settings
from tests.commands.test_vcr_import import (
    CORPUS,
    RESPONSES_FILE,
    Imported,
    _create_kwargs,
    _dumps,
    _original_bytes,
    _sdk_parse,
    corpus_sources,
    original,
)

BASE = "http://seedtape.test"


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Imported:
    cassettes = tmp_path_factory.mktemp("cassettes")
    return Imported(import_paths([CORPUS], cassettes), cassettes)


def _client(recording: dict[str, Any], http_client: httpx.AsyncClient, session: str) -> openai.AsyncOpenAI:
    headers = {"x-seedtape-session": session}
    if recording["api"] == "azure":
        return openai.AsyncAzureOpenAI(
            azure_endpoint=BASE,
            azure_deployment=recording["deployment"],
            api_version=recording["api_version"],
            api_key="replay",
            http_client=http_client,
            max_retries=0,
            default_headers=headers,
        )
    prefix = "/openai/v1" if recording["api"] == "azure-v1" else "/v1"
    return openai.AsyncOpenAI(base_url=BASE + prefix, api_key="replay", http_client=http_client, max_retries=0, default_headers=headers)


async def _through_proxy(imported: Imported, source: str, request: dict[str, Any]) -> tuple[Any, ...]:
    entry = imported.entry(source)
    recording = imported.read(source)
    settings = Settings(
        mode="replay",
        upstream="http://127.0.0.1:9",
        cassettes_dir=imported.cassettes,
        cassette=entry.cassette,
        cache_dir=imported.cassettes.parent / "cache",
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(settings)), base_url=BASE) as http_client:
        client = _client(recording.request, http_client, session=source)
        result: tuple[Any, ...] = ()
        for _ in range(entry.episode):  # the n-th identical request of a session gets episode n
            try:
                answer = await client.chat.completions.create(**_create_kwargs(client, request))
                if isinstance(answer, openai.AsyncStream):
                    chunks = [chunk async for chunk in answer]
                    result = ("stream", [type(c) for c in chunks], [_dumps(c) for c in chunks])
                else:
                    result = ("object", type(answer), _dumps(answer))
            except openai.APIStatusError as exc:
                assert exc.body.get("type") != "seedtape_cassette_miss" if isinstance(exc.body, dict) else True, exc.message
                result = ("error", type(exc), exc.status_code, exc.body, exc.code, exc.type, exc.param, exc.message)
    return result


@pytest.mark.anyio
@pytest.mark.parametrize("source", [s for s in corpus_sources() if not s.startswith(RESPONSES_FILE)])
async def test_imported_corpus_replays_through_the_proxy(imported: Imported, source: str) -> None:
    interaction = original(source)
    request = interaction.request_json()
    # crewAI's Azure requests carry no "model" (the deployment is in the path): the
    # SDK then gets the deployment from azure_deployment and omits the field.
    from_original = await _sdk_parse(
        "httpx", _original_bytes(interaction), {"model": imported.read(source).request["deployment"], **request}
    )
    from_proxy = await _through_proxy(imported, source, {"model": openai.NOT_GIVEN, **request})
    assert from_proxy == from_original
