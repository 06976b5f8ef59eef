"""Pydantic AI agents (pydantic-ai-slim) against `llmsim serve`: one agent loop per wire format
it speaks, plain and streamed, each exercising its tool and ending with a final answer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anthropic
import openai
import pytest
from google import genai
from google.genai import types
from pydantic_ai import Agent, RunContext
from pydantic_ai.exceptions import ContentFilterError
from pydantic_ai.messages import ModelRequest, ToolReturnPart
from pydantic_ai.models import Model
from pydantic_ai.models.anthropic import AnthropicModel
from pydantic_ai.models.google import GoogleModel
from pydantic_ai.models.openai import OpenAIChatModel, OpenAIResponsesModel
from pydantic_ai.providers.anthropic import AnthropicProvider
from pydantic_ai.providers.azure import AzureProvider
from pydantic_ai.providers.google import GoogleProvider
from pydantic_ai.providers.ollama import OllamaProvider
from pydantic_ai.providers.openai import OpenAIProvider

from simserver import FAST, SimServer

# google-genai's async client subclasses aiohttp's ClientSession, which aiohttp warns about
pytestmark = pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning")

SCRIPTED = {**FAST, "content": {"mode": "fixed", "text": "Done.", "rules": [
    {"toolResult": {"name": "get_weather", "match": r"(?P<temp>-?\d+) C"}, "reply": "It is ${temp} C there."}]}}  # fmt: skip
"""The default tool decision (a call on the user's turn), then a scripted answer from the result."""


def models(url: str) -> dict[str, Model]:
    key = "sk-test"
    return {
        "openai-chat": OpenAIChatModel("gpt-4o", provider=OpenAIProvider(base_url=url + "/v1", api_key=key)),
        "openai-responses": OpenAIResponsesModel("gpt-4o", provider=OpenAIProvider(base_url=url + "/v1", api_key=key)),
        "azure": OpenAIChatModel("my-deployment", provider=AzureProvider(
            openai_client=openai.AsyncAzureOpenAI(azure_endpoint=url, api_key=key, api_version="2024-10-21"))),
        "ollama-v1": OpenAIChatModel("llama3.1", provider=OllamaProvider(base_url=url + "/v1")),
        "anthropic": AnthropicModel("claude-sonnet-4", provider=AnthropicProvider(
            anthropic_client=anthropic.AsyncAnthropic(base_url=url, api_key=key))),
        "gemini": GoogleModel("gemini-2.0-flash", provider=GoogleProvider(
            client=genai.Client(api_key=key, http_options=types.HttpOptions(base_url=url)))),
    }  # fmt: skip


def weather_agent(model: Model, calls: list[str]) -> Agent[None, str]:
    agent: Agent[None, str] = Agent(model, instructions="Answer with the weather tool.")

    @agent.tool
    def get_weather(ctx: RunContext[None], city: str) -> str:
        """The current weather of a city."""
        calls.append(city)
        return f"-3 C and windy in {city}"

    return agent


def tool_returns(messages: list[Any]) -> list[str]:
    return [p.tool_name for m in messages if isinstance(m, ModelRequest) for p in m.parts
            if isinstance(p, ToolReturnPart)]  # fmt: skip


@pytest.mark.parametrize(
    "name", ["openai-chat", "openai-responses", "azure", "ollama-v1", "anthropic", "gemini"]
)
def test_the_agent_calls_its_tool_and_ends_with_the_scripted_answer(
    sim_server_factory: Callable[..., SimServer], name: str
) -> None:
    server = sim_server_factory(SCRIPTED)
    calls: list[str] = []
    result = weather_agent(models(server.url)[name], calls).run_sync("What is the weather in Oslo?")
    assert result.output == "It is -3 C there."
    assert len(calls) == 1 and tool_returns(result.all_messages()) == ["get_weather"]
    assert result.usage.requests == 2 and result.usage.tool_calls == 1


@pytest.mark.parametrize("name", ["openai-chat", "openai-responses", "anthropic", "gemini"])
async def test_the_streamed_agent_run_ends_too(
    sim_server_factory: Callable[..., SimServer], name: str
) -> None:
    server = sim_server_factory(SCRIPTED)
    calls: list[str] = []
    agent = weather_agent(models(server.url)[name], calls)
    async with agent.run_stream("What is the weather in Oslo?") as run:
        output = await run.get_output()
    assert output == "It is -3 C there." and len(calls) == 1


@pytest.mark.parametrize("name", ["openai-chat", "openai-responses", "azure", "anthropic", "gemini"])
def test_a_filtered_answer_stops_the_agent_with_its_content_filter_error(
    sim_server_factory: Callable[..., SimServer], name: str
) -> None:
    """Each provider's content-filter outcome (OpenAI/Azure `content_filter`, the Responses API's
    `incomplete` for `content_filter`, Anthropic `refusal`, Gemini `SAFETY`) is what the framework
    recognises as one: it raises ContentFilterError instead of returning a truncated answer."""
    server = sim_server_factory({**FAST, "faults": {"rates": {"content_filter": 1.0}}})
    with pytest.raises(ContentFilterError):
        weather_agent(models(server.url)[name], []).run_sync("What is the weather in Oslo?")
