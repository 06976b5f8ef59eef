"""Ollama wire format: parsing, rendering, timing fields, and replay through the `ollama` client."""

from __future__ import annotations

import itertools
import json
from typing import Any

import httpx
import numpy as np
import ollama as ollama_sdk
import pytest

from llmsim.api.profile import SimulationProfileSpec
from llmsim.providers import ollama, ollama_request
from llmsim.providers.base import TRAILER, ApiError, BodyAnswer, ErrorKind, HttpRequestFacts, StreamAnswer
from llmsim.simulation.plan import ResponsePlan
from llmsim.simulation.planner import plan_response
from llmsim.simulation.request import GenerationRequest

SPEC = SimulationProfileSpec.model_validate(
    {"latency": {"ttftMs": {"type": "constant", "value": 50}, "itlMs": {"type": "constant", "value": 10},
                 "outputTokens": {"type": "constant", "value": 9}}}
)  # fmt: skip
MESSAGES: Any = [{"role": "user", "content": "hello there"}]
TOOL: Any = {"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}  # fmt: skip
ENDPOINTS: dict[str, Any] = {
    "/api/chat": ollama.Chat(),
    "/api/generate": ollama.Generate(),
    "/api/embed": ollama.Embed(),
}


def facts(body: Any, path: str = "/api/chat") -> HttpRequestFacts:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return HttpRequestFacts("POST", path, {}, {}, {}, raw, "abc")


def plan_for(
    body: dict[str, Any], path: str = "/api/chat", queue_s: float = 0.0
) -> tuple[GenerationRequest, ResponsePlan]:
    request = ENDPOINTS[path].parse(facts(body, path))
    plan = plan_response(
        SPEC, request, np.random.default_rng(2), response_id="r", created=1_700_000_000, queue_s=queue_s
    )
    return request, plan


def render(path: str, request: GenerationRequest, plan: ResponsePlan) -> Any:
    return ENDPOINTS[path].render(plan, request, facts({}, path))


def replay_client(status: int, headers: dict[str, str], body: bytes) -> ollama_sdk.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers=headers, content=body)

    return ollama_sdk.Client(host="http://sim.test", transport=httpx.MockTransport(handler))


def stream_bytes(answer: StreamAnswer) -> bytes:
    return b"".join(f.data for f in answer.frames)


# --- parsing ------------------------------------------------------------------------------------


def test_stream_is_on_unless_false_and_empty_tools_is_no_tools_request() -> None:
    request = ollama_request.parse_chat(facts({"model": "llama3", "messages": MESSAGES, "tools": []}))
    assert request.stream and request.tools == () and request.operation == "chat"
    assert not ollama_request.parse_chat(
        facts({"model": "llama3", "messages": MESSAGES, "stream": False})
    ).stream


def test_options_give_max_tokens_stop_and_seed() -> None:
    options = {"num_predict": 5, "stop": ["END"], "seed": 42, "temperature": 0.1}
    request = ollama_request.parse_chat(facts({"model": "m", "messages": MESSAGES, "options": options}))
    assert (request.max_tokens, request.stop, request.seed) == (5, ("END",), 42)
    unlimited = ollama_request.parse_chat(
        facts({"model": "m", "messages": MESSAGES, "options": {"num_predict": -1}})
    )
    assert unlimited.max_tokens is None


def test_format_json_and_schema() -> None:
    assert ollama_request.parse_chat(facts({"model": "m", "messages": MESSAGES, "format": "json"})).json_mode
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    assert (
        ollama_request.parse_chat(facts({"model": "m", "messages": MESSAGES, "format": schema})).json_schema
        == schema
    )


def test_generate_takes_system_and_prompt() -> None:
    request = ollama_request.parse_generate(
        facts({"model": "m", "prompt": "hi", "system": "sys"}, "/api/generate")
    )
    assert [(m.role, m.text) for m in request.messages] == [("system", "sys"), ("user", "hi")]
    assert request.operation == "completion"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"messages": MESSAGES}, "model is required"),
        (
            {"model": 3, "messages": MESSAGES},
            "json: cannot unmarshal number into Go struct field ChatRequest.model of type string",
        ),
        (
            {"model": "m", "messages": "hi"},
            "json: cannot unmarshal string into Go struct field ChatRequest.messages of type []api.Message",
        ),
        (
            {"model": "m", "messages": MESSAGES, "stream": "yes"},
            "cannot unmarshal string into Go struct field ChatRequest.stream",
        ),
        ({"model": "m", "messages": MESSAGES, "options": {"num_predict": "x"}}, "num_predict"),
        ({"model": "m", "messages": MESSAGES, "format": 5}, "invalid format"),
    ],
)
def test_invalid_requests_read_like_ollama(body: dict[str, Any], message: str) -> None:
    with pytest.raises(ApiError) as caught:
        ollama_request.parse_chat(facts(body))
    assert caught.value.kind is ErrorKind.INVALID_REQUEST and message in caught.value.message
    answer = ollama.error_answer(caught.value)
    assert answer.status == 400 and json.loads(answer.body) == {"error": caught.value.message}


def test_invalid_json_is_a_400_with_an_error_string() -> None:
    with pytest.raises(ApiError) as caught:
        ollama_request.parse_chat(facts(b"{nope"))
    assert caught.value.kind is ErrorKind.INVALID_REQUEST


# --- rendering ----------------------------------------------------------------------------------


def test_timing_fields_add_up_to_the_planned_end_to_end_time() -> None:
    request, plan = plan_for({"model": "m", "messages": MESSAGES, "stream": False}, queue_s=0.2)
    body = json.loads(render("/api/chat", request, plan).body)
    t = plan.timing
    assert body["load_duration"] == round(0.2e9)
    assert body["prompt_eval_duration"] == round((t.ttft_s - 0.2) * 1e9)
    assert body["total_duration"] == round(t.e2e_s * 1e9)
    assert (
        body["load_duration"] + body["prompt_eval_duration"] + body["eval_duration"] == body["total_duration"]
    )
    assert body["eval_count"] == 9 and body["prompt_eval_count"] == plan.prompt_tokens
    assert body["eval_duration"] == pytest.approx(8 * 0.010 * 1e9, rel=1e-6)


def test_non_streamed_chat_reads_back_through_the_client() -> None:
    request, plan = plan_for({"model": "m", "messages": MESSAGES, "stream": False})
    answer = render("/api/chat", request, plan)
    assert isinstance(answer, BodyAnswer) and answer.at_s == plan.timing.e2e_s
    response = replay_client(200, answer.headers, answer.body).chat(model="m", messages=MESSAGES)
    assert (
        response.message.content == plan.choices[0].text and response.done and response.done_reason == "stop"
    )
    assert response.created_at is not None and response.created_at.startswith("2023-11-14T22:13:20.")


def test_ndjson_stream_has_no_blank_lines_and_a_final_done_object() -> None:
    request, plan = plan_for({"model": "m", "messages": MESSAGES})
    answer = render("/api/chat", request, plan)
    assert isinstance(answer, StreamAnswer) and answer.headers["Content-Type"] == "application/x-ndjson"
    raw = stream_bytes(answer)
    lines = raw.split(b"\n")
    assert lines[-1] == b"" and all(lines[:-1])
    objects = [json.loads(line) for line in lines[:-1]]
    assert (
        all(not o["done"] for o in objects[:-1])
        and objects[-1]["done"]
        and objects[-1]["message"]["content"] == ""
    )
    assert [f.token for f in answer.frames] == [*range(9), TRAILER]
    assert all(a.at_s <= b.at_s for a, b in itertools.pairwise(answer.frames))
    parts = list(replay_client(200, answer.headers, raw).chat(model="m", messages=MESSAGES, stream=True))
    assert "".join(p.message.content or "" for p in parts) == plan.choices[0].text
    assert parts[-1].eval_count == 9 and parts[-1].total_duration == round(plan.timing.e2e_s * 1e9)


def test_generate_stream_and_body_use_response() -> None:
    request, plan = plan_for({"model": "m", "prompt": "hi"}, "/api/generate")
    answer = render("/api/generate", request, plan)
    parts = list(
        replay_client(200, answer.headers, stream_bytes(answer)).generate(model="m", prompt="hi", stream=True)
    )
    assert "".join(p.response or "" for p in parts) == plan.choices[0].text and parts[-1].done
    request, plan = plan_for({"model": "m", "prompt": "hi", "stream": False}, "/api/generate")
    body = json.loads(render("/api/generate", request, plan).body)
    assert (
        body["response"] == plan.choices[0].text and body["done_reason"] == "stop" and "message" not in body
    )


def test_length_limit_reports_length() -> None:
    request, plan = plan_for(
        {"model": "m", "messages": MESSAGES, "stream": False, "options": {"num_predict": 3}}
    )
    assert json.loads(render("/api/chat", request, plan).body)["done_reason"] == "length"


def test_tool_calls_have_object_arguments_and_arrive_whole() -> None:
    spec = SPEC.model_copy(update={"content": SPEC.content.model_copy(update={"tool_call_share": 1.0})})
    request = ollama_request.parse_chat(facts({"model": "m", "messages": MESSAGES, "tools": [TOOL]}))
    plan = plan_response(spec, request, np.random.default_rng(0), response_id="r", created=0)
    answer = render("/api/chat", request, plan)
    parts = list(
        replay_client(200, answer.headers, stream_bytes(answer)).chat(
            model="m", messages=MESSAGES, stream=True
        )
    )
    calls = [c for p in parts for c in p.message.tool_calls or []]
    assert len(calls) == 1 and calls[0].function.name == "get_weather"
    assert calls[0].function.arguments == plan.choices[0].tool_calls[0].arguments
    request = ollama_request.parse_chat(
        facts({"model": "m", "messages": MESSAGES, "tools": [TOOL], "stream": False})
    )
    plan = plan_response(spec, request, np.random.default_rng(0), response_id="r", created=0)
    response = replay_client(200, {}, render("/api/chat", request, plan).body).chat(
        model="m", messages=MESSAGES
    )
    assert response.message.tool_calls and isinstance(response.message.tool_calls[0].function.arguments, dict)


def test_embed_and_tags() -> None:
    request, plan = plan_for({"model": "m", "input": ["a", "b"], "dimensions": 6}, "/api/embed")
    answer = render("/api/embed", request, plan)
    result = replay_client(200, answer.headers, answer.body).embed(model="m", input=["a", "b"], dimensions=6)
    assert [len(v) for v in result.embeddings] == [6, 6] and result.prompt_eval_count == plan.prompt_tokens
    tags = ollama.tags_body(["llama3.1", "qwen:7b"], 1_700_000_000)
    listed = replay_client(200, {}, json.dumps(tags).encode()).list()
    assert [m.model for m in listed.models] == ["llama3.1:latest", "qwen:7b"]


# --- errors and in-stream faults ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        (ErrorKind.NOT_FOUND, 404),
        (ErrorKind.RATE_LIMIT, 429),
        (ErrorKind.OVERLOADED, 503),
        (ErrorKind.SERVER_ERROR, 500),
        (ErrorKind.CONTEXT_LENGTH, 400),
        (ErrorKind.INVALID_REQUEST, 400),
    ],
)
def test_errors_raise_response_error_with_the_status(kind: ErrorKind, status: int) -> None:
    answer = ollama.error_answer(ApiError(kind, ""))
    message = json.loads(answer.body)["error"]
    assert answer.status == status and isinstance(message, str) and message
    with pytest.raises(ollama_sdk.ResponseError) as caught:
        replay_client(answer.status, answer.headers, answer.body).chat(model="m", messages=MESSAGES)
    assert caught.value.status_code == status and caught.value.error == message


def test_midstream_error_line_raises_with_status_minus_one() -> None:
    request, plan = plan_for({"model": "m", "messages": MESSAGES})
    frames = render("/api/chat", request, plan).frames
    raw = b"".join(f.data for f in frames if f.token < 3) + ollama.midstream_error_frame(
        ApiError(ErrorKind.OVERLOADED, "")
    )
    received = []
    with pytest.raises(ollama_sdk.ResponseError) as caught:
        for part in replay_client(200, {}, raw).chat(model="m", messages=MESSAGES, stream=True):
            received.append(part)
    assert caught.value.status_code == -1 and "server busy" in caught.value.error and len(received) == 3


def test_malformed_line_breaks_the_clients_json_decoding() -> None:
    request, plan = plan_for({"model": "m", "messages": MESSAGES})
    raw = (
        b"".join(f.data for f in render("/api/chat", request, plan).frames if f.token < 2)
        + ollama.malformed_frame()
    )
    with pytest.raises(json.JSONDecodeError):
        list(replay_client(200, {}, raw).chat(model="m", messages=MESSAGES, stream=True))
