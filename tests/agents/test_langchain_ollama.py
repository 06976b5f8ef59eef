"""A LangChain agent (`langchain.agents.create_agent`, a LangGraph loop) on Ollama's native
`/api/chat` through `langchain-ollama`, plain and streamed: it calls its tool and ends."""

from __future__ import annotations

from collections.abc import Callable

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import tool
from langchain_ollama import ChatOllama

from simserver import FAST, SimServer

SCRIPTED = {**FAST, "content": {"mode": "fixed", "text": "Done.", "rules": [
    {"toolResult": {"name": "get_weather", "match": r"(?P<temp>-?\d+) C"}, "reply": "It is ${temp} C there."}]}}  # fmt: skip

calls: list[str] = []


@tool
def get_weather(city: str) -> str:
    """The current weather of a city."""
    calls.append(city)
    return f"-3 C and windy in {city}"


def test_the_langgraph_agent_on_ollama_calls_its_tool_and_ends(
    sim_server_factory: Callable[..., SimServer],
) -> None:
    server = sim_server_factory(SCRIPTED)
    calls.clear()
    agent = create_agent(ChatOllama(model="llama3.1", base_url=server.url), tools=[get_weather])
    state = agent.invoke({"messages": [{"role": "user", "content": "What is the weather in Oslo?"}]})
    messages = state["messages"]
    assert [type(m).__name__ for m in messages] == ["HumanMessage", "AIMessage", "ToolMessage", "AIMessage"]
    first, result, final = messages[1], messages[2], messages[3]
    assert isinstance(first, AIMessage) and [c["name"] for c in first.tool_calls] == ["get_weather"]
    assert isinstance(result, ToolMessage) and result.content.startswith("-3 C")
    assert isinstance(final, AIMessage) and final.content == "It is -3 C there." and not final.tool_calls
    assert len(calls) == 1
    # streamed: the agent's model node streams NDJSON from /api/chat
    calls.clear()
    steps = list(
        agent.stream({"messages": [{"role": "user", "content": "Weather in Lima?"}]}, stream_mode="updates")
    )
    assert [next(iter(step)) for step in steps] == ["model", "tools", "model"] and len(calls) == 1
