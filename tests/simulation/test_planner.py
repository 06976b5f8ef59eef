"""The planner: lengths, caps, stop sequences, content modes, tool calls, JSON, timing, capacity."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import numpy as np
import pytest

from llmsim import profiles
from llmsim.api.profile import Capacity, SimulationProfileSpec
from llmsim.simulation import planner, tokens
from llmsim.simulation.capacity import slowdown
from llmsim.simulation.plan import ResponsePlan
from llmsim.simulation.request import GenerationRequest, Message, ToolChoice, ToolSpec


def spec(**doc: Any) -> SimulationProfileSpec:
    base: dict[str, Any] = {"latency": {"ttftMs": {"type": "constant", "value": 100},
                                        "itlMs": {"type": "constant", "value": 10},
                                        "outputTokens": {"type": "constant", "value": 40}}}  # fmt: skip
    return profiles.parse_spec(profiles.deep_merge(base, doc), "test")


def req(text: str = "hello", **kw: Any) -> GenerationRequest:
    return GenerationRequest(
        provider="openai", operation="chat", model="m", messages=(Message("user", text),), **kw
    )


def plan(s: SimulationProfileSpec, r: GenerationRequest, seed: int = 1, **kw: Any) -> ResponsePlan:
    return planner.plan_response(s, r, np.random.default_rng(seed), response_id="r", created=0, **kw)


def test_constant_profile_gives_exact_timing_and_length() -> None:
    p = plan(spec(), req())
    assert p.completion_tokens == 40 and p.choices[0].finish_reason == "stop"
    assert p.timing.ttft_s == pytest.approx(0.1)
    assert p.timing.itl_s == pytest.approx((0.01,) * 39)
    assert p.timing.e2e_s == pytest.approx(0.1 + 39 * 0.01)


def test_max_tokens_caps_the_reply_and_reports_length() -> None:
    p = plan(spec(), req(max_tokens=7))
    assert p.completion_tokens == 7 and p.choices[0].finish_reason == "length"


def test_usage_equals_the_streamed_pieces_and_the_estimator() -> None:
    p = plan(spec(), req())
    assert p.completion_tokens == len(p.choices[0].pieces) == tokens.count(p.choices[0].text)


def test_stop_sequences_cut_the_reply() -> None:
    s = spec(content={"mode": "fixed", "text": "one two three four"})
    p = plan(s, req(stop=(" three",)))
    assert p.choices[0].text == "one two" and p.choices[0].finish_reason == "stop_sequence"
    assert p.choices[0].stop_sequence == " three"


def test_echo_and_fixed_modes() -> None:
    assert plan(spec(content={"mode": "echo"}), req("say this back")).choices[0].text == "say this back"
    assert plan(spec(content={"mode": "fixed", "text": "Hi!"}), req()).choices[0].text == "Hi!"


def test_rules_reply_with_capture_groups_before_the_mode() -> None:
    s = spec(
        content={
            "mode": "fixed",
            "text": "fallback",
            "rules": [{"match": r"capital of (\w+)", "reply": "The capital of $1 is X."}],
        }
    )
    assert plan(s, req("What is the capital of France?")).choices[0].text == "The capital of France is X."
    assert plan(s, req("unrelated")).choices[0].text == "fallback"


WEATHER = ToolSpec(
    "get_weather",
    "",
    {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1, "maximum": 7}},
        "required": ["city", "days"],
    },
)


def test_required_tool_choice_calls_a_tool_with_schema_valid_arguments() -> None:
    p = plan(spec(), req(tools=(WEATHER,), tool_choice=ToolChoice("required")))
    [call] = p.choices[0].tool_calls
    assert call.name == "get_weather" and p.choices[0].finish_reason == "tool_calls"
    jsonschema.validate(json.loads(call.arguments_json), WEATHER.parameters)
    assert "".join(call.argument_pieces) == call.arguments_json


def test_rule_can_script_a_tool_call() -> None:
    s = spec(
        content={
            "rules": [
                {
                    "match": "weather",
                    "toolCall": {"name": "get_weather", "arguments": {"city": "Oslo", "days": 2}},
                }
            ]
        }
    )
    [call] = plan(s, req("weather please", tools=(WEATHER,))).choices[0].tool_calls
    assert call.arguments == {"city": "Oslo", "days": 2}


def test_auto_tool_choice_calls_tools_at_the_configured_share() -> None:
    s = spec(content={"toolCallShare": 0.3})
    n = 2000
    calls = sum(bool(plan(s, req(tools=(WEATHER,)), seed=i).choices[0].tool_calls) for i in range(n))
    sd = (n * 0.3 * 0.7) ** 0.5
    assert abs(calls - n * 0.3) < 4 * sd


def test_json_schema_response_format_returns_valid_json() -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 2},
        },
        "required": ["name", "tags"],
        "additionalProperties": False,
    }
    p = plan(spec(), req(json_schema=schema, json_mode=True))
    jsonschema.validate(json.loads(p.choices[0].text), schema)


def test_n_choices_share_the_token_clock() -> None:
    p = plan(spec(), req(n=3))
    assert len(p.choices) == 3 and p.completion_tokens == 120
    assert len(p.timing.token_offsets_s) == 40


def test_prompt_cost_adds_ttft_per_input_token() -> None:
    s = spec(latency={"ttftPerInputTokenMs": 1.0})
    short, long = plan(s, req("hi")), plan(s, req("word " * 500))
    extra = long.timing.ttft_s - short.timing.ttft_s
    assert extra == pytest.approx((long.prompt_tokens - short.prompt_tokens) / 1000)


def test_tokens_per_second_sets_a_steady_itl() -> None:
    s = spec(latency={"tokensPerSecond": {"type": "constant", "value": 50}})
    assert plan(s, req()).timing.itl_s == pytest.approx((0.02,) * 39)


def test_capacity_slows_down_towards_the_knee() -> None:
    cap = Capacity(max_concurrency=10, ttft_slowdown=3, itl_slowdown=2, exponent=1)
    assert slowdown(cap, 1).ttft == 1.0
    assert slowdown(cap, 5).ttft == pytest.approx(2.0) and slowdown(cap, 5).itl == pytest.approx(1.5)
    assert slowdown(cap, 10).ttft == pytest.approx(3.0) and slowdown(cap, 50).itl == pytest.approx(2.0)
    s = spec(latency={"capacity": {"maxConcurrency": 10, "ttftSlowdown": 3, "itlSlowdown": 2, "exponent": 1}})
    busy = plan(s, req(), active_streams=10, queue_s=0.5)
    assert busy.timing.ttft_s == pytest.approx(0.5 + 0.3)
    assert busy.timing.itl_s[0] == pytest.approx(0.02)


def test_same_seed_same_plan_different_seed_different_text() -> None:
    s = spec()
    assert plan(s, req(), seed=5).choices == plan(s, req(), seed=5).choices
    assert plan(s, req(), seed=5).choices != plan(s, req(), seed=6).choices


def test_embeddings_are_deterministic_unit_vectors() -> None:
    r = GenerationRequest(
        provider="openai", operation="embeddings", model="e", inputs=("a", "b", "a"), dimensions=16
    )
    p = plan(spec(), r)
    assert len(p.embeddings) == 3 and len(p.embeddings[0]) == 16
    assert p.embeddings[0] == p.embeddings[2] != p.embeddings[1]
    assert float(np.linalg.norm(p.embeddings[0])) == pytest.approx(1.0, abs=1e-5)


def test_tokenizer_round_trips_and_counts_consistently() -> None:
    text = "Hello, world! The year 2026 has 365 days; naïve café."
    assert "".join(tokens.split(text)) == text
    assert tokens.count(text) == len(tokens.split(text))
    assert (
        tokens.count_messages(["hi"])
        == tokens.count("hi") + tokens.MESSAGE_OVERHEAD_TOKENS + tokens.REPLY_PRIMING_TOKENS
    )
