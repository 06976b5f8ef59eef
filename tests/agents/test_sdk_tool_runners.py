"""The providers' own SDK tool runners against `llmsim serve`: the Anthropic SDK's
`beta.messages.tool_runner` (plain and streamed) and google-genai's automatic function calling.
Each runs the model-tool loop itself; both must exercise the tool and end."""

from __future__ import annotations

from collections.abc import Callable

import anthropic
from anthropic import beta_tool
from google import genai
from google.genai import types

from simserver import FAST, SimServer

SCRIPTED = {**FAST, "content": {"mode": "fixed", "text": "Done.", "rules": [
    {"toolResult": {"name": "get_weather", "match": r"(?P<temp>-?\d+) C"}, "reply": "It is ${temp} C there."}]}}  # fmt: skip
QUESTION = "What is the weather in Oslo?"


def test_anthropic_tool_runner_plain_and_streamed(sim_server_factory: Callable[..., SimServer]) -> None:
    calls: list[str] = []

    @beta_tool
    def get_weather(city: str) -> str:
        """The current weather of a city.

        Args:
            city: The city's name.
        """
        calls.append(city)
        return f"-3 C and windy in {city}"

    c = anthropic.Anthropic(base_url=sim_server_factory(SCRIPTED).url, api_key="k", max_retries=0)
    # thread=False: the runner sends the whole history. (By default it continues a server-side
    # thread and sends only the new tool results, which llmsim, keeping no threads, answers
    # without knowing which tool they came from: the loop still ends, see below.)
    runner = c.beta.messages.tool_runner(model="claude-sonnet-4", max_tokens=200, tools=[get_weather],
                                         messages=[{"role": "user", "content": QUESTION}], thread=False)  # fmt: skip
    messages = list(runner)
    assert [m.stop_reason for m in messages] == ["tool_use", "end_turn"] and len(calls) == 1
    assert messages[-1].content[0].type == "text" and messages[-1].content[0].text == "It is -3 C there."
    streamed = c.beta.messages.tool_runner(model="claude-sonnet-4", max_tokens=200, tools=[get_weather], stream=True,
                                           messages=[{"role": "user", "content": QUESTION}], thread=False)  # fmt: skip
    finals = [stream.get_final_message() for stream in streamed]
    assert [m.stop_reason for m in finals] == ["tool_use", "end_turn"] and len(calls) == 2
    assert finals[-1].content[0].type == "text" and finals[-1].content[0].text == "It is -3 C there."
    threaded = list(c.beta.messages.tool_runner(model="claude-sonnet-4", max_tokens=200, tools=[get_weather],
                                                messages=[{"role": "user", "content": QUESTION}]))  # fmt: skip
    assert [m.stop_reason for m in threaded] == ["tool_use", "end_turn"] and len(calls) == 3


def test_gemini_automatic_function_calling(sim_server_factory: Callable[..., SimServer]) -> None:
    calls: list[str] = []

    def get_weather(city: str) -> str:
        """The current weather of a city.

        Args:
            city: The city's name.
        """
        calls.append(city)
        return f"-3 C and windy in {city}"

    c = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=sim_server_factory(SCRIPTED).url))
    response = c.models.generate_content(model="gemini-2.0-flash", contents=QUESTION,
                                         config=types.GenerateContentConfig(tools=[get_weather]))  # fmt: skip
    assert response.text == "It is -3 C there." and len(calls) == 1
    history = response.automatic_function_calling_history or []
    assert [p.function_call.name for h in history for p in h.parts or [] if p.function_call] == [
        "get_weather"
    ]
