"""import-vcr on the real-world corpus in ``tests/data/vcr-openai``.

The corpus is public vcrpy (and similar) cassettes from other projects, kept byte for
byte. The important check is replay equality: what seedtape stores, served back the way
the proxy serves it, must parse in the real ``openai`` SDK into exactly the objects (or
the exception) the SDK makes from the original recorded bytes.
"""

from __future__ import annotations

import base64
import email.policy
import hashlib
import inspect
import json
import re
import shutil
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import brotli
import httpx
import httpx2
import openai
import pytest
import yaml
from httpx_sse import EventSource
from openai._legacy_response import HttpxBinaryResponseContent
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from seedtape.cassette import InvalidCassetteName, Recording, file_name, read_recording, write_recording
from seedtape.commands.vcr_import import (
    ImportedEpisode,
    ImportReport,
    Interaction,
    cassette_name_for,
    import_paths,
    load_interactions,
)
from seedtape.episode import DONE
from seedtape.exchange import object_body
from seedtape.form import read_form
from seedtape.headers import CREDENTIAL_HEADERS, IDENTIFYING_HEADERS
from seedtape.key import make_key
from seedtape.routes import Target

# Real recordings from public projects, kept in the repository (sources and commits in
# its SOURCES.md), so these tests never depend on anything outside the checkout.
CORPUS = Path(__file__).resolve().parents[1] / "data" / "vcr-openai"

RESPONSES_FILE = "crewAIInc__crewAI__TestAzureResponsesCall.test_call_delegates_to_responses.yaml"
REASONING_FILE = "traceloop__openllmetry__test_chat_reasoning.yaml"
PHOENIX_FILE = "Arize-ai__phoenix__TestOpenAIBaseStreamingClient.test_authentication_error_records_error_status_on_span.yaml"
# The second batch (issue 12): every API family, and the URL forms seen in the wild.
BACKGROUND_FILE = "pydantic__pydantic-ai__test_background_mode_vcr.yaml"
CHAIN_FILE = "crewAIInc__crewAI__test_openai_responses_api_auto_chain_integration.yaml"
TRANSCRIBE_FILE = "DataDog__dd-trace-py__transcribe_async.yaml"
IMAGE_FILE = "DataDog__dd-trace-py__image_create.yaml"
OPENROUTER_FILE = "DataDog__dd-trace-py__chat_completion_openrouter.yaml"
ENGINES_FILE = "langchain-ai__langchain__TestWeaviate.test_similarity_search_without_metadata.yaml"
RESPONSES_STREAM_FILE = "DataDog__dd-trace-py__response_stream.yaml"
FUNCTION_CALL_STREAM_FILE = "DataDog__dd-trace-py__response_function_call_streamed.yaml"
OTEL_RESPONSES_STREAM_FILE = "open-telemetry__opentelemetry-python-contrib__test_responses_create_streaming[content_mode0].yaml"

# Interactions per file, counted by hand from the files.
EXPECTED_COUNTS = {
    "Arize-ai__openinference__instructor_instrumentation.yaml": 1,
    PHOENIX_FILE: 1,
    "DataDog__dd-trace-py__azure_chat_completion.yaml": 1,
    "DataDog__dd-trace-py__azure_openai_openai_deployments_gpt-4.1-mini_chat_completions_api-version_2024-12-01-preview_post_696c0585.json": 1,
    "crewAIInc__crewAI__TestAzureNativeToolCalling.test_azure_agent_with_native_tool_calling.yaml": 2,
    RESPONSES_FILE: 1,
    "crewAIInc__crewAI__TestAzureToolCallStreaming.test_azure_streaming_emits_tool_call_events.yaml": 1,
    "elastic__elastic-otel-python-instrumentations__test_chat_stream_all_the_client_options.yaml": 1,
    "elastic__elastic-otel-python-instrumentations__test_chat_stream_with_parallel_tools_and_capture_message_content.yaml": 1,
    "open-telemetry__opentelemetry-python-contrib__test_chat_completion_404.yaml": 1,
    "open-telemetry__opentelemetry-python-contrib__test_chat_completion_extra_params.yaml": 1,
    "open-telemetry__opentelemetry-python-contrib__test_chat_completion_streaming.yaml": 1,
    "open-telemetry__opentelemetry-python-contrib__test_chat_completion_tool_calls_with_content.yaml": 2,
    "pydantic__pydantic-ai__test_azure_provider_call.yaml": 1,
    "pydantic__pydantic-ai__test_openai_o1_mini_system_role[system].yaml": 1,
    "pydantic__pydantic-ai__test_run_stream_sync_streams_real_model.yaml": 2,
    "traceloop__openllmetry__test_chat.yaml": 1,
    "traceloop__openllmetry__test_chat_content_filtering.yaml": 1,
    REASONING_FILE: 4,
    "traceloop__openllmetry__test_chat_streaming.yaml": 1,
    # second batch
    "pydantic__pydantic-ai__test_openai_responses_model_simple_response.yaml": 1,
    BACKGROUND_FILE: 3,
    "pydantic__pydantic-ai__test_azure_responses_reasoning_context_default_wire_contract[gpt-5.4].yaml": 1,
    "traceloop__openllmetry__test_responses.yaml": 2,
    "traceloop__openllmetry__test_responses_tool_calls.yaml": 2,
    OTEL_RESPONSES_STREAM_FILE: 1,
    RESPONSES_STREAM_FILE: 1,
    FUNCTION_CALL_STREAM_FILE: 1,
    CHAIN_FILE: 2,
    "Mirascope__mirascope__call__openai_responses__sync.yaml": 1,
    ENGINES_FILE: 1,
    TRANSCRIBE_FILE: 1,
    IMAGE_FILE: 1,
    OPENROUTER_FILE: 1,
}
# The route each interaction is recorded under; every other one is chat/completions.
ROUTES = {
    f"{RESPONSES_FILE}#1": "responses",
    "pydantic__pydantic-ai__test_openai_responses_model_simple_response.yaml#1": "responses",
    f"{BACKGROUND_FILE}#1": "responses",
    f"{BACKGROUND_FILE}#2": "responses/{id}",
    f"{BACKGROUND_FILE}#3": "responses/{id}",
    "pydantic__pydantic-ai__test_azure_responses_reasoning_context_default_wire_contract[gpt-5.4].yaml#1": "responses",
    "traceloop__openllmetry__test_responses.yaml#1": "responses",
    "traceloop__openllmetry__test_responses.yaml#2": "responses",
    "traceloop__openllmetry__test_responses_tool_calls.yaml#1": "responses",
    "traceloop__openllmetry__test_responses_tool_calls.yaml#2": "responses",
    f"{OTEL_RESPONSES_STREAM_FILE}#1": "responses",
    f"{RESPONSES_STREAM_FILE}#1": "responses",
    f"{FUNCTION_CALL_STREAM_FILE}#1": "responses",
    f"{CHAIN_FILE}#1": "responses",
    f"{CHAIN_FILE}#2": "responses",
    "Mirascope__mirascope__call__openai_responses__sync.yaml#1": "responses",
    f"{ENGINES_FILE}#1": "embeddings",
    f"{TRANSCRIBE_FILE}#1": "audio/transcriptions",
    f"{IMAGE_FILE}#1": "images/generations",
}
RESPONSES_STREAMED = {f"{OTEL_RESPONSES_STREAM_FILE}#1", f"{RESPONSES_STREAM_FILE}#1", f"{FUNCTION_CALL_STREAM_FILE}#1"}
TEXT_ANSWERS = {f"{TRANSCRIBE_FILE}#1"}
STREAMED = RESPONSES_STREAMED | {
    "crewAIInc__crewAI__TestAzureToolCallStreaming.test_azure_streaming_emits_tool_call_events.yaml#1",
    "elastic__elastic-otel-python-instrumentations__test_chat_stream_all_the_client_options.yaml#1",
    "elastic__elastic-otel-python-instrumentations__test_chat_stream_with_parallel_tools_and_capture_message_content.yaml#1",
    "open-telemetry__opentelemetry-python-contrib__test_chat_completion_streaming.yaml#1",
    "pydantic__pydantic-ai__test_run_stream_sync_streams_real_model.yaml#1",
    "pydantic__pydantic-ai__test_run_stream_sync_streams_real_model.yaml#2",
    "traceloop__openllmetry__test_chat_streaming.yaml#1",
}
# Values present in the corpus that must never reach a cassette.
KNOWN_SECRETS = (
    "user-gif6bpt2ys8quwhhzo6dg5aw",  # a real openai-organization id (Arize file)
    "pydantic-28gund",
    "test_openai_org_id",
    "test_openai_api_key",
    "test_set_cookie",
    "__cf_bm",
    "_cfuvid",
    "X-API-KEY-XXX",
    "AUTHORIZATION-XXX",
    "Bearer",
    "diligentiq",  # openai-organization (pydantic background file)
    "proj_kGBnNoxZLwrofr0DRC3DVVYV",  # openai-project
    "datadog-4",  # openai-organization (DataDog files)
    "authorization-DUMMY",
)
FORBIDDEN_HEADER_NAMES = (
    "api-key",
    "authorization",
    "cookie",
    "openai-organization",
    "x-request-id",
    "apim-request-id",
)


def corpus_files() -> list[Path]:
    return sorted(p for p in CORPUS.iterdir() if p.suffix in (".yaml", ".yml", ".json"))


def corpus_sources() -> list[str]:
    return [f"{path.name}#{n}" for path in corpus_files() for n in range(1, len(load_interactions(path)) + 1)]


@dataclass
class Imported:
    report: ImportReport
    cassettes: Path

    def entry(self, source: str) -> ImportedEpisode:
        (found,) = [e for e in self.report.imported if e.source == source]
        return found

    def read(self, source: str) -> Recording:
        entry = self.entry(source)
        return read_recording(self.cassettes / entry.cassette / file_name(entry.key))

    def episode(self, source: str) -> dict[str, Any]:
        entry = self.entry(source)
        recording = read_recording(self.cassettes / entry.cassette / file_name(entry.key))
        return recording.episodes[entry.episode - 1]


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Imported:
    cassettes = tmp_path_factory.mktemp("cassettes")
    return Imported(import_paths([CORPUS], cassettes), cassettes)


def read_recording_of(imported: Imported, source: str) -> Recording:
    entry = imported.entry(source)
    return read_recording(imported.cassettes / entry.cassette / file_name(entry.key))


def original(source: str) -> Interaction:
    name, number = source.rsplit("#", 1)
    return load_interactions(CORPUS / name)[int(number) - 1]


# --------------------------------------------------------------------------- 1. import


def test_every_corpus_file_loads_with_the_expected_interaction_count() -> None:
    counts = {path.name: len(load_interactions(path)) for path in corpus_files()}
    assert counts == EXPECTED_COUNTS


def test_normalisation_of_the_dialects() -> None:
    # !!binary gzip body with Content-Encoding: gzip -> decoded bytes, encoding header gone.
    arize = load_interactions(CORPUS / "Arize-ai__openinference__instructor_instrumentation.yaml")[0]
    assert json.loads(arize.response_body)["object"] == "chat.completion"
    assert "content-encoding" not in arize.response_headers
    # old vcrpy-httpx layout: content / status_code; '//openai' URI.
    (ddog,) = load_interactions(CORPUS / "DataDog__dd-trace-py__azure_chat_completion.yaml")
    assert ddog.status == 200 and json.loads(ddog.response_body)["model"] == "gpt-35-turbo"
    assert "//openai/deployments" in ddog.url
    # pydantic-ai parsed_body on both sides.
    (pyd,) = load_interactions(CORPUS / "pydantic__pydantic-ai__test_azure_provider_call.yaml")
    assert pyd.request_json()["model"] == "gpt-4o"
    assert json.loads(pyd.response_body)["choices"][0]["message"]["content"] == "The capital of France is **Paris**."
    # header-name casing folded: lower-case in the first recording, Title-Case later.
    reasoning = load_interactions(CORPUS / REASONING_FILE)
    assert all("content-type" in i.request_headers for i in reasoning)
    # scalar header values (open-telemetry) and `headers: {}` (phoenix).
    (otel,) = load_interactions(CORPUS / "open-telemetry__opentelemetry-python-contrib__test_chat_completion_404.yaml")
    assert otel.response_headers["set-cookie"] == "test_set_cookie"
    (phoenix,) = load_interactions(CORPUS / PHOENIX_FILE)
    assert phoenix.request_headers == {} and phoenix.response_headers == {} and phoenix.status == 401


def test_every_interaction_becomes_a_recording_of_its_family(imported: Imported) -> None:
    report = imported.report
    assert report.errors == []
    assert {path.name: count for path, count in report.files} == EXPECTED_COUNTS
    assert report.skipped == []  # nothing in the corpus is unusable
    assert Counter(e.source.rsplit("#", 1)[0] for e in report.imported) == EXPECTED_COUNTS
    assert sorted(e.source for e in report.imported) == sorted(corpus_sources())
    routes = {e.source: e.route for e in report.imported}
    assert routes == {source: ROUTES.get(source, "chat/completions") for source in corpus_sources()}
    assert {e.source for e in report.imported if e.stream} == STREAMED
    assert "45 interaction(s): 45 imported" in report.summary()


def test_identical_requests_become_episodes_in_order(imported: Imported) -> None:
    entries = [imported.entry(f"{REASONING_FILE}#{n}") for n in range(1, 5)]
    assert len({e.key for e in entries}) == 1
    assert [e.episode for e in entries] == [1, 2, 3, 4]
    recording = read_recording(imported.cassettes / entries[0].cassette / file_name(entries[0].key))
    assert [ep["status"] for ep in recording.episodes] == [200, 404, 404, 404]
    assert recording.episodes[1]["body"]["error"]["code"] == "DeploymentNotFound"
    assert recording.request["api"] == "azure" and recording.request["deployment"] == "gpt-5-nano"


def test_double_slash_uri_and_null_fields_key_like_the_proxy(imported: Imported) -> None:
    entry = imported.entry("DataDog__dd-trace-py__azure_chat_completion.yaml#1")
    recording = read_recording(imported.cassettes / entry.cassette / file_name(entry.key))
    assert {k: recording.request[k] for k in ("api", "deployment", "api_version")} == {
        "api": "azure",
        "deployment": "test-openai",
        "api_version": "2023-07-01-preview",
    }
    json_file = next(p.name for p in corpus_files() if p.suffix == ".json")
    dd = imported.entry(f"{json_file}#1")
    body = original(f"{json_file}#1").request_json()
    assert body["model"] is None
    target = Target("azure", "chat/completions", "gpt-4.1-mini", "2024-12-01-preview")
    assert dd.key == make_key(target, body) == make_key(target, {k: v for k, v in body.items() if k != "model"})


def test_responses_retrieve_is_keyed_by_method_path_and_query_and_polls_become_episodes(imported: Imported) -> None:
    # pydantic-ai's background mode: POST (queued), then the same GET twice.
    create, first_poll, second_poll = (imported.entry(f"{BACKGROUND_FILE}#{n}") for n in (1, 2, 3))
    response_id = "resp_06a562f31ab7703300698b9df109c481979ebf760b2ff5fc75"
    body = object_body("GET", f"responses/{response_id}", b"stream=false")
    assert body == {"method": "GET", "path": f"responses/{response_id}", "query": {"stream": "false"}}
    assert first_poll.key == second_poll.key == make_key(Target("openai", "responses/{id}"), body) != create.key
    assert [first_poll.episode, second_poll.episode] == [1, 2]
    recording = imported.read(f"{BACKGROUND_FILE}#2")
    assert recording.request["body"] == body
    assert [ep["body"]["status"] for ep in recording.episodes] == ["in_progress", "completed"]
    assert imported.episode(f"{BACKGROUND_FILE}#1")["body"]["status"] == "queued"


def test_previous_response_id_chain_is_two_keys_the_second_naming_the_first(imported: Imported) -> None:
    first, second = imported.entry(f"{CHAIN_FILE}#1"), imported.entry(f"{CHAIN_FILE}#2")
    assert first.key != second.key and (first.episode, second.episode) == (1, 1)
    first_id = imported.episode(f"{CHAIN_FILE}#1")["body"]["id"]
    assert imported.read(f"{CHAIN_FILE}#2").request["body"]["previous_response_id"] == first_id
    assert imported.episode(f"{CHAIN_FILE}#2")["body"]["previous_response_id"] == first_id


def _reboundary(interaction: Interaction, boundary: bytes) -> tuple[bytes, str]:
    """The same form with another boundary, as the SDK would send it on another day."""
    old = re.search(r"boundary=([^;\s]+)", interaction.request_headers["content-type"])
    assert old is not None and interaction.request_body is not None
    return interaction.request_body.replace(old[1].encode(), boundary), f"multipart/form-data; boundary={boundary.decode()}"


def test_multipart_transcription_is_keyed_like_the_proxy_and_stores_no_audio(imported: Imported) -> None:
    source = f"{TRANSCRIBE_FILE}#1"
    interaction = original(source)
    assert interaction.method == "POST"  # recorded as lower-case ``method: post``
    entry = imported.entry(source)
    recording = imported.read(source)
    target = Target("openai", "audio/transcriptions")
    # The proxy's own reader, on the same form with a new boundary, gives the same key.
    _, keyed = read_form(*_reboundary(interaction, b"seedtape-new-boundary"))
    assert entry.key == make_key(target, keyed)
    assert keyed["file"] == {"sha256": recording.request["body"]["file"]["sha256"]}
    assert recording.request["body"]["temperature"] == "0.7" and recording.request["body"]["response_format"] == "text"
    assert recording.request["body"]["file"]["size"] == 45495
    # Another file is another key.
    other_body, other_type = _reboundary(interaction, b"b2")
    _, other = read_form(other_body.replace(b"ID3", b"ID4", 1), other_type)
    assert make_key(target, other) != entry.key
    # A text/plain answer is stored as text; the audio is not in the cassette.
    episode = imported.episode(source)
    assert episode["body_text"] == "Look at all those chickens.\n" and "body" not in episode
    assert episode["headers"]["content-type"] == "text/plain; charset=utf-8"
    written = (imported.cassettes / entry.cassette / file_name(entry.key)).read_bytes()
    assert len(written) < 2000 < 45495  # the hash, name, size and type of the file, not its bytes


def test_image_generation_in_the_old_layout_with_a_gzip_header_on_plain_content(imported: Imported) -> None:
    source = f"{IMAGE_FILE}#1"
    interaction = original(source)
    assert "content-encoding" not in interaction.response_headers
    episode = imported.episode(source)
    assert episode["status"] == 200 and episode["body"]["data"][0]["url"].startswith("https://oaidalleapiprodscus")
    assert "content-encoding" not in episode["headers"]
    assert imported.read(source).request["route"] == "images/generations"


def test_base_path_and_engine_urls_are_keyed_as_a_1x_sdk_sends_them(imported: Imported) -> None:
    # OpenRouter's https://openrouter.ai/api/v1/chat/completions: keyed from /v1/ on.
    openrouter = imported.read(f"{OPENROUTER_FILE}#1")
    assert {k: openrouter.request[k] for k in ("api", "route", "deployment")} == {
        "api": "openai",
        "route": "chat/completions",
        "deployment": "",
    }
    body = original(f"{OPENROUTER_FILE}#1").response_body
    assert body[:1].isspace() and body.lstrip().startswith(b"{")  # gzip of keep-alive whitespace, then JSON
    assert imported.episode(f"{OPENROUTER_FILE}#1")["body"]["object"] == "chat.completion"
    # openai 0.27's /v1/engines/text-embedding-ada-002/embeddings: the engine is the model.
    request = original(f"{ENGINES_FILE}#1").request_json()
    assert "model" not in request
    engines = imported.read(f"{ENGINES_FILE}#1")
    assert engines.request["route"] == "embeddings" and engines.request["body"] == {**request, "model": "text-embedding-ada-002"}
    assert imported.entry(f"{ENGINES_FILE}#1").key == make_key(
        Target("openai", "embeddings"), {**request, "model": "text-embedding-ada-002"}
    )


def test_streams_become_events_with_zero_offsets_and_their_end(imported: Imported) -> None:
    for source in STREAMED:
        episode = imported.episode(source)
        assert "body" not in episode and episode["headers"]["content-type"].startswith("text/event-stream")
        assert {e["ms"] for e in episode["events"]} == {0}
        if source in RESPONSES_STREAMED:
            # No [DONE]: the Responses stream ends with response.completed, and every
            # event keeps its SSE name (the type of its data).
            assert episode["events"][-1]["data"]["type"] == "response.completed"
            assert all(e["event"] == e["data"]["type"] for e in episode["events"])
            assert DONE not in [e["data"] for e in episode["events"]]
        else:
            assert episode["events"][-1]["data"] == DONE
            assert all(isinstance(e["data"], dict) and "event" not in e for e in episode["events"][:-1])


def test_no_secret_reaches_a_written_byte(imported: Imported) -> None:
    written = b"".join(path.read_bytes() for path in sorted(imported.cassettes.rglob("*")) if path.is_file())
    assert len(imported.report.written) == len(list(imported.cassettes.rglob("*.json"))) > 0
    text = written.decode("utf-8")
    lowered = text.lower()
    for name in FORBIDDEN_HEADER_NAMES:
        assert f'"{name}"' not in lowered, name
    for secret in KNOWN_SECRETS:
        assert secret not in text, secret
    # Every credential / identifying header value in the corpus, whatever its casing.
    sensitive = CREDENTIAL_HEADERS | IDENTIFYING_HEADERS
    for source in corpus_sources():
        interaction = original(source)
        for headers in (interaction.request_headers, interaction.response_headers):
            for name, value in headers.items():
                if name in sensitive and value:
                    assert value not in text, (source, name)


# --------------------------------------------------------------------------- 2. replay equality


def _serve(status: int, content_type: str, body: bytes) -> Starlette:
    """A stand-in upstream/proxy that answers every request (GET retrieves too) with the given bytes."""

    async def answer(request: Request) -> Response:
        await request.body()
        headers = {"content-type": content_type} if content_type else {}
        return Response(content=body, status_code=status, headers=headers)

    return Starlette(routes=[Route("/{path:path}", answer, methods=["GET", "POST", "DELETE"])])


def _original_bytes(interaction: Interaction) -> tuple[int, str, bytes]:
    return interaction.status, interaction.content_type, interaction.response_body


def _episode_bytes(episode: dict[str, Any]) -> tuple[int, str, bytes]:
    """The episode framed the way the proxy sends it: JSON, text, bytes, or
    ``event: …`` / ``data: …`` events (written here, not with seedtape's encoder)."""
    content_type = episode["headers"].get("content-type", "")
    if "events" in episode:
        frames = []
        for event in episode["events"]:
            data = event["data"] if event["data"] == DONE else json.dumps(event["data"], ensure_ascii=False)
            frames.append((f"event: {event['event']}\n" if "event" in event else "") + f"data: {data}\n\n")
        return episode["status"], content_type, "".join(frames).encode("utf-8")
    if "body_text" in episode:
        return episode["status"], content_type, episode["body_text"].encode("utf-8")
    if "body_base64" in episode:
        return episode["status"], content_type, base64.b64decode(episode["body_base64"])
    return episode["status"], content_type, json.dumps(episode["body"], ensure_ascii=False).encode("utf-8")


def _http_client(flavour: str, app: Starlette) -> httpx.AsyncClient | httpx2.AsyncClient:
    if flavour == "httpx2":
        return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://replay.test")
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://replay.test")


def _sdk_method(client: openai.AsyncOpenAI, route: str, method: str = "POST") -> Callable[..., Awaitable[Any]]:
    """The SDK method a user calls for each recorded route (and HTTP method)."""
    methods: dict[tuple[str, str], Callable[..., Awaitable[Any]]] = {
        ("POST", "chat/completions"): client.chat.completions.create,
        ("POST", "completions"): client.completions.create,
        ("POST", "embeddings"): client.embeddings.create,
        ("POST", "moderations"): client.moderations.create,
        ("POST", "responses"): client.responses.create,
        ("GET", "responses/{id}"): client.responses.retrieve,
        ("DELETE", "responses/{id}"): client.responses.delete,
        ("GET", "responses/{id}/input_items"): client.responses.input_items.list,
        ("POST", "responses/{id}/cancel"): client.responses.cancel,
        ("POST", "audio/transcriptions"): client.audio.transcriptions.create,
        ("POST", "audio/translations"): client.audio.translations.create,
        ("POST", "audio/speech"): client.audio.speech.create,
        ("POST", "images/generations"): client.images.generate,
        ("POST", "images/edits"): client.images.edit,
    }
    return methods[(method, route)]


def _create_kwargs(
    client: openai.AsyncOpenAI, request: dict[str, Any], route: str = "chat/completions", method: str = "POST"
) -> dict[str, Any]:
    """The recorded request as ``method(**arguments)``; fields the SDK has no argument for go in ``extra_body``."""
    known = inspect.signature(_sdk_method(client, route, method)).parameters
    kwargs = {k: v for k, v in request.items() if k in known}
    extra = {k: v for k, v in request.items() if k not in known}
    return {**kwargs, "extra_body": extra} if extra else kwargs


def _form(interaction: Interaction) -> dict[str, Any]:
    """The original multipart body as SDK arguments: each field's text, each file as
    ``(name, bytes, content type)``. Parsed with the standard library's email parser,
    not seedtape's form reader, so a wrong key cannot hide behind the same parser."""
    head = f"Content-Type: {interaction.request_headers['content-type']}\r\n\r\n".encode()
    message = BytesParser(policy=email.policy.HTTP).parsebytes(head + (interaction.request_body or b""))
    assert isinstance(message, EmailMessage) and message.is_multipart()
    form: dict[str, Any] = {}
    for part in message.iter_parts():
        assert isinstance(part, EmailMessage)
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        assert isinstance(name, str) and isinstance(payload, bytes)
        filename = part.get_filename()
        form[name] = payload.decode("utf-8") if filename is None else (filename, payload, part.get_content_type())
    return form


def sdk_request(interaction: Interaction, route: str) -> dict[str, Any]:
    """The arguments of the SDK call that sends the recorded request again, rebuilt
    from the original interaction (never from what the import stored)."""
    parts = urlsplit(interaction.url)
    if route.startswith("responses/{id}"):
        segments = parts.path.rstrip("/").split("/")
        arguments: dict[str, Any] = {"response_id": segments[segments.index("responses") + 1]}
        for name, (value,) in parse_qs(parts.query).items():
            arguments[name] = QUERY_ARGUMENTS[name](value)  # a KeyError names a query this does not know yet
        return arguments
    if route in ("audio/transcriptions", "audio/translations", "images/edits"):
        return _form(interaction)
    request = interaction.request_json()
    engine = re.search(r"/v1/engines/([^/]+)/", parts.path)
    if engine and request.get("model") is None:
        request["model"] = engine[1]  # the pre-1.0 SDK put the model in the URL
    return request


# Query parameters of the requests about a response, as the SDK's arguments take them.
QUERY_ARGUMENTS: dict[str, Callable[[str], Any]] = {
    "stream": lambda v: v == "true",
    "include_obfuscation": lambda v: v == "true",
    "starting_after": int,
    "limit": int,
    "order": str,
    "after": str,
}


def _dumps(model: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """``model_dump()``, plus the fields actually present, so null-vs-absent counts too."""
    # warnings off: with encoding_format="base64" the SDK keeps the vectors as the
    # base64 strings the API sent, in a field typed list[float].
    return model.model_dump(warnings=False), model.model_dump(exclude_unset=True, warnings=False)


async def sdk_result(call: Awaitable[Any]) -> tuple[Any, ...]:
    """What the SDK makes of an answer: a typed object, a text, its stream's events one
    by one, or the exception it raises."""
    try:
        result = await call
        if isinstance(result, openai.AsyncStream):
            chunks = [chunk async for chunk in result]
            return ("stream", [type(c) for c in chunks], [_dumps(c) for c in chunks])
        if isinstance(result, str):
            return ("text", result)
        if result is None:  # responses.delete
            return ("none",)
        if isinstance(result, HttpxBinaryResponseContent):  # audio.speech
            content_type = result.response.headers.get("content-type", "")
            if content_type.startswith("text/event-stream"):
                # stream_format="sse": the SDK hands over the raw bytes; compare the
                # events (a cassette stores JSON with sorted keys, not the same bytes).
                events = EventSource(result.response).iter_sse()
                return ("binary events", content_type, [(e.event, json.loads(e.data)) for e in events])
            return ("binary", content_type, result.content)
        return ("object", type(result), _dumps(result))
    except openai.APIStatusError as exc:
        return ("error", type(exc), exc.status_code, exc.body, exc.code, exc.type, exc.param, exc.message)


async def _sdk_parse(
    flavour: str, served: tuple[int, str, bytes], request: dict[str, Any], route: str = "chat/completions", method: str = "POST"
) -> tuple[Any, ...]:
    """What the SDK makes of a served response, called the way a user calls ``route``."""
    async with _http_client(flavour, _serve(*served)) as http_client:
        client = openai.AsyncOpenAI(api_key="sk-replay", base_url="http://replay.test/v1", http_client=http_client, max_retries=0)
        return await sdk_result(_sdk_method(client, route, method)(**_create_kwargs(client, request, route, method)))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.slow  # every corpus interaction, both HTTP stacks
@pytest.mark.anyio
@pytest.mark.parametrize("flavour", ["httpx2", "httpx"])
@pytest.mark.parametrize("source", corpus_sources())
async def test_replay_parses_into_the_same_sdk_objects(imported: Imported, source: str, flavour: str) -> None:
    interaction = original(source)
    recording = read_recording_of(imported, source)
    route = recording.request["route"]
    request = sdk_request(interaction, route)
    if route == "chat/completions":
        # crewAI's Azure requests carry no "model" (the deployment is in the path); the
        # SDK requires the argument, and an Azure user passes the deployment there.
        request.setdefault("model", recording.request["deployment"])
    from_original = await _sdk_parse(flavour, _original_bytes(interaction), request, route, interaction.method)
    from_seedtape = await _sdk_parse(flavour, _episode_bytes(imported.episode(source)), request, route, interaction.method)
    assert from_seedtape == from_original
    kind = from_original[0]
    if 200 <= interaction.status < 300:
        assert kind == ("stream" if source in STREAMED else "text" if source in TEXT_ANSWERS else "object")
        if kind == "stream":
            events = imported.episode(source)["events"]
            assert len(from_original[2]) == len([e for e in events if e["data"] != DONE]) > 1
    else:
        assert kind == "error" and from_original[2] == interaction.status
        assert issubclass(from_original[1], openai.APIStatusError)


# --------------------------------------------------------------------------- 3. bad files and options


def test_unreadable_files_are_reported_and_the_rest_still_imports(tmp_path: Path) -> None:
    inbox = tmp_path / "vcr"
    inbox.mkdir()
    good = "open-telemetry__opentelemetry-python-contrib__test_chat_completion_extra_params.yaml"
    shutil.copy(CORPUS / good, inbox / good)
    (inbox / "a_broken.yaml").write_text("interactions:\n- request: {method: POST\n  uri: [\n", encoding="utf-8")
    (inbox / "b_not_a_cassette.yaml").write_text("hello: world\n", encoding="utf-8")
    (inbox / "c_latin1.yaml").write_bytes("interactions: [] # caf\xe9\n".encode("latin-1"))
    (inbox / "d_bad_status.json").write_text('{"request": {"method": "POST", "url": "https://x/v1/chat/completions"}, "response": {}}')
    (inbox / "notes.txt").write_text("not picked up from a folder")

    report = import_paths([inbox, tmp_path / "missing.yaml"], tmp_path / "cassettes")

    messages = {path.name: message for path, message in report.errors}
    assert set(messages) == {
        "a_broken.yaml",
        "b_not_a_cassette.yaml",
        "c_latin1.yaml",
        "d_bad_status.json",
        "missing.yaml",
    }
    assert "broken YAML at line" in messages["a_broken.yaml"]
    assert "not a vcrpy cassette" in messages["b_not_a_cassette.yaml"]
    assert "not UTF-8" in messages["c_latin1.yaml"]
    assert "interaction 1" in messages["d_bad_status.json"] and "status" in messages["d_bad_status.json"]
    assert "no such file" in messages["missing.yaml"]
    for path, message in report.errors:
        assert str(path) in message  # every message names its file
    assert [e.source for e in report.imported] == [f"{good}#1"]
    assert not report.ok and "5 error(s)" in report.summary()
    assert (tmp_path / "cassettes" / good.removesuffix(".yaml")).is_dir()


def test_one_cassette_for_everything_counts_occurrences_across_files(tmp_path: Path) -> None:
    # test_chat and test_chat_content_filtering sent the very same request.
    files = [
        CORPUS / "traceloop__openllmetry__test_chat.yaml",
        CORPUS / "traceloop__openllmetry__test_chat_content_filtering.yaml",
    ]
    report = import_paths(files, tmp_path, cassette="suite/azure")
    assert [(e.cassette, e.episode) for e in report.imported] == [("suite/azure", 1), ("suite/azure", 2)]
    (path,) = report.written
    episodes = read_recording(path).episodes
    assert [ep["body"]["choices"][0]["finish_reason"] for ep in episodes] == ["stop", "content_filter"]
    with pytest.raises(InvalidCassetteName):
        import_paths(files, tmp_path, cassette="../outside")


def test_reimport_rewrites_episodes_by_position_and_keeps_extra_ones(tmp_path: Path) -> None:
    source = CORPUS / REASONING_FILE
    first = import_paths([source], tmp_path)
    (path,) = first.written
    recording = read_recording(path)
    recording.episodes.append({"status": 200, "headers": {}, "body": {"kept": True}, "recorded_at": "x", "latency_ms": 0})
    write_recording(path, recording)
    second = import_paths([source], tmp_path)
    assert [e.episode for e in second.imported] == [1, 2, 3, 4]
    episodes = read_recording(path).episodes
    assert len(episodes) == 5 and episodes[4]["body"] == {"kept": True}
    assert [ep["status"] for ep in episodes[:4]] == [200, 404, 404, 404]


def test_existing_broken_cassette_file_is_reported_not_overwritten(tmp_path: Path) -> None:
    source = CORPUS / "open-telemetry__opentelemetry-python-contrib__test_chat_completion_404.yaml"
    key = import_paths([source], tmp_path / "probe").imported[0].key
    target = tmp_path / "cassettes" / cassette_name_for(source) / file_name(key)
    target.parent.mkdir(parents=True)
    target.write_text("{ not json")
    report = import_paths([source], tmp_path / "cassettes")
    assert report.imported == [] and len(report.errors) == 1 and "broken JSON" in report.errors[0][1]
    assert target.read_text() == "{ not json"


def test_record_errors_false_skips_error_responses(tmp_path: Path) -> None:
    report = import_paths([CORPUS / REASONING_FILE], tmp_path, record_errors=False)
    assert [e.status for e in report.imported] == [200]
    assert len(report.skipped) == 3 and all("HTTP 404" in reason for _, reason in report.skipped)


def test_cassette_names_from_file_stems() -> None:
    assert cassette_name_for(Path("x/test_openai_o1_mini_system_role[system].yaml")) == "test_openai_o1_mini_system_role[system]"
    assert cassette_name_for(Path("a b:c?.yml")) == "a_b_c_"
    assert len(cassette_name_for(Path("n" * 300 + ".yaml"))) == 200


def test_recording_request_holds_only_the_key_material(imported: Imported) -> None:
    for entry in imported.report.imported:
        recording: Recording = read_recording(imported.cassettes / entry.cassette / file_name(entry.key))
        assert set(recording.request) == {"api", "route", "deployment", "api_version", "body"}
        assert recording.key == entry.key


SYNTHETIC = """\
interactions:
- request:
    body: '{"input": "hello", "model": "text-embedding-3-small"}'
    headers: {Authorization: [Bearer sk-secret-embeddings]}
    method: POST
    uri: https://api.openai.com/v1/embeddings
  response:
    body: {string: '{"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.5, -1.0]}]}'}
    headers: {Content-Type: [application/json], Set-Cookie: [a=1, b=2]}
    status: {code: 200, message: OK}
- request:
    body: '{"messages": [{"role": "user", "content": "hi"}], "model": "m", "stream": true}'
    headers: {}
    method: POST
    uri: https://api.openai.com/v1/chat/completions
  response:
    body: {string: "data: {\\"choices\\": []}\\n\\n"}
    headers: {Content-Type: text/event-stream}
    status: {code: 200, message: OK}
- request:
    body: '{"messages": [{"role": "user", "content": "hi"}], "model": "m"}'
    headers: {}
    method: POST
    uri: https://api.openai.com/v1/chat/completions
  response:
    body: {string: '<html>Bad gateway</html>'}
    headers: {Content-Type: text/html}
    status: {code: 502, message: Bad Gateway}
- request:
    body: null
    headers: {}
    method: GET
    uri: https://api.openai.com/v1/models
  response:
    body: {string: '{"data": []}'}
    headers: {}
    status: {code: 200, message: OK}
version: 1
"""


def test_embeddings_import_and_unusable_interactions_are_skipped_with_reasons(tmp_path: Path) -> None:
    source = tmp_path / "synthetic.yaml"
    source.write_text(SYNTHETIC, encoding="utf-8")
    report = import_paths([source], tmp_path / "cassettes")
    assert [(e.source, e.route) for e in report.imported] == [("synthetic.yaml#1", "embeddings")]
    reasons = dict(report.skipped)
    assert "[DONE]" in reasons["synthetic.yaml#2"]
    assert "neither JSON nor Server-Sent Events" in reasons["synthetic.yaml#3"]
    assert "GET /v1/models is not a recorded route" in reasons["synthetic.yaml#4"]
    (path,) = report.written
    text = path.read_text(encoding="utf-8")
    assert read_recording(path).episodes[0]["body"]["data"][0]["embedding"] == [0.5, -1.0]
    assert "sk-secret-embeddings" not in text and "a=1" not in text
    assert load_interactions(source)[0].response_headers["set-cookie"] == "a=1, b=2"


# --------------------------------------------------------------------------- 4. every family, URL forms, encodings


def _exchange(
    uri: str,
    request_body: str | bytes | None,
    response_body: str | bytes,
    *,
    method: str = "POST",
    status: int = 200,
    request_headers: dict[str, str] | None = None,
    response_headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One vcrpy interaction (header values as lists, as vcrpy writes them)."""
    return {
        "request": {
            "body": request_body,
            "headers": {k: [v] for k, v in (request_headers or {}).items()},
            "method": method,
            "uri": uri,
        },
        "response": {
            "body": {"string": response_body},
            "headers": {k: [v] for k, v in (response_headers or {"Content-Type": "application/json"}).items()},
            "status": {"code": status, "message": "OK"},
        },
    }


def _cassette(path: Path, *interactions: dict[str, Any]) -> Path:
    """A vcrpy file written with PyYAML: bytes become ``!!binary``, as vcrpy writes them."""
    path.write_text(yaml.safe_dump({"interactions": list(interactions), "version": 1}), encoding="utf-8")
    return path


CHAT_ANSWER = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m", "choices": []}


@pytest.mark.parametrize(
    ("uri", "body", "target", "keyed_body"),
    [
        # a base path before a known API path: keyed from /v1/ on
        ("https://gateway.test/test/v1/chat/completions", {"model": "m"}, Target("openai", "chat/completions"), {"model": "m"}),
        ("https://openrouter.ai/api/v1/chat/completions", {"model": "m"}, Target("openai", "chat/completions"), {"model": "m"}),
        # ... and from /openai/ on (an API gateway in front of Azure)
        (
            "https://gateway.test/team-a/openai/deployments/gpt4/chat/completions?api-version=2024-02-01",
            {},
            Target("azure", "chat/completions", "gpt4", "2024-02-01"),
            {},
        ),
        # pre-1.0 engines: the engine is the model, unless the body names one
        (
            "https://api.openai.com/v1/engines/davinci/completions",
            {"prompt": "p"},
            Target("openai", "completions"),
            {"prompt": "p", "model": "davinci"},
        ),
        (
            "https://api.openai.com/v1/engines/davinci/completions",
            {"prompt": "p", "model": "x"},
            Target("openai", "completions"),
            {"prompt": "p", "model": "x"},
        ),
        ("https://b.test/base/v1/engines/ada/embeddings", {"input": "i"}, Target("openai", "embeddings"), {"input": "i", "model": "ada"}),
        # Azure URLs with a doubled slash, in every Azure shape
        (
            "https://r.openai.azure.com//openai/deployments/d//chat/completions?api-version=v",
            {},
            Target("azure", "chat/completions", "d", "v"),
            {},
        ),
        ("https://r.openai.azure.com//openai/v1/responses", {"model": "d"}, Target("azure-v1", "responses"), {"model": "d"}),
        (
            "https://r.openai.azure.com//openai/responses?api-version=v",
            {"model": "d"},
            Target("azure", "responses", "", "v"),
            {"model": "d"},
        ),
    ],
)
def test_url_forms_seen_in_the_wild(tmp_path: Path, uri: str, body: dict[str, Any], target: Target, keyed_body: dict[str, Any]) -> None:
    source = _cassette(tmp_path / "forms.yaml", _exchange(uri, json.dumps(body), json.dumps(CHAT_ANSWER)))
    report = import_paths([source], tmp_path / "cassettes")
    assert report.skipped == [] and report.errors == []
    (entry,) = report.imported
    assert entry.key == make_key(target, keyed_body)
    (path,) = report.written
    assert read_recording(path).request == {**target.as_dict(), "body": keyed_body}


def test_unknown_paths_after_a_base_path_are_still_skipped(tmp_path: Path) -> None:
    source = _cassette(
        tmp_path / "other.yaml",
        _exchange("https://x.test/api/v1/files", "{}", "{}"),
        _exchange("https://x.test/api/v1/engines/davinci/fine-tunes", "{}", "{}"),
    )
    report = import_paths([source], tmp_path / "cassettes")
    assert report.imported == []
    assert [reason.split(" is not")[0] for _, reason in report.skipped] == ["POST /api/v1/files", "POST /api/v1/engines/davinci/fine-tunes"]


def test_brotli_bodies_are_decoded(tmp_path: Path) -> None:
    """No public brotli cassette was found: these bodies are compressed here."""
    answer = json.dumps({**CHAT_ANSWER, "choices": [{"index": 0, "message": {"role": "assistant", "content": "brotli " * 50}}]})
    compressed = brotli.compress(answer.encode())
    assert len(compressed) < len(answer) // 4
    events = [
        {"type": "response.created", "sequence_number": 0, "response": {"id": "resp_1", "object": "response", "status": "in_progress"}},
        {"type": "response.completed", "sequence_number": 1, "response": {"id": "resp_1", "object": "response", "status": "completed"}},
    ]
    stream = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)
    br = {"Content-Type": "application/json", "Content-Encoding": "br"}
    source = _cassette(
        tmp_path / "br.yaml",
        _exchange("https://api.openai.com/v1/chat/completions", '{"model": "m", "seed": 1}', compressed, response_headers=br),
        _exchange(
            "https://api.openai.com/v1/responses",
            '{"model": "m", "input": "hi", "stream": true}',
            brotli.compress(stream.encode()),
            response_headers={"Content-Type": "text/event-stream; charset=utf-8", "Content-Encoding": "br"},
        ),
        # a recorder that decoded the body but kept the header
        _exchange("https://api.openai.com/v1/chat/completions", '{"model": "m", "seed": 2}', answer, response_headers=br),
    )
    assert "!!binary" in source.read_text()
    interactions = load_interactions(source)
    assert [i.response_body for i in interactions] == [answer.encode(), stream.encode(), answer.encode()]
    assert all("content-encoding" not in i.response_headers for i in interactions)
    report = import_paths([source], tmp_path / "cassettes")
    assert report.skipped == [] and report.errors == []
    episodes = [read_recording(tmp_path / "cassettes" / "br" / file_name(e.key)).episodes[0] for e in report.imported]
    assert episodes[0]["body"] == episodes[2]["body"] == json.loads(answer)
    assert [e["data"] for e in episodes[1]["events"]] == events
    assert all("content-encoding" not in e["headers"] for e in episodes)


def test_a_br_header_on_bytes_that_are_not_brotli_is_an_error_naming_the_file(tmp_path: Path) -> None:
    source = _cassette(
        tmp_path / "bad_br.yaml",
        _exchange("https://api.openai.com/v1/chat/completions", "{}", b"\xff\xfe\x00garbage", response_headers={"Content-Encoding": "br"}),
    )
    report = import_paths([source], tmp_path / "cassettes")
    ((path, message),) = report.errors
    assert path == source and str(source) in message and "interaction 1" in message and "br" in message


def _responses_stream(*types: str) -> str:
    events = [{"type": kind, "sequence_number": n, "response": {"id": "resp_1", "object": "response"}} for n, kind in enumerate(types)]
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)


def test_responses_streams_are_complete_by_their_family_not_by_done(tmp_path: Path) -> None:
    sse = {"Content-Type": "text/event-stream"}
    ask = '{"model": "m", "input": "hi", "stream": true}'
    uri = "https://api.openai.com/v1/responses"
    source = _cassette(
        tmp_path / "streams.yaml",
        _exchange(uri, ask, _responses_stream("response.created", "response.completed"), response_headers=sse),
        _exchange(uri, ask, _responses_stream("response.created", "response.incomplete"), response_headers=sse),
        _exchange(uri, ask, _responses_stream("response.created", "response.output_text.delta"), response_headers=sse),
        _exchange(uri, ask, _responses_stream("response.created", "response.failed"), response_headers=sse),
        # a scrubbed content-type: a stream by its first line, ``event:``
        _exchange(uri, ask, _responses_stream("response.created", "response.completed"), response_headers={}),
    )
    report = import_paths([source], tmp_path / "cassettes")
    assert [(e.source, e.episode, e.stream) for e in report.imported] == [
        ("streams.yaml#1", 1, True),
        ("streams.yaml#2", 2, True),
        ("streams.yaml#5", 3, True),
    ]
    reasons = dict(report.skipped)
    assert "does not reach the responses completion event" in reasons["streams.yaml#3"]
    assert "error event" in reasons["streams.yaml#4"]


def _form_body(fields: dict[str, str], audio: bytes) -> tuple[bytes, str]:
    request = httpx.Request("POST", "https://x.test", data=fields, files={"file": ("a.wav", audio, "audio/wav")})
    return request.read(), request.headers["content-type"]


def test_text_answers_stay_text_and_a_scrubbed_multipart_header_is_rebuilt(tmp_path: Path) -> None:
    body, content_type = _form_body({"model": "whisper-1", "response_format": "text"}, b"RIFF....WAVE")
    uri = "https://api.openai.com/v1/audio/translations"
    source = _cassette(
        tmp_path / "audio.yaml",
        # a transcript that happens to be JSON: still the text the client got
        _exchange(uri, body, "42\n", request_headers={"Content-Type": content_type}, response_headers={"Content-Type": "text/plain"}),
        # the content-type header scrubbed away: the boundary is read from the body
        _exchange(uri, body, '{"text": "42"}'),
    )
    report = import_paths([source], tmp_path / "cassettes")
    assert report.skipped == [] and report.errors == []
    first, second = report.imported
    assert first.key == second.key == make_key(Target("openai", "audio/translations"), read_form(body, content_type)[1])
    (path,) = report.written
    episodes = read_recording(path).episodes
    assert episodes[0]["body_text"] == "42\n" and "body" not in episodes[0]
    assert episodes[1]["body"] == {"text": "42"}


def _sse(*events: dict[str, Any]) -> str:
    """Events framed as the API frames them: an ``event:`` line, compact JSON."""
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e, separators=(',', ':'))}\n\n" for e in events)


SSE = {"Content-Type": "text/event-stream; charset=utf-8"}
RESPONSE = {"id": "resp_1", "object": "response", "created_at": 1, "status": "completed", "model": "gpt-4o", "output": []}
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


def every_family_cassette(path: Path) -> Path:
    """One recorded exchange for each family and endpoint the public corpus lacks, in
    the shapes the API answers with (speech: audio bytes; streams: named events)."""
    audio = b"ID3\x04\x00\x00\x00\x00\x00\x00\xff\xfb\x90\x00" + bytes(range(256))
    translation_form, translation_type = _form_body({"model": "whisper-1"}, audio)
    stream_form, stream_type = _form_body({"model": "gpt-4o-transcribe", "stream": "true"}, audio)
    edit = httpx.Request(
        "POST",
        "https://x.test",
        data={"prompt": "a hat", "model": "gpt-image-1"},
        files={"image": ("in.png", base64.b64decode(PNG), "image/png")},
    )
    v1 = "https://api.openai.com/v1"
    return _cassette(
        path,
        _exchange(
            f"{v1}/moderations",
            '{"input": "hello", "model": "omni-moderation-latest"}',
            json.dumps(
                {
                    "id": "modr-1",
                    "model": "omni-moderation-latest",
                    "results": [{"flagged": False, "categories": {"hate": False}, "category_scores": {"hate": 0.001}}],
                }
            ),
        ),
        _exchange(
            f"{v1}/audio/speech",
            '{"input": "hello", "model": "tts-1", "voice": "alloy"}',
            audio,
            response_headers={"Content-Type": "audio/mpeg"},
        ),
        _exchange(
            f"{v1}/audio/speech",
            '{"input": "hello", "model": "gpt-4o-mini-tts", "voice": "alloy", "stream_format": "sse"}',
            _sse(
                {"type": "speech.audio.delta", "audio": base64.b64encode(audio).decode()},
                {"type": "speech.audio.done", "usage": {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3}},
            ),
            response_headers=SSE,
        ),
        _exchange(f"{v1}/audio/translations", translation_form, '{"text": "Hello."}', request_headers={"Content-Type": translation_type}),
        _exchange(
            f"{v1}/audio/transcriptions",
            stream_form,
            _sse(
                {"type": "transcript.text.delta", "delta": "Hel"},
                {"type": "transcript.text.delta", "delta": "lo."},
                {"type": "transcript.text.done", "text": "Hello."},
            ),
            request_headers={"Content-Type": stream_type},
            response_headers=SSE,
        ),
        _exchange(
            f"{v1}/images/edits",
            edit.read(),
            json.dumps({"created": 1, "data": [{"b64_json": PNG}]}),
            request_headers={"Content-Type": edit.headers["content-type"]},
        ),
        _exchange(f"{v1}/responses/resp_1/cancel", "", json.dumps({**RESPONSE, "status": "cancelled"})),
        _exchange(
            f"{v1}/responses/resp_1/input_items?limit=2",
            None,
            json.dumps(
                {
                    "object": "list",
                    "data": [{"id": "msg_1", "type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
                    "first_id": "msg_1",
                    "last_id": "msg_1",
                    "has_more": False,
                }
            ),
            method="GET",
        ),
        _exchange(
            f"{v1}/responses/resp_1", None, json.dumps({"id": "resp_1", "object": "response.deleted", "deleted": True}), method="DELETE"
        ),
    )


EVERY_FAMILY_ROUTES = [
    ("moderations", "body"),
    ("audio/speech", "body_base64"),
    ("audio/speech", "events"),
    ("audio/translations", "body"),
    ("audio/transcriptions", "events"),
    ("images/edits", "body"),
    ("responses/{id}/cancel", "body"),
    ("responses/{id}/input_items", "body"),
    ("responses/{id}", "body"),
]


def test_every_family_imports(tmp_path: Path) -> None:
    source = every_family_cassette(tmp_path / "families.yaml")
    report = import_paths([source], tmp_path / "cassettes")
    assert report.skipped == [] and report.errors == []
    kinds = []
    for entry in report.imported:
        recording = read_recording(tmp_path / "cassettes" / entry.cassette / file_name(entry.key))
        episode = recording.episodes[entry.episode - 1]
        kinds.append((entry.route, next(k for k in ("body", "body_text", "body_base64", "events") if k in episode)))
    assert kinds == EVERY_FAMILY_ROUTES
    speech = read_recording(tmp_path / "cassettes" / "families" / file_name(report.imported[1].key)).episodes[0]
    audio = load_interactions(source)[1].response_body
    assert (speech["body_sha256"], speech["body_size"], speech["headers"]["content-type"]) == (
        hashlib.sha256(audio).hexdigest(),
        len(audio),
        "audio/mpeg",
    )
    edit = read_recording(tmp_path / "cassettes" / "families" / file_name(report.imported[5].key)).request["body"]
    assert edit["image"] == {
        "filename": "in.png",
        "content_type": "image/png",
        "size": 70,
        "sha256": hashlib.sha256(base64.b64decode(PNG)).hexdigest(),
    }
    deleted = read_recording(tmp_path / "cassettes" / "families" / file_name(report.imported[8].key)).request["body"]
    assert deleted == {"method": "DELETE", "path": "responses/resp_1", "query": {}}
