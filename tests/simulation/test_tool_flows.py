"""Tool-calling conversations that end: defaults per turn, scripted flows, parallel calls."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from llmsim import profiles
from llmsim.api.profile import DEFAULT_TOOL_CALL_SHARE, SimulationProfileSpec
from llmsim.simulation import planner
from llmsim.simulation.plan import Choice
from llmsim.simulation.request import (
    GenerationRequest,
    Message,
    PastToolCall,
    ToolChoice,
    ToolResult,
    ToolSpec,
)

WEATHER = ToolSpec("get_weather", "", {"type": "object", "properties": {"city": {"type": "string"}},
                                       "required": ["city"]})  # fmt: skip
CONVERT = ToolSpec("to_fahrenheit", "", {"type": "object", "properties": {"celsius": {"type": "number"}},
                                         "required": ["celsius"]})  # fmt: skip
TOOLS = (WEATHER, CONVERT)


def spec(**content: Any) -> SimulationProfileSpec:
    doc: dict[str, Any] = {"latency": {"outputTokens": {"type": "constant", "value": 10}}, "content": content}
    return profiles.parse_spec(doc, "test")


def answer(s: SimulationProfileSpec, messages: list[Message], seed: int = 1, **kw: Any) -> Choice:
    kw.setdefault("tools", TOOLS)
    request = GenerationRequest(
        provider="openai", operation="chat", model="m", messages=tuple(messages), **kw
    )
    p = planner.plan_response(s, request, np.random.default_rng(seed), response_id="r", created=0)
    return p.choices[0]


def after(calls: tuple[Any, ...], *results: str) -> list[Message]:
    """The assistant's calls and the client's results, OpenAI style (tool messages with call ids)."""
    past = tuple(PastToolCall(c.name, c.arguments_json, "call_" + c.id) for c in calls)
    tool_messages = [Message("tool", r, tool_results=(ToolResult(r, call_id="call_" + c.id),))
                     for c, r in zip(calls, results, strict=True)]  # fmt: skip
    return [Message("assistant", "", tool_calls=past), *tool_messages]


def run_loop(s: SimulationProfileSpec, user: str, seed: int = 0, limit: int = 10, **kw: Any) -> int:
    """A plain agent loop: call the model, answer every tool call, stop at a text answer. Returns rounds."""
    messages = [Message("user", user)]
    for rounds in range(limit):
        choice = answer(s, messages, seed=seed * 1000 + rounds, **kw)
        if not choice.tool_calls:
            assert choice.text and choice.finish_reason == "stop"
            return rounds
        messages += after(choice.tool_calls, *["21"] * len(choice.tool_calls))
    raise AssertionError("the loop did not end")


def test_the_default_profile_calls_a_tool_on_the_user_turn_and_answers_the_result() -> None:
    s = spec()
    assert s.content.tool_call_share == DEFAULT_TOOL_CALL_SHARE == 1.0
    first = answer(s, [Message("user", "weather in Paris?")])
    assert first.finish_reason == "tool_calls" and len(first.tool_calls) == 1
    final = answer(s, [Message("user", "weather in Paris?"), *after(first.tool_calls, "21 C")])
    assert not final.tool_calls and final.text and final.finish_reason == "stop"
    assert run_loop(s, "weather in Paris?") == 1


def test_required_tool_choice_forces_a_call_on_every_turn_as_the_real_api_does() -> None:
    first = answer(spec(), [Message("user", "x")], tool_choice=ToolChoice("required"))
    again = answer(
        spec(), [Message("user", "x"), *after(first.tool_calls, "r")], tool_choice=ToolChoice("required")
    )
    assert again.tool_calls


def test_follow_up_share_makes_geometric_tool_rounds_that_end() -> None:
    p, n = 0.5, 400
    s = spec(toolFollowUpShare=p)
    rounds = [run_loop(s, "task", seed=i, limit=60) for i in range(n)]
    # rounds = 1 + Geometric(extra calls): mean 1/(1-p), variance p/(1-p)^2
    mean, var = 1 / (1 - p), p / (1 - p) ** 2
    assert abs(np.mean(rounds) - mean) < 4 * (var / n) ** 0.5
    assert min(rounds) == 1


def test_no_tools_offered_or_tool_choice_none_answers_with_text() -> None:
    assert not answer(spec(), [Message("user", "x")], tools=()).tool_calls
    assert not answer(spec(), [Message("user", "x")], tool_choice=ToolChoice("none")).tool_calls
    assert not answer(spec(toolCallShare=0), [Message("user", "x")]).tool_calls


SCRIPT = {
    "mode": "fixed",
    "text": "fallback",
    "rules": [
        {"match": r"weather in (?P<city>\w+)", "toolCall": {"name": "get_weather", "arguments": {"city": "${city}"}}},
        {"toolResult": {"name": "get_weather", "match": r"(?P<temp>-?\d+(\.\d+)?) C"},
         "toolCall": {"name": "to_fahrenheit", "arguments": {"celsius": "${temp}"}}},
        {"match": r"weather in (?P<city>\w+)", "toolResult": {"name": "to_fahrenheit", "match": r"(\d+)"},
         "reply": "It is $1 F in ${city}."},
    ],
}  # fmt: skip


def test_a_scripted_flow_calls_a_then_b_with_what_a_returned_then_answers() -> None:
    s = spec(**SCRIPT)
    messages = [Message("user", "What is the weather in Oslo?")]
    first = answer(s, messages)
    assert [(c.name, c.arguments) for c in first.tool_calls] == [("get_weather", {"city": "Oslo"})]
    messages += after(first.tool_calls, "It is -3.5 C and windy")
    second = answer(s, messages)
    assert [(c.name, c.arguments) for c in second.tool_calls] == [("to_fahrenheit", {"celsius": -3.5})]
    assert json.loads(second.tool_calls[0].arguments_json) == {"celsius": -3.5}
    messages += after(second.tool_calls, "26")
    final = answer(s, messages)
    # captures of the rule's user match and of its tool-result match together
    assert not final.tool_calls and final.text == "It is 26 F in Oslo."


def test_a_rule_with_only_match_answers_the_user_turn_not_the_tool_results() -> None:
    s = spec(mode="fixed", text="done", rules=[{"match": "weather", "toolCall": {"name": "get_weather"}}])
    first = answer(s, [Message("user", "weather?")])
    assert first.tool_calls
    final = answer(s, [Message("user", "weather?"), *after(first.tool_calls, "sunny")])
    assert final.text == "done" and not final.tool_calls


def test_turn_rules_and_tool_result_names_select_the_rule() -> None:
    s = spec(mode="fixed", text="default", rules=[
        {"turn": 2, "match": "report", "reply": "second turn"},
        {"toolResult": {"name": "to_fahrenheit"}, "reply": "never: the result is get_weather's"},
    ])  # fmt: skip
    first = answer(s, [Message("user", "report please")], tool_choice=ToolChoice("named", "get_weather"))
    assert answer(s, [Message("user", "report please"), *after(first.tool_calls, "x")]).text == "second turn"
    assert answer(s, [Message("user", "other"), *after(first.tool_calls, "x")]).text == "default"


def test_rule_text_and_calls_together_and_skipped_when_the_tool_is_not_offered() -> None:
    s = spec(mode="fixed", text="plain", rules=[
        {"match": "go", "reply": "Let me check.", "toolCall": {"name": "get_weather", "arguments": {"city": "Rome"}}},
    ])  # fmt: skip
    choice = answer(s, [Message("user", "go")])
    assert choice.text == "Let me check." and choice.tool_calls[0].arguments == {"city": "Rome"}
    assert choice.finish_reason == "tool_calls"
    assert (
        answer(s, [Message("user", "go")], tools=(CONVERT,), tool_choice=ToolChoice("none")).text == "plain"
    )


PARALLEL_RULE = {"rules": [{"match": "both", "toolCalls": [
    {"name": "get_weather", "arguments": {"city": "Oslo"}}, {"name": "to_fahrenheit", "arguments": {"celsius": 1}}]}]}  # fmt: skip


def test_scripted_parallel_calls_and_parallel_tool_calls_false() -> None:
    choice = answer(spec(**PARALLEL_RULE), [Message("user", "both")])
    assert [c.name for c in choice.tool_calls] == ["get_weather", "to_fahrenheit"]
    assert len({c.id for c in choice.tool_calls}) == 2
    single = answer(spec(**PARALLEL_RULE), [Message("user", "both")], parallel_tool_calls=False)
    assert [c.name for c in single.tool_calls] == ["get_weather"]


def test_sampled_parallel_calls_at_the_configured_share() -> None:
    p, n = 0.4, 1000
    s = spec(parallelToolCallShare=p, maxParallelToolCalls=4)
    counts = [len(answer(s, [Message("user", "x")], seed=i).tool_calls) for i in range(n)]
    several = sum(c > 1 for c in counts)
    assert abs(several - n * p) < 4 * (n * p * (1 - p)) ** 0.5
    assert set(counts) <= {1, 2, 3, 4} and {2, 3, 4} <= set(counts)
    # distinct tools while there are enough of them
    two = next(i for i, c in enumerate(counts) if c == 2)
    assert len({c.name for c in answer(s, [Message("user", "x")], seed=two).tool_calls}) == 2
    assert max(len(answer(s, [Message("user", "x")], seed=i, parallel_tool_calls=False).tool_calls)
               for i in range(50)) == 1  # fmt: skip


@pytest.mark.parametrize("bad", [
    {"rules": [{"reply": "x"}]},
    {"rules": [{"match": "x"}]},
    {"rules": [{"match": "x", "toolCall": {"name": "a"}, "toolCalls": [{"name": "b"}]}]},
    {"rules": [{"toolResult": {"match": "("}, "reply": "x"}]},
    {"toolFollowUpShare": 1.0},
])  # fmt: skip
def test_invalid_rules_are_rejected_naming_the_field(bad: dict[str, Any]) -> None:
    with pytest.raises(profiles.ProfileError) as info:
        spec(**bad)
    assert "content." in str(info.value)
