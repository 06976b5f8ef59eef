"""Rate-limit headers on every answer, read through the official SDKs: the default tier's figures
without `rateLimits`, the profile's override, 429s included, and none for Gemini and Ollama."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import anthropic
import httpx
import openai
import pytest

from simserver import FAST, SimServer

USER: Any = [{"role": "user", "content": "Hello there"}]


def openai_client(server: SimServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key="sk-a", max_retries=0)


def test_openai_sends_tier1_headers_on_every_answer_429s_included(
    sim_server_factory: Callable[..., SimServer],
) -> None:
    client = openai_client(sim_server_factory(FAST))
    first = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=USER, max_tokens=20)
    h = first.headers
    assert (h["x-ratelimit-limit-requests"], h["x-ratelimit-limit-tokens"]) == ("500", "30000")
    assert h["x-ratelimit-remaining-requests"] == "499"
    assert 30000 - int(h["x-ratelimit-remaining-tokens"]) == first.parse().usage.prompt_tokens + 20  # type: ignore[union-attr]
    assert h["x-ratelimit-reset-requests"] == "120ms"  # one request refills in 60 s / 500
    assert h["x-ratelimit-reset-tokens"].endswith("ms")
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(
            model="gpt-4o", messages=USER, extra_headers={"x-llmsim-fault": "rate_limit"}
        )
    limited = caught.value.response.headers
    assert (
        limited["x-ratelimit-limit-requests"] == "500"
        and int(limited["x-ratelimit-remaining-requests"]) >= 499
    )
    assert limited["retry-after"] == "1"


def test_the_profile_overrides_the_tier_and_can_switch_the_headers_off(
    sim_server_factory: Callable[..., SimServer],
) -> None:
    # slow refills (0.1 request and 10 tokens a second), so what each request took shows exactly
    tier = {**FAST, "faults": {"rateLimitHeaders": {"requestsPerMinute": 6, "tokensPerMinute": 600}}}
    client = openai_client(sim_server_factory(tier))
    seen = [client.chat.completions.with_raw_response.create(model="gpt-4o", messages=USER, max_tokens=50)
            for _ in range(3)]  # fmt: skip
    h = seen[0].headers
    assert (h["x-ratelimit-limit-requests"], h["x-ratelimit-limit-tokens"]) == ("6", "600")
    assert [r.headers["x-ratelimit-remaining-requests"] for r in seen] == ["5", "4", "3"]
    cost = seen[0].parse().usage.prompt_tokens + 50  # type: ignore[union-attr]
    remaining = [int(r.headers["x-ratelimit-remaining-tokens"]) for r in seen]
    assert remaining[0] == 600 - cost and all(600 - (i + 1) * cost <= r < 600 - (i + 1) * cost + 20
                                              for i, r in enumerate(remaining))  # fmt: skip
    assert remaining[2] < remaining[1] < remaining[0]
    off = {**FAST, "faults": {"rateLimitHeaders": {"enabled": False}}}
    h = (
        openai_client(sim_server_factory(off))
        .chat.completions.with_raw_response.create(model="gpt-4o", messages=USER)
        .headers
    )
    assert not [k for k in h if k.startswith("x-ratelimit-")]


def test_azure_sends_the_remaining_pair_with_a_ten_second_request_window(
    sim_server_factory: Callable[..., SimServer],
) -> None:
    server = sim_server_factory(FAST)
    client = openai.AzureOpenAI(
        azure_endpoint=server.url, api_version="2024-10-21", api_key="az", max_retries=0
    )
    h = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=USER, max_tokens=10).headers
    assert sorted(k for k in h if k.startswith("x-ratelimit-")) == [
        "x-ratelimit-remaining-requests",
        "x-ratelimit-remaining-tokens",
    ]
    assert h["x-ratelimit-remaining-requests"] == "29"  # 180 RPM enforced per 10 s: 30 per window
    with pytest.raises(openai.PermissionDeniedError) as caught:
        client.chat.completions.create(
            model="gpt-4o", messages=USER, extra_headers={"x-llmsim-fault": "permission"}
        )
    assert caught.value.response.headers["x-ratelimit-remaining-requests"] == "29"


def test_anthropic_sends_every_family_with_rfc3339_resets(
    sim_server_factory: Callable[..., SimServer],
) -> None:
    server = sim_server_factory(FAST)
    client = anthropic.Anthropic(base_url=server.url, api_key="k", max_retries=0)
    raw = client.messages.with_raw_response.create(model="claude-sonnet-4", max_tokens=4000, messages=USER)
    h = raw.headers
    usage = raw.parse().usage
    assert (
        h["anthropic-ratelimit-requests-limit"] == "50"
        and h["anthropic-ratelimit-requests-remaining"] == "49"
    )
    assert h["anthropic-ratelimit-input-tokens-limit"] == "30000"
    assert int(h["anthropic-ratelimit-input-tokens-remaining"]) == 30000 - usage.input_tokens
    assert (
        h["anthropic-ratelimit-output-tokens-limit"],
        h["anthropic-ratelimit-output-tokens-remaining"],
    ) == (
        "8000",
        "4000",
    )
    # `tokens` reports the more restrictive bucket: half the output budget is gone
    assert (h["anthropic-ratelimit-tokens-limit"], h["anthropic-ratelimit-tokens-remaining"]) == (
        "8000",
        "4000",
    )
    for family in ("requests", "tokens", "input-tokens", "output-tokens"):
        reset = dt.datetime.fromisoformat(h[f"anthropic-ratelimit-{family}-reset"])
        assert reset.tzinfo is not None and abs((reset - dt.datetime.now(dt.UTC)).total_seconds()) < 70
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(model="claude-sonnet-4", max_tokens=10, messages=USER,
                               extra_headers={"x-llmsim-fault": "rate_limit"})  # fmt: skip
    assert caught.value.response.headers["anthropic-ratelimit-requests-remaining"] == "49"


def test_gemini_and_ollama_send_no_rate_limit_headers(sim_server_factory: Callable[..., SimServer]) -> None:
    server = sim_server_factory(FAST)
    gemini = httpx.post(server.url + "/v1beta/models/gemini-2.0-flash:generateContent",
                        headers={"x-goog-api-key": "g"}, json={"contents": [{"parts": [{"text": "hi"}]}]})  # fmt: skip
    ollama = httpx.post(server.url + "/api/chat", json={"model": "llama3", "messages": USER, "stream": False})
    for response in (gemini, ollama):
        assert response.status_code == 200
        assert not [k for k in response.headers if "ratelimit" in k]
