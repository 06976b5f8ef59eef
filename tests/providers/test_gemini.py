"""Gemini wire format: parsing, rendering, and replay of the bytes through google-genai.

Replay tests hand rendered bytes to the official client through an in-memory httpx
transport, so its own SSE line parser, JSON handling and error mapping judge them.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import httpx
import numpy as np
import pytest
from google import genai
from google.genai import errors, types

from llmsim.api.profile import SimulationProfileSpec
from llmsim.providers import gemini, gemini_request
from llmsim.providers.base import ApiError, BodyAnswer, ErrorKind, HttpRequestFacts, StreamAnswer
from llmsim.simulation.plan import ResponsePlan
from llmsim.simulation.planner import plan_response
from llmsim.simulation.request import GenerationRequest, ToolChoice

SPEC = SimulationProfileSpec.model_validate(
    {"latency": {"ttftMs": {"type": "constant", "value": 50}, "itlMs": {"type": "constant", "value": 10},
                 "outputTokens": {"type": "constant", "value": 9}},
     "streaming": {"geminiChunkTokens": {"type": "constant", "value": 1}}}
)  # fmt: skip
"""Nine tokens, streamed one per chunk (the grouping is tested on its own)."""
CONTENTS: Any = [{"role": "user", "parts": [{"text": "hello there"}]}]
WEATHER: Any = {"functionDeclarations": [{"name": "get_weather", "parameters": {
    "type": "OBJECT", "properties": {"city": {"type": "STRING"}}, "required": ["city"]}}]}  # fmt: skip


def facts(
    body: Any, method: str = "generateContent", query: dict[str, str] | None = None
) -> HttpRequestFacts:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    route = {"version": "v1beta", "model": "gemini-2.0-flash"}
    path = f"/v1beta/models/gemini-2.0-flash:{method}"
    return HttpRequestFacts("POST", path, route, query or {}, {"x-goog-api-key": "k"}, raw, "abc")


def plan_for(
    body: dict[str, Any], method: str = "generateContent", sse: bool = True
) -> tuple[GenerationRequest, ResponsePlan]:
    f = facts(body, method, {"alt": "sse"} if sse and method == "streamGenerateContent" else None)
    request = gemini.ENDPOINTS[method].parse(f)
    plan = plan_response(SPEC, request, np.random.default_rng(1), response_id="resp1", created=1_700_000_000)
    return request, plan


def replay_client(status: int, headers: dict[str, str], body: bytes) -> genai.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers=headers, content=body)

    options = types.HttpOptions(
        base_url="http://sim.test", client_args={"transport": httpx.MockTransport(handler)}
    )
    return genai.Client(api_key="k", http_options=options)


def render(request: GenerationRequest, plan: ResponsePlan) -> Any:
    method = "streamGenerateContent" if request.stream else "generateContent"
    return gemini.ENDPOINTS[method].render(plan, request, facts({}))


# --- parsing ------------------------------------------------------------------------------------


def test_camel_and_snake_case_fields_parse_alike() -> None:
    camel = {"contents": CONTENTS, "systemInstruction": {"parts": [{"text": "Be brief."}]},
             "generationConfig": {"maxOutputTokens": 7, "stopSequences": ["END"],
                                  "candidateCount": 2}}  # fmt: skip
    snake = {"contents": CONTENTS, "system_instruction": {"parts": [{"text": "Be brief."}]},
             "generation_config": {"max_output_tokens": 7, "stop_sequences": ["END"],
                                   "candidate_count": 2}}  # fmt: skip
    a, b = (gemini.ENDPOINTS["generateContent"].parse(facts(doc)) for doc in (camel, snake))
    assert a == b
    assert a.messages[0].role == "system" and a.messages[0].text == "Be brief."
    assert a.max_tokens == 7 and a.stop == ("END",) and a.n == 2 and a.model == "gemini-2.0-flash"


def test_model_role_becomes_assistant_and_function_parts_become_text() -> None:
    contents = [
        {"role": "user", "parts": [{"text": "weather?"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"t": 3}}}]},
    ]
    request = gemini.ENDPOINTS["generateContent"].parse(facts({"contents": contents}))
    assert [m.role for m in request.messages] == ["user", "assistant", "user"]
    assert "Oslo" in request.messages[1].text and '"t": 3' in request.messages[2].text


@pytest.mark.parametrize(
    ("config", "expected", "names"),
    [
        (None, ToolChoice("auto"), ["get_weather", "other"]),
        ({"mode": "NONE"}, ToolChoice("none"), ["get_weather", "other"]),
        ({"mode": "ANY"}, ToolChoice("required"), ["get_weather", "other"]),
        (
            {"mode": "ANY", "allowedFunctionNames": ["get_weather"]},
            ToolChoice("named", "get_weather"),
            ["get_weather"],
        ),
    ],
)
def test_function_calling_config_maps_to_tool_choice(
    config: Any, expected: ToolChoice, names: list[str]
) -> None:
    tools = [{"functionDeclarations": [*WEATHER["functionDeclarations"], {"name": "other"}]}]
    body: dict[str, Any] = {"contents": CONTENTS, "tools": tools}
    if config is not None:
        body["toolConfig"] = {"functionCallingConfig": config}
    request = gemini.ENDPOINTS["generateContent"].parse(facts(body))
    assert request.tool_choice == expected and [t.name for t in request.tools] == names


def test_json_mime_type_with_schema_asks_for_a_schema_instance() -> None:
    schema = {"type": "OBJECT", "properties": {"n": {"type": "INTEGER"}}, "required": ["n"]}
    for key in ("responseSchema", "responseJsonSchema"):
        config = {"responseMimeType": "application/json", key: schema}
        request = gemini.ENDPOINTS["generateContent"].parse(
            facts({"contents": CONTENTS, "generationConfig": config})
        )
        assert request.json_schema == schema and not request.json_mode
    plain = {"responseMimeType": "application/json"}
    request = gemini.ENDPOINTS["generateContent"].parse(
        facts({"contents": CONTENTS, "generationConfig": plain})
    )
    assert request.json_mode and request.json_schema is None


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "contents is not specified"),
        ({"contents": "hi"}, "Invalid value at 'contents'"),
        ({"contents": [{"role": "robot", "parts": [{"text": "x"}]}]}, "valid role"),
        ({"contents": CONTENTS, "generationConfig": {"maxOutputTokens": "many"}}, "max_output_tokens"),
        ({"contents": CONTENTS, "generationConfig": {"stopSequences": ["a"] * 6}}, "at most 5"),
        (
            {"contents": CONTENTS, "toolConfig": {"functionCallingConfig": {"mode": "ANY"}}},
            "without function_declarations",
        ),
        (
            {"contents": CONTENTS, "generationConfig": {"responseSchema": {"type": "OBJECT"}}},
            "application/json",
        ),
    ],
)
def test_invalid_requests_are_invalid_argument(body: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ApiError) as caught:
        gemini.ENDPOINTS["generateContent"].parse(facts(body))
    assert caught.value.kind is ErrorKind.INVALID_REQUEST and fragment in caught.value.message
    answer = gemini.error_answer(caught.value)
    assert answer.status == 400 and json.loads(answer.body)["error"]["status"] == "INVALID_ARGUMENT"


def test_embedding_requests_take_texts_and_dimensions() -> None:
    single = gemini.ENDPOINTS["embedContent"].parse(
        facts({"content": {"parts": [{"text": "a"}]}, "outputDimensionality": 8})
    )
    assert single.inputs == ("a",) and single.dimensions == 8 and single.operation == "embeddings"
    batch = {
        "requests": [
            {"model": "models/e", "content": {"parts": [{"text": t}]}, "outputDimensionality": 4}
            for t in "ab"
        ]
    }
    request = gemini.ENDPOINTS["batchEmbedContents"].parse(facts(batch, "batchEmbedContents"))
    assert request.inputs == ("a", "b") and request.dimensions == 4


def test_count_tokens_accepts_contents_or_a_generate_content_request() -> None:
    a = gemini.ENDPOINTS["countTokens"].parse(facts({"contents": CONTENTS}, "countTokens"))
    b = gemini.ENDPOINTS["countTokens"].parse(
        facts({"generateContentRequest": {"model": "models/g", "contents": CONTENTS}})
    )
    assert a.messages == b.messages and a.operation == b.operation == "count_tokens"


def test_model_comes_from_the_path_when_the_route_has_none() -> None:
    f = HttpRequestFacts("POST", "/v1/models/gemini-pro:generateContent", {}, {}, {}, b"{}", "")
    assert gemini_request.model_of(f) == "gemini-pro"


# --- rendering ----------------------------------------------------------------------------------


def test_generate_content_body_reads_back_through_the_sdk() -> None:
    request, plan = plan_for({"contents": CONTENTS})
    answer = render(request, plan)
    assert isinstance(answer, BodyAnswer) and answer.at_s == plan.timing.e2e_s
    body = json.loads(answer.body)
    assert (
        body["candidates"][0]["finishReason"] == "STOP"
        and body["candidates"][0]["content"]["role"] == "model"
    )
    usage = body["usageMetadata"]
    assert (
        usage["totalTokenCount"]
        == usage["promptTokenCount"] + usage["candidatesTokenCount"]
        == plan.total_tokens
    )
    client = replay_client(200, answer.headers, answer.body)
    response = client.models.generate_content(model="g", contents="hi")
    assert response.text == plan.choices[0].text and response.usage_metadata is not None
    assert response.usage_metadata.candidates_token_count == 9 and response.response_id == plan.response_id


def test_max_output_tokens_reports_max_tokens() -> None:
    request, plan = plan_for({"contents": CONTENTS, "generationConfig": {"maxOutputTokens": 3}})
    assert json.loads(render(request, plan).body)["candidates"][0]["finishReason"] == "MAX_TOKENS"


def test_sse_stream_uses_exact_data_prefix_and_no_done() -> None:
    request, plan = plan_for({"contents": CONTENTS}, "streamGenerateContent")
    answer = render(request, plan)
    assert isinstance(answer, StreamAnswer) and answer.headers["Content-Type"] == "text/event-stream"
    raw = b"".join(f.data for f in answer.frames)
    events = raw.split(b"\r\n\r\n")
    assert events[-1] == b"" and all(e.startswith(b"data: {") for e in events[:-1])
    assert b"[DONE]" not in raw and b"event:" not in raw
    chunks = [json.loads(e[6:]) for e in events[:-1]]
    assert all("finishReason" not in c["candidates"][0] for c in chunks[:-1])
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert chunks[-1]["usageMetadata"]["candidatesTokenCount"] == 9


def test_sse_frames_carry_token_indexes_and_deadlines() -> None:
    request, plan = plan_for({"contents": CONTENTS}, "streamGenerateContent")
    frames = render(request, plan).frames
    assert [f.token for f in frames] == list(range(9))
    assert [f.at_s for f in frames] == list(plan.timing.token_offsets_s)
    assert all(a.at_s <= b.at_s for a, b in itertools.pairwise(frames))


def test_sdk_streams_the_same_text_as_the_plan() -> None:
    request, plan = plan_for({"contents": CONTENTS}, "streamGenerateContent")
    answer = render(request, plan)
    client = replay_client(200, answer.headers, b"".join(f.data for f in answer.frames))
    chunks = list(client.models.generate_content_stream(model="g", contents="hi"))
    assert "".join(c.text or "" for c in chunks) == plan.choices[0].text
    assert (
        chunks[-1].candidates is not None
        and chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    )


def test_json_array_stream_without_alt_sse_is_one_json_array() -> None:
    request, plan = plan_for({"contents": CONTENTS}, "streamGenerateContent", sse=False)
    answer = render(request, plan)
    assert isinstance(answer, StreamAnswer) and answer.headers["Content-Type"].startswith("application/json")
    doc = json.loads(b"".join(f.data for f in answer.frames))
    assert (
        isinstance(doc, list)
        and "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in doc) == plan.choices[0].text
    )
    assert doc[-1]["candidates"][0]["finishReason"] == "STOP"


def test_forced_function_call_is_an_object_part_streamed_whole() -> None:
    body = {
        "contents": CONTENTS,
        "tools": [WEATHER],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
    }
    request, plan = plan_for(body)
    client = replay_client(200, {}, render(request, plan).body)
    response = client.models.generate_content(model="g", contents="hi")
    assert response.function_calls and response.function_calls[0].name == "get_weather"
    assert response.function_calls[0].args == plan.choices[0].tool_calls[0].arguments
    request, plan = plan_for(body, "streamGenerateContent")
    frames = render(request, plan).frames
    calls = [json.loads(f.data[6:]) for f in frames if b"functionCall" in f.data]
    assert (
        len(calls) == 1 and calls[0]["candidates"][0]["content"]["parts"][0]["functionCall"]["args"]["city"]
    )


def test_candidate_count_gives_several_candidates() -> None:
    request, plan = plan_for({"contents": CONTENTS, "generationConfig": {"candidateCount": 2}})
    body = json.loads(render(request, plan).body)
    assert [c["index"] for c in body["candidates"]] == [0, 1]


def test_embeddings_single_and_batch_shapes() -> None:
    one = {"content": {"parts": [{"text": "a"}]}, "outputDimensionality": 8}
    request, plan = plan_for(one, "embedContent")
    single = gemini.ENDPOINTS["embedContent"].render(plan, request, facts({}))
    assert isinstance(single, BodyAnswer) and len(json.loads(single.body)["embedding"]["values"]) == 8
    batch = {"requests": [{"content": {"parts": [{"text": t}]}, "outputDimensionality": 4} for t in "ab"]}
    request, plan = plan_for(batch, "batchEmbedContents")
    answer = gemini.ENDPOINTS["batchEmbedContents"].render(plan, request, facts({}))
    assert isinstance(answer, BodyAnswer)
    client = replay_client(200, answer.headers, answer.body)
    result = client.models.embed_content(
        model="e",
        contents=["a", "b"],  # type: ignore[arg-type]
        config=types.EmbedContentConfig(output_dimensionality=4),
    )
    assert result.embeddings is not None and [len(e.values or []) for e in result.embeddings] == [4, 4]


def test_count_tokens_answer() -> None:
    request, plan = plan_for({"contents": CONTENTS}, "countTokens")
    answer = gemini.ENDPOINTS["countTokens"].render(plan, request, facts({}))
    assert isinstance(answer, BodyAnswer)
    client = replay_client(200, answer.headers, answer.body)
    counted = client.models.count_tokens(model="g", contents="hi")
    assert counted.total_tokens == plan.prompt_tokens > 0


# --- errors and in-stream faults ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status", "code", "exc"),
    [
        (ErrorKind.INVALID_REQUEST, 400, "INVALID_ARGUMENT", errors.ClientError),
        (ErrorKind.AUTHENTICATION, 403, "PERMISSION_DENIED", errors.ClientError),
        (ErrorKind.NOT_FOUND, 404, "NOT_FOUND", errors.ClientError),
        (ErrorKind.RATE_LIMIT, 429, "RESOURCE_EXHAUSTED", errors.ClientError),
        (ErrorKind.QUOTA, 429, "RESOURCE_EXHAUSTED", errors.ClientError),
        (ErrorKind.CONTEXT_LENGTH, 400, "INVALID_ARGUMENT", errors.ClientError),
        (ErrorKind.SERVER_ERROR, 500, "INTERNAL", errors.ServerError),
        (ErrorKind.OVERLOADED, 503, "UNAVAILABLE", errors.ServerError),
        (ErrorKind.TIMEOUT, 504, "DEADLINE_EXCEEDED", errors.ServerError),
    ],
)
def test_errors_are_rpc_status_objects_the_sdk_maps(
    kind: ErrorKind, status: int, code: str, exc: type[errors.APIError]
) -> None:
    answer = gemini.error_answer(ApiError(kind, "", headers={"retry-after": "2"}))
    assert answer.status == status
    with pytest.raises(exc) as caught:
        client = replay_client(answer.status, answer.headers, answer.body)
        client.models.generate_content(model="g", contents="hi")
    assert caught.value.code == status and caught.value.status == code and caught.value.message


def test_rate_limit_carries_a_retry_delay_detail() -> None:
    error = gemini.error_object(ApiError(ErrorKind.RATE_LIMIT, "", headers={"retry-after-ms": "1500"}))
    assert {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2s"} in error["details"]


def test_midstream_error_raises_by_code_after_the_text_so_far() -> None:
    request, plan = plan_for({"contents": CONTENTS}, "streamGenerateContent")
    frames = render(request, plan).frames
    raw = b"".join(f.data for f in frames if f.token < 4) + gemini.midstream_error_frame(
        ApiError(ErrorKind.OVERLOADED, "")
    )
    client = replay_client(200, {"Content-Type": "text/event-stream"}, raw)
    texts = []
    with pytest.raises(errors.ServerError) as caught:
        for chunk in client.models.generate_content_stream(model="g", contents="hi"):
            texts.append(chunk.text)
    assert caught.value.code == 503 and caught.value.status == "UNAVAILABLE" and len(texts) == 4


def test_midstream_error_in_a_json_array_stream_closes_the_array() -> None:
    request, plan = plan_for({"contents": CONTENTS}, "streamGenerateContent", sse=False)
    frames = render(request, plan).frames
    raw = b"".join(f.data for f in frames if f.token < 2) + gemini.midstream_error_frame(
        ApiError(ErrorKind.SERVER_ERROR, ""), request
    )
    doc = json.loads(raw)
    assert len(doc) == 3 and doc[-1]["error"]["code"] == 500


def test_malformed_frame_fails_the_sdks_decoding() -> None:
    request, plan = plan_for({"contents": CONTENTS}, "streamGenerateContent")
    raw = b"".join(f.data for f in render(request, plan).frames if f.token < 2) + gemini.malformed_frame()
    client = replay_client(200, {"Content-Type": "text/event-stream"}, raw)
    with pytest.raises(errors.UnknownApiResponseError):
        list(client.models.generate_content_stream(model="g", contents="hi"))


def test_model_list_shapes() -> None:
    status, body = gemini.list_models(["gemini-2.0-flash"], None)
    assert status == 200 and body["models"][0]["name"] == "models/gemini-2.0-flash"
    status, body = gemini.list_models(["gemini-2.0-flash"], "nope", strict=True)
    assert status == 404 and body["error"]["status"] == "NOT_FOUND"
