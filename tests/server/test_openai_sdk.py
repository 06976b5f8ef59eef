"""The official `openai` SDK (sync and async) against a real simulator on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import jsonschema
import numpy as np
import openai
import pytest

from simserver import FAST, SimServer

TOOLS: list[Any] = [
    {"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}}, "required": ["city", "unit"]}}},
]  # fmt: skip
USER = [{"role": "user", "content": "What's the weather in Paris?"}]


def client(server: SimServer, **kw: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key="sk-test", max_retries=0, **kw)


def test_chat_completion_non_streaming(sim_server: SimServer) -> None:
    r = client(sim_server).chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert r.object == "chat.completion" and r.model == "gpt-4o-mini"
    assert r.choices[0].finish_reason == "stop" and r.choices[0].message.role == "assistant"
    assert r.usage is not None and r.usage.completion_tokens == 12
    assert r.usage.total_tokens == r.usage.prompt_tokens + 12
    assert r._request_id and r._request_id.startswith("req_")


def test_streaming_usage_matches_non_streaming(sim_server: SimServer) -> None:
    c = client(sim_server)
    plain = c.chat.completions.create(model="m", messages=USER)
    chunks = list(
        c.chat.completions.create(
            model="m", messages=USER, stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert len({ch.id for ch in chunks}) == 1
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert all(ch.usage is None for ch in chunks[:-1])
    assert chunks[-1].usage.completion_tokens == plain.usage.completion_tokens == 12  # type: ignore[union-attr]
    assert chunks[-1].usage.prompt_tokens == plain.usage.prompt_tokens  # type: ignore[union-attr]
    assert len(text) > 0


def test_stream_without_include_usage_sends_no_usage_chunk_and_ends_with_done(sim_server: SimServer) -> None:
    c = client(sim_server)
    with c.chat.completions.with_streaming_response.create(model="m", messages=USER, stream=True) as response:
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]" and lines.count("data: [DONE]") == 1
    payloads = [json.loads(line[6:]) for line in lines[:-1]]
    assert all(p["choices"] for p in payloads) and all("usage" not in p for p in payloads)
    assert payloads[-1]["choices"][0]["finish_reason"] == "stop"


def test_n_and_max_tokens_and_stop(sim_server_factory: Callable[..., SimServer]) -> None:
    server = sim_server_factory({**FAST, "content": {"mode": "fixed", "text": "alpha beta gamma delta"}})
    c = client(server)
    r = c.chat.completions.create(model="m", messages=USER, n=2, max_completion_tokens=2)
    assert [ch.finish_reason for ch in r.choices] == ["length", "length"] and r.usage.completion_tokens == 4  # type: ignore[union-attr]
    r = c.chat.completions.create(model="m", messages=USER, stop=[" gamma"])
    assert r.choices[0].message.content == "alpha beta" and r.choices[0].finish_reason == "stop"


def test_tools_in_full_and_as_streamed_deltas(sim_server: SimServer) -> None:
    c = client(sim_server)
    r = c.chat.completions.create(model="m", messages=USER, tools=TOOLS, tool_choice="required")
    call = r.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert r.choices[0].finish_reason == "tool_calls" and r.choices[0].message.content is None
    jsonschema.validate(json.loads(call.function.arguments), TOOLS[0]["function"]["parameters"])  # type: ignore[union-attr]
    with c.chat.completions.stream(model="m", messages=USER, tools=TOOLS,
                                   tool_choice={"type": "function", "function": {"name": "get_weather"}}) as stream:  # fmt: skip
        for _ in stream:
            pass
        final = stream.get_final_completion()
    streamed = final.choices[0].message.tool_calls[0]  # type: ignore[index]
    jsonschema.validate(json.loads(streamed.function.arguments), TOOLS[0]["function"]["parameters"])
    assert final.choices[0].finish_reason == "stop", (
        "a forced named function finishes with 'stop', like the real API"
    )


def test_json_schema_response_format(sim_server: SimServer) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}, "score": {"type": "integer", "minimum": 0, "maximum": 10}},
              "required": ["answer", "score"], "additionalProperties": False}  # fmt: skip
    r = client(sim_server).chat.completions.create(
        model="m",
        messages=USER,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "x", "schema": schema, "strict": True},
        },
    )
    jsonschema.validate(json.loads(r.choices[0].message.content or ""), schema)
    r = client(sim_server).chat.completions.create(
        model="m", messages=USER, response_format={"type": "json_object"}
    )
    assert isinstance(json.loads(r.choices[0].message.content or ""), dict)


def test_seed_makes_replies_reproducible(sim_server: SimServer) -> None:
    c = client(sim_server)
    a = c.chat.completions.create(model="m", messages=USER, seed=11).choices[0].message.content
    b = c.chat.completions.create(model="m", messages=USER, seed=11).choices[0].message.content
    d = c.chat.completions.create(model="m", messages=USER, seed=12).choices[0].message.content
    assert a == b != d


def test_legacy_completions(sim_server: SimServer) -> None:
    c = client(sim_server)
    r = c.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hi", max_tokens=5)
    assert (
        r.object == "text_completion"
        and r.usage.completion_tokens == 5
        and r.choices[0].finish_reason == "length"
    )  # type: ignore[union-attr]
    streamed = "".join(
        ch.choices[0].text
        for ch in c.completions.create(model="x", prompt="Say hi", max_tokens=5, stream=True)
        if ch.choices
    )
    assert len(streamed) > 0


def test_embeddings_float_and_base64(sim_server: SimServer) -> None:
    c = client(sim_server)
    default = c.embeddings.create(
        model="text-embedding-3-small", input=["a", "b"], dimensions=32
    )  # SDK asks for base64
    floats = c.embeddings.create(
        model="text-embedding-3-small", input=["a", "b"], dimensions=32, encoding_format="float"
    )
    assert [len(d.embedding) for d in default.data] == [32, 32]
    assert np.allclose(default.data[0].embedding, floats.data[0].embedding, atol=1e-6)
    raw = c.embeddings.create(
        model="text-embedding-3-small", input="a", dimensions=32, encoding_format="base64"
    )
    decoded = np.frombuffer(base64.b64decode(raw.data[0].embedding), dtype="<f4")  # type: ignore[arg-type]
    assert np.allclose(decoded, floats.data[0].embedding, atol=1e-6)


def test_models_list_and_retrieve(sim_server: SimServer) -> None:
    c = client(sim_server)
    assert "gpt-4o" in [m.id for m in c.models.list().data]
    assert c.models.retrieve("anything").id == "anything"


def test_responses_api_plain_and_streamed(sim_server: SimServer) -> None:
    c = client(sim_server)
    r = c.responses.create(model="gpt-4o", input="Hello", instructions="be brief")
    assert r.status == "completed" and r.output_text and r.usage.output_tokens == 12  # type: ignore[union-attr]
    with c.responses.stream(model="gpt-4o", input="Hello") as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert final.output_text and "response.output_text.delta" in kinds


def test_responses_api_function_call(sim_server: SimServer) -> None:
    c = client(sim_server)
    tools: Any = [
        {"type": "function", "name": "get_weather", "parameters": TOOLS[0]["function"]["parameters"]}
    ]
    r = c.responses.create(model="gpt-4o", input="weather?", tools=tools, tool_choice="required")
    [item] = r.output
    assert item.type == "function_call" and json.loads(item.arguments)["unit"] in ("c", "f")  # type: ignore[union-attr]
    with c.responses.stream(model="gpt-4o", input="weather?", tools=tools, tool_choice="required") as stream:
        for _ in stream:
            pass
        assert stream.get_final_response().output[0].type == "function_call"


def test_azure_client_with_api_version_and_api_key(sim_server: SimServer) -> None:
    az = openai.AzureOpenAI(
        azure_endpoint=sim_server.url, api_key="k", api_version="2024-10-21", max_retries=0
    )
    r = az.chat.completions.create(model="my-deployment", messages=USER)
    assert r.model == "my-deployment" and r.choices[0].message.content
    chunks = list(az.chat.completions.create(model="my-deployment", messages=USER, stream=True))
    assert chunks[0].choices == [], "Azure's first chunk carries only prompt_filter_results"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    e = az.embeddings.create(model="emb", input="hi")
    assert len(e.data[0].embedding) == 1536


def test_azure_without_api_version_is_not_found(sim_server: SimServer) -> None:
    r = httpx.post(sim_server.url + "/openai/deployments/d/chat/completions", json={"messages": USER})
    assert r.status_code == 404 and r.json()["error"]["param"] == "api-version"


async def test_async_client_streams(sim_server: SimServer) -> None:
    c = openai.AsyncOpenAI(base_url=sim_server.url + "/v1", api_key="sk", max_retries=0)
    stream = await c.chat.completions.create(model="m", messages=USER, stream=True)  # type: ignore[arg-type]
    pieces = [
        ch.choices[0].delta.content async for ch in stream if ch.choices and ch.choices[0].delta.content
    ]
    assert len(pieces) == 12
    await c.close()


@pytest.mark.parametrize(
    ("body", "exc", "param"),
    [
        (b"{not json", openai.BadRequestError, None),
        (b"[1, 2]", openai.BadRequestError, None),
        (json.dumps({"model": "m"}).encode(), openai.BadRequestError, "messages"),
        (json.dumps({"model": "m", "messages": "hi"}).encode(), openai.BadRequestError, "messages"),
        (
            json.dumps({"model": "m", "messages": USER, "max_tokens": "ten"}).encode(),
            openai.BadRequestError,
            "max_tokens",
        ),
        (
            json.dumps({"model": "m", "messages": [{"role": "wizard", "content": "x"}]}).encode(),
            openai.BadRequestError,
            "messages[0].role",
        ),
        (
            json.dumps({"model": "m", "messages": USER, "stream": "yes"}).encode(),
            openai.BadRequestError,
            "stream",
        ),
        (json.dumps({"messages": USER}).encode(), openai.BadRequestError, "model"),
    ],
)
def test_bad_requests_get_openai_shaped_errors(
    sim_server: SimServer, body: bytes, exc: type[Exception], param: str | None
) -> None:
    c = client(sim_server)
    with pytest.raises(exc) as info:
        c.post(
            "/chat/completions",
            content=body,
            cast_to=httpx.Response,
            options={"headers": {"Content-Type": "application/json"}},
        )  # type: ignore[call-overload]
    err = info.value
    assert isinstance(err, openai.APIStatusError) and err.type == "invalid_request_error"
    assert err.param == param
    assert err.request_id and err.request_id.startswith("req_")


def test_unknown_model_in_a_strict_profile_is_not_found(sim_server_factory: Callable[..., SimServer]) -> None:
    server = sim_server_factory({**FAST, "models": {"allow": ["gpt-4o*"], "strict": True}})
    c = client(server)
    assert c.chat.completions.create(model="gpt-4o-mini", messages=USER).choices
    with pytest.raises(openai.NotFoundError) as info:
        c.chat.completions.create(model="claude-3", messages=USER)
    assert info.value.code == "model_not_found"


def test_oversized_body_is_413_not_a_hang(sim_server_factory: Callable[..., SimServer]) -> None:
    from llmsim.runtime.state import RuntimeSettings

    server = sim_server_factory(FAST, settings=RuntimeSettings(max_body_bytes=10_000))
    t0 = time.monotonic()
    with pytest.raises(openai.APIStatusError) as info:
        client(server).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "x" * 20_000}]
        )
    assert info.value.status_code == 413 and time.monotonic() - t0 < 5


def test_context_window_overflow_is_context_length_exceeded(
    sim_server_factory: Callable[..., SimServer],
) -> None:
    server = sim_server_factory({**FAST, "models": {"contextWindow": 50}})
    with pytest.raises(openai.BadRequestError) as info:
        client(server).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "word " * 100}]
        )
    assert (
        info.value.code == "context_length_exceeded"
        and "maximum context length is 50 tokens" in info.value.message
    )


def test_unknown_route_and_method_get_json_errors(sim_server: SimServer) -> None:
    r = httpx.get(sim_server.url + "/v1/nope")
    assert r.status_code == 404 and r.json()["error"]["type"] == "invalid_request_error"
    r = httpx.get(sim_server.url + "/v1/chat/completions")
    assert r.status_code == 405 and "POST" in r.json()["error"]["message"]


def test_headers_real_clients_read(sim_server: SimServer) -> None:
    raw = client(sim_server).chat.completions.with_raw_response.create(model="m", messages=USER)
    assert raw.headers["x-request-id"].startswith("req_")
    assert int(raw.headers["openai-processing-ms"]) >= 0


def test_profile_header_selects_a_named_profile_and_unknown_names_are_400(sim_server: SimServer) -> None:
    c = client(sim_server)
    r = c.chat.completions.create(
        model="m",
        messages=USER,
        extra_headers={"x-llmsim-profile": "gpt-4o", "x-llmsim-seed": "3"},
        max_tokens=3,
    )
    assert r.usage.completion_tokens == 3  # type: ignore[union-attr]
    with pytest.raises(openai.BadRequestError, match="Unknown profile"):
        c.chat.completions.create(model="m", messages=USER, extra_headers={"x-llmsim-profile": "nope"})


def test_healthz_and_readyz(sim_server: SimServer) -> None:
    assert httpx.get(sim_server.url + "/healthz").json() == {"status": "ok"}
    assert httpx.get(sim_server.url + "/readyz").json()["default"] == "test"
