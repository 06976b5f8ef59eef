"""Log probabilities, when asked for, in every format that has them, read through the official SDKs."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import ollama
import openai
import pytest
from google import genai
from google.genai import types

from llmsim.simulation import logprobs
from simserver import FAST, SimServer

USER: Any = [{"role": "user", "content": "Hello"}]


def test_every_position_is_a_distribution_with_sorted_distinct_alternatives() -> None:
    pieces = ["Lorem", " ipsum", " the", ".", " and"] * 40
    entries = logprobs.for_pieces(pieces, 5, np.random.default_rng(3))
    assert [e.token for e in entries] == pieces
    for e in entries:
        values = [v for _, v in e.top]
        assert len(e.top) == 5 and values == sorted(values, reverse=True)
        assert len({t for t, _ in e.top}) == 5
        mass = sum(math.exp(v) for _, v in e.top) + (0 if e.token in dict(e.top) else math.exp(e.logprob))
        assert mass <= 1 + 1e-9 and e.logprob <= 0
    # most chosen tokens are likely ones: mean surprise as documented, within 4 standard errors
    surprise = [-e.logprob for e in entries]
    assert abs(np.mean(surprise) - logprobs.MEAN_SURPRISE) < 4 * logprobs.MEAN_SURPRISE / len(pieces) ** 0.5
    assert logprobs.for_pieces(pieces, 5, np.random.default_rng(3)) == entries


def client(server: SimServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key="k", max_retries=0)


def test_chat_completions_logprobs_plain_and_streamed(sim_server: SimServer) -> None:
    c = client(sim_server)
    r = c.chat.completions.create(model="m", messages=USER, logprobs=True, top_logprobs=3)
    content = r.choices[0].logprobs.content  # type: ignore[union-attr]
    assert content is not None and "".join(e.token for e in content) == r.choices[0].message.content
    assert all(len(e.top_logprobs) == 3 and e.bytes == list(e.token.encode()) for e in content)
    assert all(e.logprob <= 0 for e in content)
    chunks = list(c.chat.completions.create(model="m", messages=USER, logprobs=True, stream=True))
    with_text = [ch for ch in chunks if ch.choices and ch.choices[0].delta.content]
    assert all(ch.choices[0].logprobs and len(ch.choices[0].logprobs.content or []) == 1 for ch in with_text)
    assert all(not (ch.choices[0].logprobs.content or [])[0].top_logprobs for ch in with_text)  # type: ignore[union-attr]
    assert c.chat.completions.create(model="m", messages=USER).choices[0].logprobs is None
    with pytest.raises(openai.BadRequestError) as caught:
        c.chat.completions.create(model="m", messages=USER, top_logprobs=2)
    assert caught.value.param == "logprobs"  # type: ignore[attr-defined]


def test_legacy_completions_logprobs(sim_server: SimServer) -> None:
    r = client(sim_server).completions.create(model="m", prompt="Say", max_tokens=8, logprobs=2)
    lp = r.choices[0].logprobs
    assert lp is not None and lp.tokens and "".join(lp.tokens) == r.choices[0].text
    assert lp.top_logprobs and all(len(t) == 2 for t in lp.top_logprobs)
    assert lp.text_offset == [sum(len(t) for t in lp.tokens[:i]) for i in range(len(lp.tokens))]


def test_responses_logprobs_with_include_plain_and_streamed(sim_server: SimServer) -> None:
    c = client(sim_server)
    include: Any = ["message.output_text.logprobs"]
    r = c.responses.create(model="gpt-4o", input="Hello", include=include, top_logprobs=2)
    part = r.output[0].content[0]  # type: ignore[union-attr]
    assert part.logprobs and "".join(e.token for e in part.logprobs) == r.output_text  # type: ignore[union-attr]
    assert all(len(e.top_logprobs) == 2 for e in part.logprobs)  # type: ignore[union-attr]
    with c.responses.stream(model="gpt-4o", input="Hello", include=include, top_logprobs=1) as stream:
        deltas = [e for e in stream if e.type == "response.output_text.delta"]
    assert deltas and all(len(e.logprobs) == 1 and e.logprobs[0].token == e.delta for e in deltas)
    plain = c.responses.create(model="gpt-4o", input="Hello")
    assert plain.output[0].content[0].logprobs == []  # type: ignore[union-attr]


def test_gemini_logprobs_result_plain_and_streamed(sim_server_factory: Callable[..., SimServer]) -> None:
    c = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=sim_server_factory(FAST).url))
    config = types.GenerateContentConfig(response_logprobs=True, logprobs=2)
    response = c.models.generate_content(model="g", contents="hi", config=config)
    candidate = (response.candidates or [])[0]
    result = candidate.logprobs_result
    assert result is not None and result.chosen_candidates and result.top_candidates
    assert "".join(x.token or "" for x in result.chosen_candidates) == response.text
    assert all(len(t.candidates or []) == 2 for t in result.top_candidates)
    assert candidate.avg_logprobs is not None and candidate.avg_logprobs < 0
    chunks = list(c.models.generate_content_stream(model="g", contents="hi", config=config))
    chosen = [
        x.token for ch in chunks for x in ((ch.candidates or [])[0].logprobs_result.chosen_candidates or [])
    ]  # type: ignore[union-attr]
    assert "".join(t or "" for t in chosen) == "".join(ch.text or "" for ch in chunks)
    assert (c.models.generate_content(model="g", contents="hi").candidates or [])[0].logprobs_result is None


def test_ollama_logprobs_chat_and_generate(sim_server: SimServer) -> None:
    c = ollama.Client(host=sim_server.url)
    response = c.chat(model="llama3.1", messages=USER, logprobs=True, top_logprobs=2)
    assert response.logprobs and "".join(e.token for e in response.logprobs) == response.message.content
    assert all(len(e.top_logprobs or []) == 2 for e in response.logprobs)
    streamed = [
        p for p in c.generate(model="llama3.1", prompt="hi", logprobs=True, stream=True) if not p.done
    ]
    assert all(p.logprobs and p.logprobs[0].token == p.response for p in streamed)
    assert c.chat(model="llama3.1", messages=USER).logprobs is None
