"""The official `google-genai` SDK against a real simulator on 127.0.0.1."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from google import genai
from google.genai import errors, types

from simserver import FAST, SimServer, profile_from

FIXED = {**FAST, "content": {"mode": "fixed", "text": "The answer is 42. END of the story."}}
TOKENWISE = {**FAST, "streaming": {"geminiChunkTokens": {"type": "constant", "value": 1}}}
"""FAST streaming one token per chunk (Gemini's default groups a dozen or more)."""
WEATHER = types.Tool(
    function_declarations=[
        types.FunctionDeclaration(
            name="get_weather",
            parameters=types.Schema(
                type="OBJECT", properties={"city": types.Schema(type="STRING")}, required=["city"]
            ),
        )
    ]
)


def client(server: SimServer, version: str | None = None, **options: Any) -> genai.Client:
    http = types.HttpOptions(base_url=server.url, api_version=version, **options)
    return genai.Client(api_key="gm-test", http_options=http)


@pytest.mark.parametrize("version", [None, "v1beta", "v1alpha"])
def test_generate_content_on_every_api_version(sim_server: SimServer, version: str | None) -> None:
    c = client(sim_server, version)
    response = c.models.generate_content(model="gemini-2.0-flash", contents="Hello?")
    assert (
        response.text
        and response.candidates
        and response.candidates[0].finish_reason == types.FinishReason.STOP
    )
    usage = response.usage_metadata
    assert usage is not None and usage.candidates_token_count == 12
    assert usage.total_token_count == (usage.prompt_token_count or 0) + 12


def test_stream_matches_the_non_streamed_answer_in_length(
    sim_server_factory: Callable[..., SimServer],
) -> None:
    c = client(sim_server_factory(TOKENWISE))
    config = types.GenerateContentConfig(system_instruction="Be brief.")
    chunks = list(
        c.models.generate_content_stream(model="gemini-2.0-flash", contents="Hello?", config=config)
    )
    assert len(chunks) == 12 and all(ch.text for ch in chunks)
    last = chunks[-1]
    assert last.candidates and last.candidates[0].finish_reason == types.FinishReason.STOP
    assert last.usage_metadata is not None and last.usage_metadata.candidates_token_count == 12
    plain = c.models.generate_content(model="gemini-2.0-flash", contents="Hello?", config=config)
    assert plain.usage_metadata is not None
    assert plain.usage_metadata.prompt_token_count == last.usage_metadata.prompt_token_count


def test_stop_sequences_and_max_output_tokens(sim_server_factory: Callable[..., SimServer]) -> None:
    c = client(sim_server_factory(FIXED))
    config = types.GenerateContentConfig(stop_sequences=["END"])
    assert c.models.generate_content(model="g", contents="q", config=config).text == "The answer is 42. "
    short = c.models.generate_content(
        model="g", contents="q", config=types.GenerateContentConfig(max_output_tokens=2)
    )
    assert short.candidates and short.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS


@pytest.mark.parametrize("stream", [False, True])
def test_forced_function_call(sim_server: SimServer, stream: bool) -> None:
    config = types.GenerateContentConfig(
        tools=[WEATHER],
        tool_config=types.ToolConfig(function_calling_config=types.FunctionCallingConfig(mode="ANY")),
    )
    c = client(sim_server)
    if stream:
        chunks = list(
            c.models.generate_content_stream(model="g", contents="weather in Paris?", config=config)
        )
        calls = [fc for ch in chunks for fc in ch.function_calls or []]
    else:
        calls = (
            c.models.generate_content(model="g", contents="weather in Paris?", config=config).function_calls
            or []
        )
    assert len(calls) == 1 and calls[0].name == "get_weather"
    assert isinstance(calls[0].args, dict) and isinstance(calls[0].args["city"], str)


def test_json_response_schema_is_honoured(sim_server: SimServer) -> None:
    schema = {
        "type": "OBJECT",
        "properties": {"n": {"type": "INTEGER"}, "tag": {"type": "STRING"}},
        "required": ["n", "tag"],
    }
    config = types.GenerateContentConfig(response_mime_type="application/json", response_schema=schema)
    c = client(sim_server)
    response = c.models.generate_content(model="g", contents="q", config=config)
    value = json.loads(response.text or "")
    assert isinstance(value["n"], int) and isinstance(value["tag"], str)


def test_count_tokens_matches_prompt_usage(sim_server: SimServer) -> None:
    c = client(sim_server)
    counted = c.models.count_tokens(model="g", contents="How many tokens is this?")
    usage = c.models.generate_content(model="g", contents="How many tokens is this?").usage_metadata
    assert usage is not None and counted.total_tokens == usage.prompt_token_count


def test_embeddings_with_output_dimensionality(sim_server: SimServer) -> None:
    c = client(sim_server)
    config = types.EmbedContentConfig(output_dimensionality=16)
    texts: Any = ["alpha", "beta", "alpha"]
    result = c.models.embed_content(model="text-embedding-004", contents=texts, config=config)
    vectors = [e.values or [] for e in result.embeddings or []]
    assert [len(v) for v in vectors] == [16, 16, 16] and vectors[0] == vectors[2] != vectors[1]


def test_embed_content_and_key_query_parameter(sim_server: SimServer) -> None:
    body = {"content": {"parts": [{"text": "hi"}]}, "outputDimensionality": 8}
    r = httpx.post(sim_server.url + "/v1beta/models/text-embedding-004:embedContent?key=abc", json=body)
    assert r.status_code == 200 and len(r.json()["embedding"]["values"]) == 8


def test_rest_snake_case_body_and_json_array_stream(sim_server: SimServer) -> None:
    body = {"contents": [{"parts": [{"text": "hi"}]}], "generation_config": {"max_output_tokens": 3}}
    url = sim_server.url + "/v1beta/models/gemini-2.0-flash:streamGenerateContent"
    r = httpx.post(url, json=body, headers={"x-goog-api-key": "k"})
    doc = r.json()
    assert (
        r.status_code == 200
        and isinstance(doc, list)
        and doc[-1]["candidates"][0]["finishReason"] == "MAX_TOKENS"
    )


def test_bad_request_is_a_client_error_with_rpc_status(sim_server: SimServer) -> None:
    r = httpx.post(
        sim_server.url + "/v1beta/models/g:generateContent",
        json={"contents": []},
        headers={"x-goog-api-key": "k"},
    )
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == 400 and error["status"] == "INVALID_ARGUMENT" and "contents" in error["message"]


@pytest.mark.parametrize(
    ("fault", "exc", "code"),
    [
        ("rate_limit", errors.ClientError, 429),
        ("quota", errors.ClientError, 429),
        ("overloaded", errors.ServerError, 503),
        ("server_error", errors.ServerError, 500),
        ("context_length", errors.ClientError, 400),
    ],
)
def test_forced_faults_raise_the_sdk_error_by_code_with_one_request(
    sim_server: SimServer, fault: str, exc: type[errors.APIError], code: int
) -> None:
    sent: list[str] = []

    def hook(request: httpx.Request) -> None:
        sent.append(str(request.url))

    c = client(
        sim_server, headers={"x-llmsim-fault": fault}, client_args={"event_hooks": {"request": [hook]}}
    )
    with pytest.raises(exc) as caught:
        c.models.generate_content(model="g", contents="hi")
    assert caught.value.code == code and len(sent) == 1


def test_forced_midstream_error_raises_after_some_chunks(
    sim_server_factory: Callable[..., SimServer],
) -> None:
    c = client(sim_server_factory(TOKENWISE), headers={"x-llmsim-fault": "midstream_error"})
    texts = []
    with pytest.raises(errors.ServerError) as caught:
        for chunk in c.models.generate_content_stream(model="g", contents="hi"):
            texts.append(chunk.text)
    assert caught.value.code == 503 and 0 < len(texts) < 12


def test_model_list_with_gemini_credentials(sim_server: SimServer) -> None:
    c = client(sim_server, "v1beta")
    names = [m.name for m in c.models.list()]
    assert "models/gemini-2.0-flash" in names


def test_seed_and_profile_headers_are_honoured(sim_server_factory: Callable[..., SimServer]) -> None:
    server = sim_server_factory(FAST, profile_from(FIXED, name="fixed"))

    def text(**headers: str) -> str:
        c = client(server, headers=headers)
        return c.models.generate_content(model="g", contents="hi").text or ""

    assert text(**{"x-llmsim-seed": "5"}) == text(**{"x-llmsim-seed": "5"}) != text(**{"x-llmsim-seed": "6"})
    assert text(**{"x-llmsim-profile": "fixed"}) == "The answer is 42. END of the story."


def test_stream_chunks_arrive_at_the_planned_pace(sim_server_factory: Callable[..., SimServer]) -> None:
    slow = {**TOKENWISE, "latency": {**FAST["latency"], "ttftMs": {"type": "constant", "value": 100},
                                     "itlMs": {"type": "constant", "value": 20}}}  # fmt: skip
    c = client(sim_server_factory(slow))
    for _warm_up in (True, False):  # the SDK's first stream pays its one-off set-up cost
        start = time.monotonic()
        arrivals = [
            time.monotonic() - start for _ in c.models.generate_content_stream(model="g", contents="hi")
        ]
    # planned: first token at 100 ms, then 11 gaps of 20 ms; never early, late only by noise
    assert arrivals[0] >= 0.1 and 0.32 <= arrivals[-1] <= 0.6 and arrivals[-1] - arrivals[0] >= 0.15


@pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning")
async def test_async_client_streams_and_generates(sim_server_factory: Callable[..., SimServer]) -> None:
    c = client(sim_server_factory(TOKENWISE))
    response = await c.aio.models.generate_content(model="g", contents="hi")
    assert response.text and response.usage_metadata is not None
    texts = [
        chunk.text async for chunk in await c.aio.models.generate_content_stream(model="g", contents="hi")
    ]
    assert len(texts) == 12 and all(texts)
    await c.aio.aclose()


def test_unknown_model_of_a_strict_profile_is_not_found(sim_server_factory: Callable[..., SimServer]) -> None:
    c = client(sim_server_factory({**FAST, "models": {"allow": ["gemini-*"], "strict": True}}), "v1beta")
    with pytest.raises(errors.ClientError) as caught:
        c.models.generate_content(model="claude-x", contents="hi")
    assert caught.value.code == 404 and caught.value.status == "NOT_FOUND"
    assert caught.value.message is not None
    assert caught.value.message.startswith("models/claude-x is not found for API version v1beta")


def test_unknown_method_is_an_rpc_status_404(sim_server: SimServer) -> None:
    r = httpx.post(
        sim_server.url + "/v1beta/models/g:generateAnswer", json={}, headers={"x-goog-api-key": "k"}
    )
    error = r.json()["error"]
    assert r.status_code == 404 and error["code"] == 404 and error["status"] == "NOT_FOUND"
