"""The official `ollama` client against a real simulator on 127.0.0.1."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import ollama
import pytest

from simserver import FAST, SimServer, profile_from

MESSAGES: Any = [{"role": "user", "content": "What's the weather in Paris?"}]
FIXED = {**FAST, "content": {"mode": "fixed", "text": "The answer is 42. END of the story."}}
TOOLS = {**FAST, "content": {"toolCallShare": 1.0}}


def get_weather(city: str) -> str:
    """Get the weather of a city.

    Args:
      city: The city's name.
    """
    return "sunny"


def test_chat_non_streaming_with_timing_fields(sim_server: SimServer) -> None:
    response = ollama.Client(host=sim_server.url).chat(model="llama3.1", messages=MESSAGES)
    assert response.model == "llama3.1" and response.done and response.done_reason == "stop"
    assert response.message.role == "assistant" and response.message.content
    assert response.eval_count == 12 and response.prompt_eval_count and response.prompt_eval_count > 0
    assert response.total_duration and response.eval_duration and response.prompt_eval_duration is not None
    # FAST: TTFT 5 ms, 11 gaps of 1 ms
    assert response.total_duration == pytest.approx(16e6, rel=0.01)
    assert response.eval_duration == pytest.approx(11e6, rel=0.01)


def test_chat_stream_text_matches_and_ends_with_done(sim_server: SimServer) -> None:
    parts = list(ollama.Client(host=sim_server.url).chat(model="llama3.1", messages=MESSAGES, stream=True))
    assert len(parts) == 13 and all(not p.done for p in parts[:-1]) and parts[-1].done
    assert parts[-1].message.content == "" and parts[-1].eval_count == 12
    assert len("".join(p.message.content or "" for p in parts)) > 0


def test_stream_arrives_at_the_planned_pace(sim_server_factory: Callable[..., SimServer]) -> None:
    slow = {**FAST, "latency": {**FAST["latency"], "itlMs": {"type": "constant", "value": 20}}}
    c = ollama.Client(host=sim_server_factory(slow).url)
    for _warm_up in (True, False):  # the client's first stream pays its one-off set-up cost
        start = time.monotonic()
        arrivals = [time.monotonic() - start for _ in c.chat(model="m", messages=MESSAGES, stream=True)]
    # planned: first token at 5 ms, then 11 gaps of 20 ms; never early, late only by noise
    assert 0.225 <= arrivals[-2] <= 0.5 and arrivals[-2] - arrivals[0] >= 0.15


def test_generate_streaming_and_not(sim_server: SimServer) -> None:
    c = ollama.Client(host=sim_server.url)
    plain = c.generate(model="llama3.1", prompt="Why is the sky blue?", system="Be brief.")
    assert plain.response and plain.done and plain.eval_count == 12
    parts = list(c.generate(model="llama3.1", prompt="Why is the sky blue?", stream=True))
    assert parts[-1].done and len("".join(p.response or "" for p in parts)) > 0


def test_stop_and_num_predict_options(sim_server_factory: Callable[..., SimServer]) -> None:
    c = ollama.Client(host=sim_server_factory(FIXED).url)
    stopped = c.chat(model="m", messages=MESSAGES, options={"stop": ["END"]})
    assert stopped.message.content == "The answer is 42. " and stopped.done_reason == "stop"
    short = c.chat(model="m", messages=MESSAGES, options={"num_predict": 3})
    assert short.done_reason == "length" and short.eval_count == 3


def test_tool_calls_with_object_arguments(sim_server_factory: Callable[..., SimServer]) -> None:
    c = ollama.Client(host=sim_server_factory(TOOLS).url)
    response = c.chat(model="llama3.1", messages=MESSAGES, tools=[get_weather])
    calls = response.message.tool_calls or []
    assert len(calls) == 1 and calls[0].function.name == "get_weather"
    assert isinstance(calls[0].function.arguments["city"], str)
    streamed = [
        call
        for p in c.chat(model="llama3.1", messages=MESSAGES, tools=[get_weather], stream=True)
        for call in p.message.tool_calls or []
    ]
    assert len(streamed) == 1 and isinstance(streamed[0].function.arguments, dict)


def test_empty_tools_list_is_plain_chat(sim_server_factory: Callable[..., SimServer]) -> None:
    response = ollama.Client(host=sim_server_factory(TOOLS).url).chat(model="m", messages=MESSAGES, tools=[])
    assert not response.message.tool_calls and response.message.content


def test_json_format(sim_server: SimServer) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    response = ollama.Client(host=sim_server.url).chat(model="m", messages=MESSAGES, format=schema)
    assert isinstance(json.loads(response.message.content or "")["n"], int)


def test_embed_and_tags(sim_server: SimServer) -> None:
    c = ollama.Client(host=sim_server.url)
    result = c.embed(model="nomic-embed-text", input=["a", "b", "a"], dimensions=32)
    assert [len(v) for v in result.embeddings] == [32, 32, 32] and result.embeddings[0] == result.embeddings[
        2
    ]
    models = [m.model for m in c.list().models]
    assert "llama3.1:latest" in models


def test_missing_model_is_a_400_error_string(sim_server: SimServer) -> None:
    r = httpx.post(sim_server.url + "/api/chat", json={"messages": MESSAGES})
    assert r.status_code == 400 and r.json() == {"error": "model is required"}


@pytest.mark.parametrize(
    ("fault", "status"),
    [("overloaded", 503), ("server_error", 500), ("rate_limit", 429), ("context_length", 400)],
)
def test_forced_faults_raise_response_error_with_the_status(
    sim_server: SimServer, fault: str, status: int
) -> None:
    sent: list[str] = []

    def hook(request: httpx.Request) -> None:
        sent.append(str(request.url))

    c = ollama.Client(host=sim_server.url, headers={"x-llmsim-fault": fault}, event_hooks={"request": [hook]})
    with pytest.raises(ollama.ResponseError) as caught:
        c.chat(model="m", messages=MESSAGES)
    assert caught.value.status_code == status and caught.value.error and len(sent) == 1


def test_forced_midstream_error_is_a_response_error_with_status_minus_one(sim_server: SimServer) -> None:
    c = ollama.Client(host=sim_server.url, headers={"x-llmsim-fault": "midstream_error"})
    received = []
    with pytest.raises(ollama.ResponseError) as caught:
        for part in c.chat(model="m", messages=MESSAGES, stream=True):
            received.append(part)
    assert caught.value.status_code == -1 and 0 < len(received) < 12


def test_seed_and_profile_headers_are_honoured(sim_server_factory: Callable[..., SimServer]) -> None:
    server = sim_server_factory(FAST, profile_from(FIXED, name="fixed"))

    def text(**headers: str) -> str:
        return (
            ollama.Client(host=server.url, headers=headers).chat(model="m", messages=MESSAGES).message.content
            or ""
        )

    assert text(**{"x-llmsim-seed": "5"}) == text(**{"x-llmsim-seed": "5"}) != text(**{"x-llmsim-seed": "6"})
    assert text(**{"x-llmsim-profile": "fixed"}) == "The answer is 42. END of the story."


def test_show_and_version(sim_server_factory: Callable[..., SimServer]) -> None:
    c = ollama.Client(host=sim_server_factory(FAST).url)
    shown = c.show("llama3.1")
    assert (
        shown.capabilities
        and "tools" in shown.capabilities
        and shown.details
        and shown.details.format == "gguf"
    )
    strict = {**FAST, "models": {"allow": ["llama*"], "strict": True}}
    server = sim_server_factory(strict)
    with pytest.raises(ollama.ResponseError) as caught:
        ollama.Client(host=server.url).show("mistral")
    assert (
        caught.value.status_code == 404
        and caught.value.error == 'model "mistral" not found, try pulling it first'
    )
    assert httpx.get(server.url + "/api/version").json()["version"]


async def test_async_client_streams(sim_server: SimServer) -> None:
    parts = [
        p
        async for p in await ollama.AsyncClient(host=sim_server.url).chat(
            model="m", messages=MESSAGES, stream=True
        )
    ]
    assert parts[-1].done and parts[-1].eval_count == 12


def test_unknown_model_of_a_strict_profile_reads_like_ollama(
    sim_server_factory: Callable[..., SimServer],
) -> None:
    server = sim_server_factory({**FAST, "models": {"allow": ["llama*"], "strict": True}})
    with pytest.raises(ollama.ResponseError) as caught:
        ollama.Client(host=server.url).chat(model="mistral", messages=MESSAGES)
    assert (
        caught.value.status_code == 404
        and caught.value.error == 'model "mistral" not found, try pulling it first'
    )


def test_unknown_api_path_is_an_ollama_error(sim_server: SimServer) -> None:
    r = httpx.post(sim_server.url + "/api/pull", json={"model": "m"})
    assert r.status_code == 404 and isinstance(r.json()["error"], str)


def test_generate_returns_a_context_that_continues_the_conversation(sim_server: SimServer) -> None:
    c = ollama.Client(host=sim_server.url)
    first = c.generate(model="llama3.1", prompt="Why is the sky blue?")
    assert first.context and all(isinstance(t, int) and 0 <= t < 128_256 for t in first.context)
    assert first.prompt_eval_count is not None and first.eval_count is not None
    assert len(first.context) >= first.eval_count
    second = c.generate(model="llama3.1", prompt="And at night?", context=first.context)
    again = c.generate(model="llama3.1", prompt="And at night?")
    # the earlier exchange counts as prompt, and the new context extends the old one
    assert second.prompt_eval_count == (again.prompt_eval_count or 0) + len(first.context)
    assert second.context is not None and list(second.context[: len(first.context)]) == list(first.context)
    streamed = list(c.generate(model="llama3.1", prompt="hi", stream=True))
    assert streamed[-1].done and streamed[-1].context and all(p.context is None for p in streamed[:-1])
    assert c.generate(model="llama3.1", prompt="hi", raw=True).context is None
    # (the client checks the type itself; a raw caller gets the server's Go-style 400)
    bad = httpx.post(sim_server.url + "/api/generate", json={"model": "m", "prompt": "x", "context": "no"})
    assert bad.status_code == 400 and "[]int" in bad.json()["error"]


def test_ps_lists_the_models_used_within_the_keep_alive(sim_server: SimServer) -> None:
    c = ollama.Client(host=sim_server.url)
    assert list(c.ps().models) == []
    c.chat(model="llama3.1", messages=MESSAGES)
    c.generate(model="qwen2.5:7b", prompt="hi")
    models = c.ps().models
    assert [m.model for m in models] == ["qwen2.5:7b", "llama3.1:latest"]
    now = time.time()
    for m in models:
        assert m.expires_at is not None and 290 < m.expires_at.timestamp() - now <= 300
        assert m.size_vram and m.details and m.details.family == "llama" and m.context_length == 128_000
