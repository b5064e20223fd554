from __future__ import annotations

import pytest

from seedtape.routes import Target, match_route


@pytest.mark.parametrize(
    "path,expected",
    [
        ("/openai/deployments/gpt-4/chat/completions", Target("azure", "chat/completions", "gpt-4", "V")),
        ("//openai/deployments/gpt-4/chat/completions", Target("azure", "chat/completions", "gpt-4", "V")),
        ("/openai/deployments/ada/embeddings", Target("azure", "embeddings", "ada", "V")),
        ("/openai/deployments/davinci/completions", Target("azure", "completions", "davinci", "V")),
        ("/openai/v1/chat/completions", Target("azure-v1", "chat/completions", "", "V")),
        ("/openai/v1/embeddings", Target("azure-v1", "embeddings", "", "V")),
        ("/v1/chat/completions", Target("openai", "chat/completions", "", "V")),
        ("/v1/completions", Target("openai", "completions", "", "V")),
        ("/v1/embeddings", Target("openai", "embeddings", "", "V")),
    ],
)
def test_recorded_routes(path: str, expected: Target) -> None:
    assert match_route("POST", path, "V") == expected


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/v1/chat/completions"),
        ("POST", "/v1/responses"),
        ("POST", "/openai/v1/responses"),
        ("GET", "/v1/models"),
        ("POST", "/v1/chat/completions/x"),
    ],
)
def test_everything_else_is_not_recorded(method: str, path: str) -> None:
    assert match_route(method, path) is None
