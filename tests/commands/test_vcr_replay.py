"""Every imported corpus interaction, replayed by the real proxy to the real SDK (issue 5, item 4; issue 12).

``test_vcr_import`` proves the stored episode equals the original body; this proves the
whole path: the SDK sends the recorded request to the proxy in replay mode (no
network), the proxy finds the key, and the SDK parses the answer into the same typed
objects (streams event for event) or raises the same exception as from the original.
The call is the one a user makes for the route: ``chat.completions.create``,
``responses.create`` (streamed or not), ``responses.retrieve``, ``embeddings.create``,
``audio.transcriptions.create`` (with the very file bytes of the recorded form, so a
miss would show the form is keyed differently from the proxy) and ``images.generate``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from seedtape.app import create_app
from seedtape.commands.vcr_import import import_paths
from seedtape.config import Settings
from tests.commands.test_vcr_import import (
    CORPUS,
    EVERY_FAMILY_ROUTES,
    Imported,
    _create_kwargs,
    _original_bytes,
    _sdk_method,
    _sdk_parse,
    corpus_sources,
    every_family_cassette,
    load_interactions,
    original,
    sdk_request,
    sdk_result,
)

pytestmark = pytest.mark.slow  # every corpus interaction through a real proxy

BASE = "http://seedtape.test"


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Imported:
    cassettes = tmp_path_factory.mktemp("cassettes")
    return Imported(import_paths([CORPUS], cassettes), cassettes)


def _replay_settings(imported: Imported, cassette: str) -> Settings:
    return Settings(
        mode="replay",
        upstream="http://127.0.0.1:9",
        cassettes_dir=imported.cassettes,
        cassette=cassette,
        cache_dir=imported.cassettes.parent / "cache",
    )


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


async def _through_proxy(imported: Imported, source: str, request: dict[str, Any], method: str = "POST") -> tuple[Any, ...]:
    """The SDK's result for the recorded request sent to the proxy in replay mode, with
    no upstream: the n-th identical request of a session gets episode n, so an
    interaction imported as episode n is asked n times and the last answer counts."""
    entry = imported.entry(source)
    recording = imported.read(source)
    app = create_app(_replay_settings(imported, entry.cassette))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http_client:
        client = _client(recording.request, http_client, session=source)
        result: tuple[Any, ...] = ()
        for _ in range(entry.episode):
            call = _sdk_method(client, entry.route, method)(**_create_kwargs(client, request, entry.route, method))
            result = await sdk_result(call)
            if result[0] == "error" and isinstance(result[3], dict):
                assert result[3].get("type") != "seedtape_cassette_miss", result[-1]
    return result


@pytest.mark.anyio
@pytest.mark.parametrize("source", corpus_sources())
async def test_imported_corpus_replays_through_the_proxy(imported: Imported, source: str) -> None:
    interaction = original(source)
    route = imported.entry(source).route
    request = sdk_request(interaction, route)
    original_request = dict(request)
    if route == "chat/completions":
        # crewAI's Azure requests carry no "model" (the deployment is in the path): the
        # SDK then gets the deployment from azure_deployment and omits the field.
        original_request.setdefault("model", imported.read(source).request["deployment"])
        request = {"model": openai.NOT_GIVEN, **request}
    from_original = await _sdk_parse("httpx", _original_bytes(interaction), original_request, route, interaction.method)
    from_proxy = await _through_proxy(imported, source, request, interaction.method)
    assert from_proxy == from_original


@pytest.fixture(scope="module")
def every_family(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Imported]:
    folder = tmp_path_factory.mktemp("families")
    source = every_family_cassette(folder / "families.yaml")
    return source, Imported(import_paths([source], folder / "cassettes"), folder / "cassettes")


@pytest.mark.anyio
@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")  # the SDK marks audio.translations deprecated
@pytest.mark.parametrize("number", range(1, len(EVERY_FAMILY_ROUTES) + 1))
async def test_every_family_replays_through_the_proxy(every_family: tuple[Path, Imported], number: int) -> None:
    """The families the public corpus lacks (moderations, speech as bytes and as events,
    translations, a transcription stream, image edits, cancel / input_items / delete)."""
    path, imported = every_family
    interaction = load_interactions(path)[number - 1]
    source = f"{path.name}#{number}"
    route = imported.entry(source).route
    request = sdk_request(interaction, route)
    from_original = await _sdk_parse("httpx", _original_bytes(interaction), request, route, interaction.method)
    from_proxy = await _through_proxy(imported, source, request, interaction.method)
    assert from_proxy == from_original
    assert from_original[0] != "error"


@pytest.mark.anyio
async def test_background_polling_replays_in_order_in_one_session(imported: Imported) -> None:
    """pydantic-ai's background mode as one program: create, then poll the same id until
    it completes. The two identical GETs get episodes 1 and 2: in_progress, completed."""
    file = "pydantic__pydantic-ai__test_background_mode_vcr.yaml"
    create = original(f"{file}#1").request_json()
    app = create_app(_replay_settings(imported, imported.entry(f"{file}#1").cassette))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http_client:
        client = openai.AsyncOpenAI(base_url=BASE + "/v1", api_key="replay", http_client=http_client, max_retries=0)
        started = await client.responses.create(**create)
        statuses = [started.status]
        while statuses[-1] in ("queued", "in_progress"):
            statuses.append((await client.responses.retrieve(started.id, stream=False)).status)
        assert len(statuses) < 5
    assert statuses == ["queued", "in_progress", "completed"]


@pytest.mark.anyio
async def test_previous_response_id_chain_replays_as_recorded(imported: Imported) -> None:
    """crewAI's auto chain: the second request names the first answer's id, taken from
    the replayed first answer, and the replayed second answer remembers the name."""
    file = "crewAIInc__crewAI__test_openai_responses_api_auto_chain_integration.yaml"
    first_request, second_request = (original(f"{file}#{n}").request_json() for n in (1, 2))
    app = create_app(_replay_settings(imported, imported.entry(f"{file}#1").cassette))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http_client:
        client = openai.AsyncOpenAI(base_url=BASE + "/v1", api_key="replay", http_client=http_client, max_retries=0)
        first = await client.responses.create(**first_request)
        second = await client.responses.create(**{**second_request, "previous_response_id": first.id})
    assert second_request["previous_response_id"] == first.id
    assert second.previous_response_id == first.id
    assert "Alice" in second.output_text
