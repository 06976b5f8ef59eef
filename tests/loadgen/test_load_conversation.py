"""Conversations in each provider's wire format (pure): the history is sent whole, in order, and
replies (text and tool calls, streamed or not) are read back with their call ids."""

from __future__ import annotations

import json

import pytest

from llmsim.api.scenario import Target, TargetProvider
from llmsim.loadgen import conversation, wire
from llmsim.loadgen.conversation import Conversation, Message, ToolCall, ToolDef
from llmsim.loadgen.requestmix import PlannedRequest

CALL = ToolCall("call_7", "get_weather", {"city": "Paris"})
HISTORY = (
    Message("user", "Weather in Paris?"),
    Message("assistant", "", (CALL,)),
    Message("tool", tool_call=CALL, result={"temp_c": 21}),
    Message("assistant", "It is 21 °C."),
    Message("user", "Umbrella?"),
)
TOOL = ToolDef(
    "get_weather", "Current weather", {"type": "object", "properties": {"city": {"type": "string"}}}
)


def body_for(provider: str) -> dict[str, object]:
    conv = Conversation(HISTORY, (TOOL,), "required", "Be brief.")
    req = PlannedRequest(index=0, intended_s=0.0, prompt="", prompt_tokens=9, max_tokens=16, stream=True,
                         tool_call=False, conversation=conv)  # fmt: skip
    call = wire.build_call(Target(provider=TargetProvider(provider)), req, None)
    doc = json.loads(call.body)
    assert isinstance(doc, dict)
    return doc


def test_openai_and_azure_send_the_history_with_tool_calls_and_results() -> None:
    for provider in ("openai", "azure"):
        msgs = body_for(provider)["messages"]
        assert [m["role"] for m in msgs] == ["system", "user", "assistant", "tool", "assistant", "user"]
        assert msgs[2]["tool_calls"][0]["id"] == "call_7"
        assert json.loads(msgs[2]["tool_calls"][0]["function"]["arguments"]) == {"city": "Paris"}
        assert msgs[3] == {"role": "tool", "tool_call_id": "call_7", "content": '{"temp_c": 21}'}
        assert body_for(provider)["tool_choice"] == "required"


def test_anthropic_alternates_roles_and_carries_tool_results_as_user_blocks() -> None:
    doc = body_for("anthropic")
    msgs = doc["messages"]
    assert doc["system"] == "Be brief." and doc["tool_choice"] == {"type": "any"}
    assert [m["role"] for m in msgs] == ["user", "assistant", "user", "assistant", "user"]
    assert msgs[1]["content"] == [
        {"type": "tool_use", "id": "call_7", "name": "get_weather", "input": {"city": "Paris"}}
    ]
    assert msgs[2]["content"][0] == {
        "type": "tool_result",
        "tool_use_id": "call_7",
        "content": '{"temp_c": 21}',
    }


def test_gemini_and_ollama_histories() -> None:
    gem = body_for("gemini")
    assert [c["role"] for c in gem["contents"]] == ["user", "model", "user", "model", "user"]
    assert gem["contents"][2]["parts"][0]["functionResponse"] == {
        "name": "get_weather",
        "response": {"temp_c": 21},
    }
    assert gem["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    oll = body_for("ollama")["messages"]
    assert [m["role"] for m in oll] == ["system", "user", "assistant", "tool", "assistant", "user"]
    assert oll[2]["tool_calls"] == [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]


STREAMS = {
    "openai": [
        ("", '{"choices":[{"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function",'
             '"function":{"name":"get_weather","arguments":""}}]}}]}'),
        ("", '{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\\"city\\""}}]}}]}'),
        ("", '{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":":\\"Rome\\"}"}}]},'
             '"finish_reason":"tool_calls"}]}'),
        ("", "[DONE]"),
    ],
    "anthropic": [
        ("message_start", '{"type":"message_start","message":{"usage":{"input_tokens":3}}}'),
        ("content_block_start", '{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}'),
        ("content_block_delta", '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Let me look."}}'),
        ("content_block_start", '{"type":"content_block_start","index":1,"content_block":{"type":"tool_use",'
                                '"id":"toolu_1","name":"get_weather","input":{}}}'),
        ("content_block_delta", '{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta",'
                                '"partial_json":"{\\"city\\": \\"Rome\\"}"}}'),
        ("message_stop", '{"type":"message_stop"}'),
    ],
    "gemini": [
        ("", '{"candidates":[{"content":{"role":"model","parts":[{"functionCall":{"name":"get_weather",'
             '"args":{"city":"Rome"}}}]},"finishReason":"STOP"}]}'),
    ],
    "ollama": [
        ("", '{"message":{"role":"assistant","content":"","tool_calls":[{"function":{"name":"get_weather",'
             '"arguments":{"city":"Rome"}}}]},"done":false}'),
        ("", '{"message":{"role":"assistant","content":""},"done":true}'),
    ],
}  # fmt: skip


@pytest.mark.parametrize("provider", sorted(STREAMS))
def test_streamed_tool_calls_are_reassembled(provider: str) -> None:
    reply = conversation.parse_events(TargetProvider(provider), STREAMS[provider])
    assert len(reply.tool_calls) == 1
    call = reply.tool_calls[0]
    assert (call.name, call.arguments) == ("get_weather", {"city": "Rome"})
    assert call.id  # the provider's id where it gives one, else a stable call_<n>
    if provider == "anthropic":
        assert reply.text == "Let me look." and call.id == "toolu_1"
    if provider == "openai":
        assert call.id == "call_1"


def test_whole_bodies_are_read_too() -> None:
    body = {"choices": [{"message": {"content": "Sunny.", "tool_calls": None}}]}
    assert conversation.parse_body(TargetProvider.OPENAI, body).text == "Sunny."
    anth = {"content": [{"type": "tool_use", "id": "toolu_9", "name": "f", "input": {"a": 1}}]}
    assert conversation.parse_body(TargetProvider.ANTHROPIC, anth).tool_calls == (
        ToolCall("toolu_9", "f", {"a": 1}),
    )
