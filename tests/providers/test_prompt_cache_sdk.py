"""Prompt caching through the official SDKs: a repeated long prefix reports cached tokens in each
provider's usage fields and a lower TTFT (the planned TTFT, as each format reports it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anthropic
import ollama
import openai
from google import genai
from google.genai import types

from simserver import FAST, SimServer

CACHING = {**FAST, "latency": {**FAST["latency"], "ttftMs": {"type": "constant", "value": 200}},
           "promptCaching": {"enabled": True}}  # fmt: skip
SYSTEM = "You are a careful assistant. " * 300  # ~1,500 tokens of shared prefix


def test_openai_chat_and_responses_report_cached_tokens_and_answer_sooner(
    sim_server_factory: Callable[..., SimServer],
) -> None:
    c = openai.OpenAI(base_url=sim_server_factory(CACHING).url + "/v1", api_key="k", max_retries=0)
    messages: Any = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Hello"}]
    cold = c.chat.completions.with_raw_response.create(model="gpt-4o", messages=messages)
    warm = c.chat.completions.with_raw_response.create(model="gpt-4o", messages=messages)
    cold_usage, warm_usage = cold.parse().usage, warm.parse().usage
    assert (
        cold_usage
        and cold_usage.prompt_tokens_details
        and cold_usage.prompt_tokens_details.cached_tokens == 0
    )
    assert warm_usage and warm_usage.prompt_tokens_details
    cached = warm_usage.prompt_tokens_details.cached_tokens or 0
    assert 1024 <= cached < warm_usage.prompt_tokens and (cached - 1024) % 128 == 0
    assert int(warm.headers["openai-processing-ms"]) < int(cold.headers["openai-processing-ms"])
    streamed = list(c.chat.completions.create(model="gpt-4o", messages=messages, stream=True,
                                              stream_options={"include_usage": True}))  # fmt: skip
    assert streamed[-1].usage and streamed[-1].usage.prompt_tokens_details
    assert streamed[-1].usage.prompt_tokens_details.cached_tokens == cached
    r = c.responses.create(model="gpt-4o", instructions=SYSTEM, input="Hello")
    r = c.responses.create(model="gpt-4o", instructions=SYSTEM, input="Hello")
    assert r.usage and r.usage.input_tokens_details.cached_tokens >= 1024


def test_anthropic_reads_and_writes_the_marked_prefix(sim_server_factory: Callable[..., SimServer]) -> None:
    c = anthropic.Anthropic(base_url=sim_server_factory(CACHING).url, api_key="k", max_retries=0)
    system: Any = [{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}]
    user: Any = [{"role": "user", "content": "Hello"}]
    first = c.messages.create(model="claude-sonnet-4", max_tokens=50, system=system, messages=user)
    second = c.messages.create(model="claude-sonnet-4", max_tokens=50, system=system, messages=user)
    written = first.usage.cache_creation_input_tokens or 0
    assert written > 1024 and first.usage.cache_read_input_tokens == 0
    assert second.usage.cache_read_input_tokens == written and second.usage.cache_creation_input_tokens == 0
    assert second.usage.input_tokens == first.usage.input_tokens  # the uncached tail only
    assert first.usage.cache_creation and first.usage.cache_creation.ephemeral_5m_input_tokens == written
    with c.messages.stream(model="claude-sonnet-4", max_tokens=50, system=system, messages=user) as stream:
        final = stream.get_final_message()
    assert final.usage.cache_read_input_tokens == written
    plain = c.messages.create(model="claude-sonnet-4", max_tokens=50, system=SYSTEM, messages=user)
    assert plain.usage.cache_read_input_tokens == 0 and plain.usage.cache_creation_input_tokens == 0


def test_gemini_and_ollama_report_the_cache(sim_server_factory: Callable[..., SimServer]) -> None:
    server = sim_server_factory(CACHING)
    g = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=server.url))
    config = types.GenerateContentConfig(system_instruction=SYSTEM)
    g.models.generate_content(model="gemini-2.0-flash", contents="Hello", config=config)
    warm = g.models.generate_content(model="gemini-2.0-flash", contents="Hello", config=config)
    assert warm.usage_metadata and (warm.usage_metadata.cached_content_token_count or 0) >= 1024
    o = ollama.Client(host=server.url)
    messages: Any = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Hello"}]
    cold = o.chat(model="llama3.1", messages=messages)
    warm_o = o.chat(model="llama3.1", messages=messages)
    # Ollama reuses its KV cache: the prompt evaluates faster
    assert (warm_o.prompt_eval_duration or 0) < (cold.prompt_eval_duration or 0)
