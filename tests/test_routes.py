from __future__ import annotations

import pytest

from seedtape.families import FAMILIES
from seedtape.routes import Target, match_route


@pytest.mark.parametrize(
    "method,path,expected",
    [
        ("POST", "/openai/deployments/gpt-4/chat/completions", Target("azure", "chat/completions", "gpt-4", "V")),
        ("POST", "//openai/deployments/gpt-4/chat/completions", Target("azure", "chat/completions", "gpt-4", "V")),
        ("POST", "/openai/deployments/ada/embeddings", Target("azure", "embeddings", "ada", "V")),
        ("POST", "/openai/deployments/davinci/completions", Target("azure", "completions", "davinci", "V")),
        ("POST", "/openai/v1/chat/completions", Target("azure-v1", "chat/completions", "", "V")),
        ("POST", "/openai/v1/embeddings", Target("azure-v1", "embeddings", "", "V")),
        ("POST", "/v1/chat/completions", Target("openai", "chat/completions", "", "V")),
        ("POST", "/v1/chat/completions/", Target("openai", "chat/completions", "", "V")),
        ("POST", "/v1/completions", Target("openai", "completions", "", "V")),
        ("POST", "/v1/embeddings", Target("openai", "embeddings", "", "V")),
        # the four URL shapes of the Responses API and its requests about an object
        ("POST", "/v1/responses", Target("openai", "responses", "", "V")),
        ("POST", "/openai/v1/responses", Target("azure-v1", "responses", "", "V")),
        ("POST", "/openai/responses", Target("azure", "responses", "", "V")),
        ("GET", "/v1/responses/resp_1", Target("openai", "responses/{id}", "", "V")),
        ("DELETE", "/openai/responses/resp_1", Target("azure", "responses/{id}", "", "V")),
        ("GET", "/openai/v1/responses/resp_1/input_items", Target("azure-v1", "responses/{id}/input_items", "", "V")),
        ("POST", "/v1/responses/resp_1/cancel", Target("openai", "responses/{id}/cancel", "", "V")),
        ("POST", "/openai/moderations", Target("azure", "moderations", "", "V")),
        ("POST", "/openai/deployments/whisper/audio/transcriptions", Target("azure", "audio/transcriptions", "whisper", "V")),
        ("POST", "/v1/audio/translations", Target("openai", "audio/translations", "", "V")),
        ("POST", "/openai/deployments/tts/audio/speech", Target("azure", "audio/speech", "tts", "V")),
        ("POST", "/v1/images/generations", Target("openai", "images/generations", "", "V")),
        ("POST", "/openai/deployments/img/images/edits", Target("azure", "images/edits", "img", "V")),
    ],
)
def test_recorded_routes(method: str, path: str, expected: Target) -> None:
    match = match_route(method, path, "V")
    assert match is not None and match.target == expected
    assert expected.route in {ep.route for ep in match.family.endpoints}


def test_object_routes_keep_the_object_path() -> None:
    match = match_route("GET", "/openai/v1/responses/resp_abc/input_items")
    assert match is not None and match.subpath == "responses/resp_abc/input_items"
    assert match.target.path(match.subpath) == "/openai/v1/responses/resp_abc/input_items"


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/v1/chat/completions"),
        ("GET", "/v1/models"),
        ("POST", "/v1/files"),
        ("POST", "/v1/chat/completions/x"),
        ("PUT", "/v1/responses/resp_1"),
        ("GET", "/v1/responses/resp_1/cancel"),
        ("POST", "/openai/deployments/x/assistants"),
    ],
)
def test_everything_else_is_not_recorded(method: str, path: str) -> None:
    assert match_route(method, path) is None


def test_every_endpoint_route_belongs_to_one_family() -> None:
    routes = [(ep.method, ep.route) for family in FAMILIES for ep in family.endpoints]
    assert len(routes) == len(set(routes))
