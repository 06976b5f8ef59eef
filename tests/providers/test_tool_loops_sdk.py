"""Tool-calling conversations through every official SDK: a plain loop ends after the tool's
result, scripted flows follow tool results, and parallel calls stream as the real APIs send them."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anthropic
import ollama
import openai
from google import genai
from google.genai import types

from simserver import FAST, SimServer

SCHEMA: Any = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
CONVERT_SCHEMA: Any = {
    "type": "object",
    "properties": {"celsius": {"type": "number"}},
    "required": ["celsius"],
}
CHAT_TOOLS: Any = [
    {"type": "function", "function": {"name": "get_weather", "parameters": SCHEMA}},
    {"type": "function", "function": {"name": "to_fahrenheit", "parameters": CONVERT_SCHEMA}},
]
RESPONSES_TOOLS: Any = [{"type": "function", "name": t["function"]["name"], "parameters": t["function"]["parameters"]}
                        for t in CHAT_TOOLS]  # fmt: skip
ANTHROPIC_TOOLS: Any = [
    {"name": t["function"]["name"], "input_schema": t["function"]["parameters"]} for t in CHAT_TOOLS
]
QUESTION = "What is the weather in Oslo?"

SCRIPTED = {**FAST, "content": {"mode": "fixed", "text": "I could not tell.", "rules": [
    {"match": r"weather in (?P<city>\w+)", "toolCall": {"name": "get_weather", "arguments": {"city": "${city}"}}},
    {"toolResult": {"name": "get_weather", "match": r"(?P<temp>-?\d+) C"},
     "toolCall": {"name": "to_fahrenheit", "arguments": {"celsius": "${temp}"}}},
    {"toolResult": {"name": "to_fahrenheit", "match": r"(?P<f>\d+)"}, "reply": "It is ${f} F."},
]}}  # fmt: skip
"""Call A, then B with what A returned, then answer."""
PARALLEL = {**FAST, "content": {"rules": [{"match": "both", "toolCalls": [
    {"name": "get_weather", "arguments": {"city": "Oslo"}},
    {"name": "to_fahrenheit", "arguments": {"celsius": 21}}]}]}}  # fmt: skip


def run_tool(name: str, arguments: dict[str, Any]) -> str:
    return "-3 C" if name == "get_weather" else str(round(arguments["celsius"] * 9 / 5 + 32))


def openai_client(server: SimServer, path: str = "/v1") -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + path, api_key="sk-test", max_retries=0)


def chat_loop(c: openai.OpenAI, stream: bool = False) -> tuple[int, str]:
    """A plain Chat Completions agent loop; returns (model calls, final text)."""
    messages: list[Any] = [{"role": "user", "content": QUESTION}]
    for step in range(1, 8):
        if stream:
            with c.chat.completions.stream(model="m", messages=messages, tools=CHAT_TOOLS) as s:
                message = s.get_final_completion().choices[0].message
        else:
            message = (
                c.chat.completions.create(model="m", messages=messages, tools=CHAT_TOOLS).choices[0].message
            )
        if not message.tool_calls:
            return step, message.content or ""
        messages.append(message.model_dump(exclude_none=True, exclude={"parsed"}))
        for call in message.tool_calls:
            fn = call.function  # type: ignore[union-attr]
            messages.append({"role": "tool", "tool_call_id": call.id,
                             "content": run_tool(fn.name, json.loads(fn.arguments))})  # fmt: skip
    raise AssertionError("the loop did not end")


def test_openai_chat_loop_ends_after_the_tool_result(sim_server: SimServer) -> None:
    steps, text = chat_loop(openai_client(sim_server))
    assert steps == 2 and text
    steps, text = chat_loop(openai_client(sim_server), stream=True)
    assert steps == 2 and text


def test_openai_chat_scripted_flow_and_the_ollama_and_azure_v1_surfaces(
    sim_server_factory: Callable[..., SimServer],
) -> None:
    server = sim_server_factory(SCRIPTED)
    assert chat_loop(openai_client(server)) == (3, "It is 27 F.")
    assert chat_loop(openai_client(server), stream=True) == (3, "It is 27 F.")
    # Ollama's OpenAI-compatible /v1 is this route; Azure's v1 surface answers the same way
    assert chat_loop(openai_client(server, "/openai/v1")) == (3, "It is 27 F.")
    azure = openai.AzureOpenAI(
        azure_endpoint=server.url, api_key="k", api_version="2024-10-21", max_retries=0
    )
    assert chat_loop(azure) == (3, "It is 27 F.")
    assert chat_loop(azure, stream=True) == (3, "It is 27 F.")


def test_openai_parallel_calls_stream_call_after_call_and_honour_parallel_tool_calls(
    sim_server_factory: Callable[..., SimServer],
) -> None:
    c = openai_client(sim_server_factory(PARALLEL))
    both: Any = [{"role": "user", "content": "both please"}]
    with c.chat.completions.stream(model="m", messages=both, tools=CHAT_TOOLS) as s:
        final = s.get_final_completion().choices[0]
    assert final.finish_reason == "tool_calls"
    calls = final.message.tool_calls or []
    assert [(t.function.name, json.loads(t.function.arguments)) for t in calls] == [  # type: ignore[union-attr]
        ("get_weather", {"city": "Oslo"}), ("to_fahrenheit", {"celsius": 21})]  # fmt: skip
    chunks = list(c.chat.completions.create(model="m", messages=both, tools=CHAT_TOOLS, stream=True))
    deltas = [d for ch in chunks for d in (ch.choices[0].delta.tool_calls or [])]
    assert [d.index for d in deltas] == sorted(d.index for d in deltas), "one call after the other"
    openers = [d for d in deltas if d.id]
    assert [d.index for d in openers] == [0, 1] and all(d.type == "function" for d in openers)
    assert all(d.function and d.function.name and d.function.arguments == "" for d in openers)
    assert chunks[0].choices[0].delta.content is None and chunks[0].choices[0].delta.role == "assistant"
    one = c.chat.completions.create(model="m", messages=both, tools=CHAT_TOOLS, parallel_tool_calls=False)
    assert len(one.choices[0].message.tool_calls or []) == 1


def responses_loop(c: openai.OpenAI, stream: bool = False) -> tuple[int, str]:
    items: list[Any] = [{"role": "user", "content": QUESTION}]
    for step in range(1, 8):
        if stream:
            with c.responses.stream(model="gpt-4o", input=items, tools=RESPONSES_TOOLS) as s:
                response = s.get_final_response()
        else:
            response = c.responses.create(model="gpt-4o", input=items, tools=RESPONSES_TOOLS)
        calls = [o for o in response.output if o.type == "function_call"]
        if not calls:
            return step, response.output_text
        for call in calls:
            items.append({"type": "function_call", "call_id": call.call_id, "name": call.name,
                          "arguments": call.arguments})  # fmt: skip
            items.append({"type": "function_call_output", "call_id": call.call_id,
                          "output": run_tool(call.name, json.loads(call.arguments))})  # fmt: skip
    raise AssertionError("the loop did not end")


def test_responses_loops_end_and_follow_the_script(sim_server_factory: Callable[..., SimServer]) -> None:
    steps, text = responses_loop(openai_client(sim_server_factory()))
    assert steps == 2 and text
    scripted = openai_client(sim_server_factory(SCRIPTED))
    assert responses_loop(scripted) == (3, "It is 27 F.")
    assert responses_loop(scripted, stream=True) == (3, "It is 27 F.")


def test_responses_parallel_calls_are_output_items_in_order(
    sim_server_factory: Callable[..., SimServer],
) -> None:
    c = openai_client(sim_server_factory(PARALLEL))
    with c.responses.stream(model="gpt-4o", input="both", tools=RESPONSES_TOOLS) as s:
        events = list(s)
        final = s.get_final_response()
    assert [o.name for o in final.output if o.type == "function_call"] == ["get_weather", "to_fahrenheit"]
    added = [e.output_index for e in events if e.type == "response.output_item.added"]
    done = [e.output_index for e in events if e.type == "response.output_item.done"]
    assert added == done == [0, 1]
    kinds = [e.type for e in events]
    assert kinds.index("response.output_item.done") < kinds.index("response.output_item.added", 3)
    one = c.responses.create(model="gpt-4o", input="both", tools=RESPONSES_TOOLS, parallel_tool_calls=False)
    assert len(one.output) == 1 and one.parallel_tool_calls is False


def anthropic_loop(c: anthropic.Anthropic, stream: bool = False) -> tuple[int, str]:
    messages: list[Any] = [{"role": "user", "content": QUESTION}]
    for step in range(1, 8):
        if stream:
            with c.messages.stream(model="c", max_tokens=200, messages=messages, tools=ANTHROPIC_TOOLS) as s:
                message = s.get_final_message()
        else:
            message = c.messages.create(model="c", max_tokens=200, messages=messages, tools=ANTHROPIC_TOOLS)
        uses = [b for b in message.content if b.type == "tool_use"]
        if not uses:
            assert message.stop_reason == "end_turn"
            return step, "".join(b.text for b in message.content if b.type == "text")
        messages.append({"role": "assistant", "content": [b.model_dump() for b in message.content]})
        messages.append({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": u.id, "content": run_tool(u.name, dict(u.input))}  # type: ignore[arg-type]
            for u in uses]})  # fmt: skip
    raise AssertionError("the loop did not end")


def test_anthropic_loops_and_parallel_tool_use(sim_server_factory: Callable[..., SimServer]) -> None:
    c = anthropic.Anthropic(base_url=sim_server_factory().url, api_key="k", max_retries=0)
    steps, text = anthropic_loop(c)
    assert steps == 2 and text
    scripted = anthropic.Anthropic(base_url=sim_server_factory(SCRIPTED).url, api_key="k", max_retries=0)
    assert anthropic_loop(scripted) == (3, "It is 27 F.")
    assert anthropic_loop(scripted, stream=True) == (3, "It is 27 F.")
    parallel = anthropic.Anthropic(base_url=sim_server_factory(PARALLEL).url, api_key="k", max_retries=0)
    both: Any = [{"role": "user", "content": "both"}]
    with parallel.messages.stream(model="c", max_tokens=200, messages=both, tools=ANTHROPIC_TOOLS) as s:
        message = s.get_final_message()
    assert [b.name for b in message.content if b.type == "tool_use"] == ["get_weather", "to_fahrenheit"]
    assert message.stop_reason == "tool_use"
    single = parallel.messages.create(model="c", max_tokens=200, messages=both, tools=ANTHROPIC_TOOLS,
                                      tool_choice={"type": "auto", "disable_parallel_tool_use": True})  # fmt: skip
    assert [b.type for b in single.content] == ["tool_use"]


def gemini_loop(c: genai.Client, stream: bool = False) -> tuple[int, str]:
    tools = [types.Tool(function_declarations=[
        types.FunctionDeclaration(name="get_weather", parameters_json_schema=SCHEMA),
        types.FunctionDeclaration(name="to_fahrenheit", parameters_json_schema=CONVERT_SCHEMA)])]  # fmt: skip
    config = types.GenerateContentConfig(tools=tools, automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True))  # fmt: skip
    contents: list[Any] = [types.Content(role="user", parts=[types.Part(text=QUESTION)])]
    for step in range(1, 8):
        if stream:
            chunks = list(c.models.generate_content_stream(model="g", contents=contents, config=config))
            calls = [fc for ch in chunks for fc in (ch.function_calls or [])]
            text = "".join(ch.text or "" for ch in chunks if not ch.function_calls)
        else:
            response = c.models.generate_content(model="g", contents=contents, config=config)
            calls = list(response.function_calls or [])
            text = "" if calls else response.text or ""
        if not calls:
            return step, text
        contents.append(types.Content(role="model", parts=[types.Part(function_call=fc) for fc in calls]))
        contents.append(types.Content(role="user", parts=[
            types.Part.from_function_response(name=fc.name or "", response={"result": run_tool(fc.name or "", dict(fc.args or {}))})
            for fc in calls]))  # fmt: skip
    raise AssertionError("the loop did not end")


def gemini_client(server: SimServer) -> genai.Client:
    return genai.Client(api_key="k", http_options=types.HttpOptions(base_url=server.url))


def test_gemini_loops_and_parallel_calls_in_one_chunk(sim_server_factory: Callable[..., SimServer]) -> None:
    steps, text = gemini_loop(gemini_client(sim_server_factory()))
    assert steps == 2 and text
    scripted = gemini_client(sim_server_factory(SCRIPTED))
    assert gemini_loop(scripted) == (3, "It is 27 F.")
    assert gemini_loop(scripted, stream=True) == (3, "It is 27 F.")
    parallel = gemini_client(sim_server_factory(PARALLEL))
    chunks = list(parallel.models.generate_content_stream(
        model="g", contents="both", config=types.GenerateContentConfig(tools=[types.Tool(function_declarations=[
            types.FunctionDeclaration(name="get_weather", parameters_json_schema=SCHEMA),
            types.FunctionDeclaration(name="to_fahrenheit", parameters_json_schema=CONVERT_SCHEMA)])])))  # fmt: skip
    with_calls = [ch for ch in chunks if ch.function_calls]
    assert len(with_calls) == 1 and [fc.name for fc in with_calls[0].function_calls or []] == [
        "get_weather", "to_fahrenheit"]  # fmt: skip


def ollama_loop(c: ollama.Client, stream: bool = False) -> tuple[int, str]:
    tools: Any = CHAT_TOOLS
    messages: list[Any] = [{"role": "user", "content": QUESTION}]
    for step in range(1, 8):
        if stream:
            parts = list(c.chat(model="llama3.1", messages=messages, tools=tools, stream=True))
            calls = [t for p in parts for t in (p.message.tool_calls or [])]
            text = "".join(p.message.content or "" for p in parts)
        else:
            response = c.chat(model="llama3.1", messages=messages, tools=tools)
            calls, text = list(response.message.tool_calls or []), response.message.content or ""
        if not calls:
            return step, text
        messages.append({"role": "assistant", "content": "", "tool_calls": [t.model_dump() for t in calls]})
        for t in calls:
            messages.append({"role": "tool", "tool_name": t.function.name,
                             "content": run_tool(t.function.name, dict(t.function.arguments))})  # fmt: skip
    raise AssertionError("the loop did not end")


def test_ollama_native_loops_and_parallel_calls(sim_server_factory: Callable[..., SimServer]) -> None:
    steps, text = ollama_loop(ollama.Client(host=sim_server_factory().url))
    assert steps == 2 and text
    scripted = ollama.Client(host=sim_server_factory(SCRIPTED).url)
    assert ollama_loop(scripted) == (3, "It is 27 F.")
    assert ollama_loop(scripted, stream=True) == (3, "It is 27 F.")
    response = ollama.Client(host=sim_server_factory(PARALLEL).url).chat(
        model="llama3.1", messages=[{"role": "user", "content": "both"}], tools=CHAT_TOOLS)  # fmt: skip
    assert [t.function.name for t in response.message.tool_calls or []] == ["get_weather", "to_fahrenheit"]
