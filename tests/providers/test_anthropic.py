"""Anthropic Messages wire format: parsing, rendering, and replay of the bytes through the SDK.

The replay tests hand the rendered bytes to the official `anthropic` client through an
in-memory transport, so its own SSE decoder, stream accumulator and error mapping judge them.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import anthropic
import httpx2
import numpy as np
import pytest

from llmsim.api.profile import SimulationProfileSpec
from llmsim.providers import anthropic as anth
from llmsim.providers import anthropic_stream
from llmsim.providers.base import TRAILER, ApiError, BodyAnswer, ErrorKind, HttpRequestFacts, StreamAnswer
from llmsim.simulation.plan import ResponsePlan
from llmsim.simulation.planner import plan_response
from llmsim.simulation.request import GenerationRequest, ToolChoice

SPEC = SimulationProfileSpec.model_validate(
    {"latency": {"ttftMs": {"type": "constant", "value": 50}, "itlMs": {"type": "constant", "value": 10},
                 "outputTokens": {"type": "constant", "value": 9}}}
)  # fmt: skip
WEATHER = {"name": "get_weather", "description": "Weather", "input_schema": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}  # fmt: skip
USER: Any = [{"role": "user", "content": "hello there"}]


def facts(body: Any, path: str = "/v1/messages", headers: dict[str, str] | None = None) -> HttpRequestFacts:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return HttpRequestFacts("POST", path, {}, {}, headers or {}, raw, "abc123")


def plan_for(body: dict[str, Any], seed: int = 1) -> tuple[GenerationRequest, ResponsePlan]:
    request = anth.Messages().parse(facts(body))
    plan = plan_response(SPEC, request, np.random.default_rng(seed), response_id="r1", created=1_700_000_000)
    return request, plan


def replay_client(status: int, headers: dict[str, str], body: bytes) -> anthropic.Anthropic:
    """An SDK client whose every request gets exactly this response."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(status, headers=headers, content=body)

    http = anthropic.DefaultHttpxClient(transport=httpx2.MockTransport(handler))
    return anthropic.Anthropic(api_key="k", base_url="http://sim.test", http_client=http, max_retries=0)


def stream_bytes(answer: StreamAnswer) -> bytes:
    return b"".join(f.data for f in answer.frames)


def sse_events(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in raw.decode().split("\n\n"):
        if not block:
            continue
        lines = block.split("\n")
        assert lines[0].startswith("event: ") and lines[1].startswith("data: ") and len(lines) == 2
        out.append((lines[0][7:], json.loads(lines[1][6:])))
    return out


# --- parsing ------------------------------------------------------------------------------------


def test_system_string_and_blocks_become_the_first_message() -> None:
    for system in ("Be brief.", [{"type": "text", "text": "Be"}, {"type": "text", "text": "brief."}]):
        request = anth.Messages().parse(
            facts({"model": "c", "max_tokens": 5, "system": system, "messages": USER})
        )
        assert request.messages[0].role == "system" and "brief." in request.messages[0].text
        assert request.messages[1].text == "hello there"


def test_content_blocks_are_flattened_including_tool_use_and_results() -> None:
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "weather?"}]},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"city": "Oslo"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "sunny"}]}]},
    ]  # fmt: skip
    request = anth.Messages().parse(facts({"model": "c", "max_tokens": 5, "messages": messages}))
    assert [m.text for m in request.messages] == ["weather?", '{"city": "Oslo"}', "sunny"]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (None, ToolChoice("auto")),
        ({"type": "auto"}, ToolChoice("auto")),
        ({"type": "any"}, ToolChoice("required")),
        ({"type": "none"}, ToolChoice("none")),
        ({"type": "tool", "name": "get_weather"}, ToolChoice("named", "get_weather")),
    ],
)
def test_tool_choice_maps_to_the_neutral_choice(choice: Any, expected: ToolChoice) -> None:
    body: dict[str, Any] = {"model": "c", "max_tokens": 5, "messages": USER, "tools": [WEATHER]}
    if choice is not None:
        body["tool_choice"] = choice
    request = anth.Messages().parse(facts(body))
    assert request.tool_choice == expected
    assert request.tools[0].name == "get_weather" and request.tools[0].parameters == WEATHER["input_schema"]


@pytest.mark.parametrize(
    ("body", "param", "fragment"),
    [
        ({"model": "c", "messages": USER}, "max_tokens", "max_tokens: Field required"),
        ({"model": "c", "max_tokens": "5", "messages": USER}, "max_tokens", "valid integer"),
        ({"model": "c", "max_tokens": 0, "messages": USER}, "max_tokens", "greater than or equal to 1"),
        ({"max_tokens": 5, "messages": USER}, "model", "model: Field required"),
        ({"model": "c", "max_tokens": 5}, "messages", "messages: Field required"),
        ({"model": "c", "max_tokens": 5, "messages": []}, "messages", "at least one message is required"),
        (
            {"model": "c", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]},
            "messages.0.role",
            "'user' or 'assistant'",
        ),
        (
            {
                "model": "c",
                "max_tokens": 5,
                "messages": USER,
                "tool_choice": {"type": "tool", "name": "nope"},
            },
            "tool_choice",
            "nope",
        ),
        (
            {"model": "c", "max_tokens": 5, "messages": USER, "stop_sequences": "END"},
            "stop_sequences",
            "list of strings",
        ),
        (
            {"model": "c", "max_tokens": 5, "messages": USER, "tools": [{"name": "x"}]},
            "tools.0.custom.input_schema",
            "Field required",
        ),
    ],
)
def test_invalid_requests_name_the_field(body: dict[str, Any], param: str, fragment: str) -> None:
    with pytest.raises(ApiError) as caught:
        anth.Messages().parse(facts(body))
    assert caught.value.kind is ErrorKind.INVALID_REQUEST
    assert caught.value.param == param and fragment in caught.value.message


def test_count_tokens_does_not_need_max_tokens() -> None:
    request = anth.CountTokens().parse(
        facts({"model": "c", "messages": USER, "system": "sys"}, path="/v1/messages/count_tokens")
    )
    assert request.operation == "count_tokens" and request.max_tokens is None and len(request.messages) == 2


# --- rendering ----------------------------------------------------------------------------------


def test_non_streamed_message_has_the_documented_shape() -> None:
    request, plan = plan_for({"model": "claude-x", "max_tokens": 50, "messages": USER})
    answer = anth.Messages().render(plan, request, facts({}))
    assert isinstance(answer, BodyAnswer) and answer.status == 200
    assert answer.headers["request-id"].startswith("req_") and answer.at_s == plan.timing.e2e_s
    body = json.loads(answer.body)
    assert body["type"] == "message" and body["role"] == "assistant" and body["id"].startswith("msg_")
    assert body["content"] == [{"type": "text", "text": plan.choices[0].text}]
    assert body["stop_reason"] == "end_turn" and body["stop_sequence"] is None
    assert body["usage"]["input_tokens"] == plan.prompt_tokens and body["usage"]["output_tokens"] == 9


def test_max_tokens_and_stop_sequences_set_stop_reason() -> None:
    _, plan = plan_for({"model": "c", "max_tokens": 3, "messages": USER})
    assert anth.message_body(plan)["stop_reason"] == "max_tokens"
    _, full = plan_for({"model": "c", "max_tokens": 50, "messages": USER}, seed=3)
    word = full.choices[0].pieces[4].strip()
    _, plan = plan_for({"model": "c", "max_tokens": 50, "messages": USER, "stop_sequences": [word]}, seed=3)
    body = anth.message_body(plan)
    assert body["stop_reason"] == "stop_sequence" and body["stop_sequence"] == word
    assert word not in body["content"][0]["text"]


def test_stream_events_follow_the_documented_order_with_matching_names() -> None:
    request, plan = plan_for({"model": "c", "max_tokens": 50, "messages": USER, "stream": True})
    answer = anth.Messages().render(plan, request, facts({}))
    assert isinstance(answer, StreamAnswer) and answer.headers["Content-Type"].startswith("text/event-stream")
    events = sse_events(stream_bytes(answer))
    assert all(name == data["type"] for name, data in events)
    names = [name for name, _ in events]
    assert names == ["message_start", "content_block_start", "ping", *["content_block_delta"] * 9,
                     "content_block_stop", "message_delta", "message_stop"]  # fmt: skip
    start = events[0][1]["message"]
    assert start["content"] == [] and start["stop_reason"] is None and start["usage"]["output_tokens"] == 1
    final = events[-2][1]
    assert final["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert final["usage"]["output_tokens"] == 9 and final["usage"]["input_tokens"] == plan.prompt_tokens


def test_stream_frames_carry_token_indexes_and_deadlines() -> None:
    _, plan = plan_for({"model": "c", "max_tokens": 50, "messages": USER, "stream": True})
    frames = anthropic_stream.frames(plan, anth.message_body(plan))
    assert [f.token for f in frames if b"content_block_delta" in f.data] == list(range(9))
    assert [f.at_s for f in frames if b"content_block_delta" in f.data] == list(plan.timing.token_offsets_s)
    assert all(a.at_s <= b.at_s for a, b in itertools.pairwise(frames))
    assert all(f.token == -1 for f in frames[:3]) and all(f.token == TRAILER for f in frames[-3:])


def test_sdk_accumulates_the_stream_into_the_non_streamed_message() -> None:
    request, plan = plan_for({"model": "c", "max_tokens": 50, "messages": USER, "stream": True})
    answer = anth.Messages().render(plan, request, facts({}))
    assert isinstance(answer, StreamAnswer)
    client = replay_client(200, answer.headers, stream_bytes(answer))
    with client.messages.stream(model="c", max_tokens=50, messages=USER) as stream:
        final = stream.get_final_message()
    expected = anth.message_body(plan)
    assert final.model_dump(exclude_none=True)["content"] == expected["content"]
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 9
    assert final.usage.input_tokens == plan.prompt_tokens


def test_forced_tool_streams_input_json_deltas_that_the_sdk_parses() -> None:
    body = {"model": "c", "max_tokens": 50, "messages": USER, "stream": True, "tools": [WEATHER],
            "tool_choice": {"type": "tool", "name": "get_weather"}}  # fmt: skip
    request, plan = plan_for(body)
    answer = anth.Messages().render(plan, request, facts({}))
    assert isinstance(answer, StreamAnswer)
    events = sse_events(stream_bytes(answer))
    assert (
        events[1][1]["content_block"]["type"] == "tool_use" and events[1][1]["content_block"]["input"] == {}
    )
    assert {e["delta"]["type"] for n, e in events if n == "content_block_delta"} == {"input_json_delta"}
    client = replay_client(200, answer.headers, stream_bytes(answer))
    with client.messages.stream(model="c", max_tokens=50, messages=USER) as stream:
        final = stream.get_final_message()
    block = final.content[0]
    assert block.type == "tool_use" and block.name == "get_weather"
    assert block.input == plan.choices[0].tool_calls[0].arguments and "city" in block.input
    assert block.id.startswith("toolu_") and final.stop_reason == "tool_use"


def test_non_streamed_tool_use_block_has_an_object_input() -> None:
    body = {
        "model": "c",
        "max_tokens": 50,
        "messages": USER,
        "tools": [WEATHER],
        "tool_choice": {"type": "any"},
    }
    request, plan = plan_for(body)
    answer = anth.Messages().render(plan, request, facts({}))
    assert isinstance(answer, BodyAnswer)
    message = replay_client(200, answer.headers, answer.body).messages.create(
        model="c", max_tokens=50, messages=USER
    )
    assert message.stop_reason == "tool_use" and message.content[0].type == "tool_use"
    assert isinstance(message.content[0].input, dict)


def test_count_tokens_answers_input_tokens() -> None:
    request = anth.CountTokens().parse(facts({"model": "c", "messages": USER}))
    plan = plan_response(SPEC, request, np.random.default_rng(0), response_id="r", created=0)
    answer = anth.CountTokens().render(plan, request, facts({}))
    assert isinstance(answer, BodyAnswer)
    counted = replay_client(200, answer.headers, answer.body).messages.count_tokens(model="c", messages=USER)
    assert counted.input_tokens == plan.prompt_tokens > 0


# --- errors and in-stream faults ----------------------------------------------------------------

SDK_CLASSES = [
    (ErrorKind.INVALID_REQUEST, 400, anthropic.BadRequestError),
    (ErrorKind.AUTHENTICATION, 401, anthropic.AuthenticationError),
    (ErrorKind.PERMISSION, 403, anthropic.PermissionDeniedError),
    (ErrorKind.NOT_FOUND, 404, anthropic.NotFoundError),
    (ErrorKind.TOO_LARGE, 413, anthropic.ContentTooLargeError),
    (ErrorKind.RATE_LIMIT, 429, anthropic.RateLimitError),
    (ErrorKind.QUOTA, 429, anthropic.RateLimitError),
    (ErrorKind.CONTEXT_LENGTH, 400, anthropic.BadRequestError),
    (ErrorKind.SERVER_ERROR, 500, anthropic.InternalServerError),
    (ErrorKind.OVERLOADED, 529, anthropic.InternalServerError),
    (ErrorKind.TIMEOUT, 504, anthropic.InternalServerError),
]


@pytest.mark.parametrize(("kind", "status", "exc"), SDK_CLASSES)
def test_each_error_kind_raises_the_sdk_class_of_the_real_api(
    kind: ErrorKind, status: int, exc: type[Exception]
) -> None:
    answer = anth.error_answer(ApiError(kind, "", headers={"retry-after": "1"}), "req_011x")
    assert answer.status == status and answer.headers["retry-after"] == "1"
    body = json.loads(answer.body)
    assert body["type"] == "error" and body["request_id"] == "req_011x" and body["error"]["message"]
    client = replay_client(answer.status, answer.headers, answer.body)
    with pytest.raises(exc) as caught:
        client.messages.create(model="c", max_tokens=5, messages=USER)
    assert caught.value.request_id == "req_011x"  # type: ignore[attr-defined]
    assert caught.value.type == body["error"]["type"]  # type: ignore[attr-defined]


def test_overloaded_is_529_overloaded_error() -> None:
    answer = anth.error_answer(ApiError(ErrorKind.OVERLOADED, ""))
    assert json.loads(answer.body)["error"] == {"type": "overloaded_error", "message": "Overloaded"}
    with pytest.raises(anthropic.OverloadedError):
        replay_client(529, answer.headers, answer.body).messages.create(
            model="c", max_tokens=5, messages=USER
        )


def test_context_length_uses_anthropics_wording() -> None:
    message = anth.context_length_message(210_000, 200_000)
    assert message == "prompt is too long: 210000 tokens > 200000 maximum"


def test_midstream_error_event_raises_a_status_error_with_status_200() -> None:
    request, plan = plan_for({"model": "c", "max_tokens": 50, "messages": USER, "stream": True})
    answer = anth.Messages().render(plan, request, facts({}))
    assert isinstance(answer, StreamAnswer)
    kept = [f.data for f in answer.frames if f.token < 3]
    raw = b"".join(kept) + anth.midstream_error_frame(ApiError(ErrorKind.OVERLOADED, ""))
    client = replay_client(200, answer.headers, raw)
    received = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        for event in client.messages.create(model="c", max_tokens=50, messages=USER, stream=True):
            received.append(event.type)
    assert caught.value.status_code == 200
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    assert received.count("content_block_delta") == 3


def test_malformed_frame_breaks_the_sdks_json_parsing() -> None:
    request, plan = plan_for({"model": "c", "max_tokens": 50, "messages": USER, "stream": True})
    answer = anth.Messages().render(plan, request, facts({}))
    assert isinstance(answer, StreamAnswer)
    raw = b"".join(f.data for f in answer.frames if f.token < 2) + anth.malformed_frame()
    client = replay_client(200, answer.headers, raw)
    with pytest.raises(json.JSONDecodeError):
        list(client.messages.create(model="c", max_tokens=50, messages=USER, stream=True))


def test_ratelimit_headers_report_rfc3339_resets() -> None:
    headers = anth.ratelimit_headers(
        requests_limit=50, requests_remaining=49, requests_reset_s=1.2, tokens_limit=1000,
        tokens_remaining=900, tokens_reset_s=6.0, now_unix=1_700_000_000,
    )  # fmt: skip
    assert headers["anthropic-ratelimit-requests-remaining"] == "49"
    assert headers["anthropic-ratelimit-requests-reset"] == "2023-11-14T22:13:21Z"
    assert headers["anthropic-ratelimit-tokens-reset"] == "2023-11-14T22:13:26Z"
    assert headers["anthropic-ratelimit-input-tokens-limit"] == "1000"
