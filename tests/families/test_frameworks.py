"""Frameworks that use the Responses API by default, driven through seedtape and replayed
offline (issue 12): the openai Agents SDK's default agent with a tool call, and
pydantic-ai's OpenAIResponsesModel. Neither knows seedtape is there: only the base URL
changes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import openai
import pytest

from tests.conftest import OPENAI_KEY, RunningProxy

OFFLINE = "http://127.0.0.1:9"


def agents_weather(url: str) -> tuple[str, list[str]]:
    from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled

    set_tracing_disabled(True)  # the SDK would otherwise send traces to api.openai.com

    @function_tool
    def get_weather(city: str) -> str:
        """Get the current weather for a city."""
        return f"Sunny and 21C in {city}"

    client = openai.AsyncOpenAI(base_url=url + "/v1", api_key=OPENAI_KEY, max_retries=0)
    agent = Agent(
        name="Assistant", instructions="Use tools.", tools=[get_weather], model=OpenAIResponsesModel("gpt-4o", openai_client=client)
    )
    result = Runner.run_sync(agent, "What is the weather in Paris?")
    return str(result.final_output), [type(item).__name__ for item in result.new_items]


def pydantic_ai_story(url: str) -> str:
    from pydantic_ai import Agent
    from pydantic_ai.models.openai import OpenAIResponsesModel
    from pydantic_ai.providers.openai import OpenAIProvider

    model = OpenAIResponsesModel("gpt-4o", provider=OpenAIProvider(base_url=url + "/v1", api_key=OPENAI_KEY))
    return str(Agent(model, instructions="Be brief.").run_sync("Tell me a story about a red panda.").output)


@pytest.mark.slow
def test_openai_agents_default_agent_with_a_tool_call_replays_offline(
    proxy_factory: Callable[..., RunningProxy], sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_AGENTS_DISABLE_TRACING", "1")
    recorder = proxy_factory(mode="auto")
    live = agents_weather(recorder.url)
    assert live[1] == ["ToolCallItem", "ToolCallOutputItem", "MessageOutputItem"]
    assert "Sunny and 21C in Paris" in live[0], "the tool's result went back to the model through seedtape"
    assert sim.calls_by_route["responses"] == 2
    offline = proxy_factory(mode="replay", upstream=OFFLINE, cache_dir=recorder.settings.cache_dir.parent / "replay")
    assert agents_weather(offline.url) == live


def test_pydantic_ai_responses_model_replays_offline(proxy_factory: Callable[..., RunningProxy], sim: Any) -> None:
    recorder = proxy_factory(mode="auto")
    live = pydantic_ai_story(recorder.url)
    assert live and sim.calls_by_route["responses"] == 1
    offline = proxy_factory(mode="replay", upstream=OFFLINE, cache_dir=recorder.settings.cache_dir.parent / "replay")
    assert pydantic_ai_story(offline.url) == live
