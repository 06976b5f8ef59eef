"""Content-filter, refusal and prompt-filter outcomes, in each provider's shape, as the official
SDKs surface them (the attribute they fill or the exception class they raise)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anthropic
import ollama
import openai
import pytest
from google import genai
from google.genai import types as genai_types

from simserver import FAST, SimServer

USER: Any = [{"role": "user", "content": "Hello there"}]
REFUSAL = "I'm sorry, but I can't help with that."


def fault(name: str) -> dict[str, str]:
    return {"x-llmsim-fault": name}


def oai(server: SimServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key="k", max_retries=0)


def azure(server: SimServer) -> openai.AzureOpenAI:
    return openai.AzureOpenAI(azure_endpoint=server.url, api_version="2024-10-21", api_key="k", max_retries=0)


def gem(server: SimServer, name: str) -> genai.Client:
    return genai.Client(
        api_key="k", http_options=genai_types.HttpOptions(base_url=server.url, headers=fault(name))
    )


def test_content_filter_stops_the_answer_in_each_providers_way(
    sim_server_factory: Callable[..., SimServer],
) -> None:
    server = sim_server_factory(FAST)  # 12 tokens of text; the filter strikes after afterTokens (5)
    chat = oai(server).chat.completions.create(
        model="gpt-4o", messages=USER, extra_headers=fault("content_filter")
    )
    assert chat.choices[0].finish_reason == "content_filter" and chat.usage.completion_tokens == 5  # type: ignore[union-attr]
    az = azure(server).chat.completions.create(
        model="gpt-4o", messages=USER, extra_headers=fault("content_filter")
    )
    results = az.choices[0].model_extra["content_filter_results"]  # type: ignore[index]
    assert az.choices[0].finish_reason == "content_filter"
    assert results["violence"] == {"filtered": True, "severity": "medium"} and not results["hate"]["filtered"]
    stream = azure(server).chat.completions.create(model="gpt-4o", messages=USER, stream=True,
                                                   extra_headers=fault("content_filter"))  # fmt: skip
    last = [c for c in stream if c.choices and c.choices[0].finish_reason][-1]
    assert last.choices[0].finish_reason == "content_filter"
    assert last.choices[0].model_extra["content_filter_results"]["violence"]["filtered"] is True  # type: ignore[index]

    resp = oai(server).responses.create(model="gpt-4o", input="Hello", extra_headers=fault("content_filter"))
    assert resp.status == "incomplete" and resp.incomplete_details.reason == "content_filter"  # type: ignore[union-attr]

    anth = anthropic.Anthropic(base_url=server.url, api_key="k", max_retries=0)
    msg = anth.messages.create(
        model="claude-sonnet-4", max_tokens=50, messages=USER, extra_headers=fault("content_filter")
    )
    assert msg.stop_reason == "refusal" and msg.usage.output_tokens == 5
    with anth.messages.stream(model="claude-sonnet-4", max_tokens=50, messages=USER,
                              extra_headers=fault("content_filter")) as s:  # fmt: skip
        assert s.get_final_message().stop_reason == "refusal"

    gc = gem(server, "content_filter")  # (kept: a google-genai client closes when collected)
    g = gc.models.generate_content(model="gemini-2.0-flash", contents="Hello")
    candidate = g.candidates[0]  # type: ignore[index]
    assert candidate.finish_reason == genai_types.FinishReason.SAFETY
    blocked = [r for r in candidate.safety_ratings or [] if r.blocked]
    assert [r.category for r in blocked] == [genai_types.HarmCategory.HARM_CATEGORY_DANGEROUS_CONTENT]
    chunks = list(gc.models.generate_content_stream(model="gemini-2.0-flash", contents="Hi"))
    assert chunks[-1].candidates[0].finish_reason == genai_types.FinishReason.SAFETY  # type: ignore[index]


def test_refusal_fills_the_sdks_refusal_fields(sim_server_factory: Callable[..., SimServer]) -> None:
    server = sim_server_factory(FAST)
    chat = oai(server).chat.completions.create(model="gpt-4o", messages=USER, extra_headers=fault("refusal"))
    message = chat.choices[0].message
    assert message.refusal == REFUSAL and message.content is None and chat.choices[0].finish_reason == "stop"
    with oai(server).chat.completions.stream(
        model="gpt-4o", messages=USER, extra_headers=fault("refusal")
    ) as s:
        events = list(s)
        final = s.get_final_completion()
    assert final.choices[0].message.refusal == REFUSAL and final.choices[0].message.content is None
    assert any(e.type == "refusal.delta" for e in events) and any(e.type == "refusal.done" for e in events)
    resp = oai(server).responses.create(model="gpt-4o", input="Hello", extra_headers=fault("refusal"))
    part = resp.output[0].content[0]  # type: ignore[union-attr]
    assert part.type == "refusal" and part.refusal == REFUSAL  # type: ignore[union-attr]
    with oai(server).responses.stream(model="gpt-4o", input="Hello", extra_headers=fault("refusal")) as rs:
        kinds = [e.type for e in rs]
        streamed = rs.get_final_response()
    assert "response.refusal.delta" in kinds and streamed.output[0].content[0].refusal == REFUSAL  # type: ignore[union-attr]

    anth = anthropic.Anthropic(base_url=server.url, api_key="k", max_retries=0)
    msg = anth.messages.create(
        model="claude-sonnet-4", max_tokens=50, messages=USER, extra_headers=fault("refusal")
    )
    assert msg.stop_reason == "refusal" and msg.content[0].text == REFUSAL  # type: ignore[union-attr]
    gr = gem(server, "refusal")
    g = gr.models.generate_content(model="gemini-2.0-flash", contents="Hello")
    assert g.text == REFUSAL
    o = ollama.Client(host=server.url, headers=fault("refusal")).chat(model="llama3", messages=USER)
    assert o.message.content == REFUSAL and o.done_reason == "stop"


def test_prompt_filter_rejects_the_prompt_in_each_providers_shape(
    sim_server_factory: Callable[..., SimServer],
) -> None:
    server = sim_server_factory(FAST)
    with pytest.raises(openai.BadRequestError) as az:
        azure(server).chat.completions.create(
            model="gpt-4o", messages=USER, extra_headers=fault("prompt_filter")
        )
    assert az.value.code == "content_filter" and az.value.param == "prompt"
    inner = az.value.body["innererror"]  # type: ignore[index]
    assert inner["code"] == "ResponsibleAIPolicyViolation"
    assert inner["content_filter_result"]["violence"]["filtered"] is True
    with pytest.raises(openai.BadRequestError) as oa:
        oai(server).chat.completions.create(
            model="gpt-4o", messages=USER, extra_headers=fault("prompt_filter")
        )
    assert oa.value.code == "invalid_prompt"
    with pytest.raises(anthropic.BadRequestError):
        anthropic.Anthropic(base_url=server.url, api_key="k", max_retries=0).messages.create(
            model="claude-sonnet-4", max_tokens=50, messages=USER, extra_headers=fault("prompt_filter")
        )
    gp = gem(server, "prompt_filter")
    blocked = gp.models.generate_content(model="gemini-2.0-flash", contents="Hello")
    assert not blocked.candidates and blocked.text is None
    assert blocked.prompt_feedback.block_reason == genai_types.BlockedReason.SAFETY  # type: ignore[union-attr]
    streamed = list(gp.models.generate_content_stream(model="gemini-2.0-flash", contents="Hi"))
    assert streamed[0].prompt_feedback.block_reason == genai_types.BlockedReason.SAFETY  # type: ignore[union-attr]
    with pytest.raises(ollama.ResponseError) as ol:
        ollama.Client(host=server.url, headers=fault("prompt_filter")).chat(model="llama3", messages=USER)
    assert ol.value.status_code == 400


def test_safety_faults_follow_rates_and_windows(sim_server_factory: Callable[..., SimServer]) -> None:
    rated = sim_server_factory({**FAST, "faults": {"rates": {"refusal": 1.0}}})
    assert (
        oai(rated).chat.completions.create(model="gpt-4o", messages=USER).choices[0].message.refusal
        == REFUSAL
    )
    windowed = sim_server_factory(
        {**FAST, "faults": {"windows": [{"fault": "prompt_filter", "durationS": 600}]}}
    )
    with pytest.raises(openai.BadRequestError):
        azure(windowed).chat.completions.create(model="gpt-4o", messages=USER)
