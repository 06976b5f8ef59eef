"""`/metrics` of a real server, driven by the official openai SDK and parsed with prometheus-client."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import openai
import pytest
from helpers import scrape, total

from llmsim.profiles import ProfileRegistry
from llmsim.server.app import create_app
from llmsim.telemetry.facade import Telemetry
from llmsim.telemetry.labels import ModelLabeler
from simserver import FAST, SimServer, profile_from

USER = [{"role": "user", "content": "Say something."}]


def fault(name: str) -> dict[str, str]:
    return {"x-llmsim-fault": name}


def client(server: SimServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key="sk-test", max_retries=0)


def test_histogram_counts_equal_the_requests_made(sim_server: SimServer) -> None:
    c = client(sim_server)
    n_stream, n_plain = 7, 5
    out_tokens = 0
    for _ in range(n_stream):
        stream = c.chat.completions.create(
            model="gpt-4o", messages=USER, stream=True, stream_options={"include_usage": True}
        )
        for chunk in stream:
            if chunk.usage is not None:
                out_tokens += chunk.usage.completion_tokens
    in_tokens = 0
    for _ in range(n_plain):
        r = c.chat.completions.create(model="gpt-4o", messages=USER)
        assert r.usage is not None
        out_tokens += r.usage.completion_tokens
        in_tokens += r.usage.prompt_tokens
    s = scrape(sim_server)
    n = n_stream + n_plain
    labels = {"provider": "openai", "model": "gpt-4o", "mode": "simulate", "outcome": "ok"}
    assert total(s, "llmsim_requests_total", **labels) == n
    assert total(s, "llmsim_e2e_seconds_count", **labels) == n
    assert total(s, "llmsim_ttft_seconds_count", **labels) == n
    # FAST answers 12 tokens: 11 gaps per stream; non-streamed bodies have no gaps.
    assert total(s, "llmsim_itl_seconds_count", **labels) == n_stream * 11
    assert total(s, "llmsim_tokens_total", direction="output") == out_tokens == n * 12
    assert total(s, "llmsim_tokens_total", direction="input") == in_tokens * n / n_plain
    inf = total(s, "llmsim_e2e_seconds_bucket", le="+Inf", **labels)
    assert inf == n
    # TTFT is 5 ms on the profile: every observation is below 100 ms.
    assert total(s, "llmsim_ttft_seconds_bucket", le="0.1", **labels) == n
    assert total(s, "llmsim_active_streams") == 0


def test_faults_and_error_outcomes_are_counted(sim_server: SimServer) -> None:
    c = client(sim_server)
    for _ in range(3):
        with pytest.raises(openai.RateLimitError):
            c.chat.completions.create(
                model="gpt-4o", messages=USER, extra_headers={"x-llmsim-fault": "rate_limit"}
            )
    with pytest.raises(openai.InternalServerError):
        c.chat.completions.create(
            model="gpt-4o", messages=USER, extra_headers={"x-llmsim-fault": "server_error"}
        )
    c.chat.completions.create(model="gpt-4o", messages=USER)
    s = scrape(sim_server)
    assert total(s, "llmsim_faults_injected_total", fault="rate_limit") == 3
    assert total(s, "llmsim_faults_injected_total", fault="server_error") == 1
    assert total(s, "llmsim_requests_total", outcome="rate_limit") == 3
    assert total(s, "llmsim_requests_total", outcome="server_error") == 1
    assert total(s, "llmsim_requests_total", outcome="ok") == 1
    assert total(s, "llmsim_e2e_seconds_count") == 5
    assert total(s, "llmsim_ttft_seconds_count") == 1  # errors send no token


def test_unknown_model_names_cannot_explode_the_series(sim_server_factory: Callable[..., SimServer]) -> None:
    registry = ProfileRegistry(profile_from(FAST))
    telemetry = Telemetry(models=ModelLabeler(known=["gpt-4o"], limit=3))
    server = SimServer(create_app(registry, telemetry=telemetry)).start()
    try:
        c = client(server)
        names = ["gpt-4o"] + [f"made-up-{i}" for i in range(20)]
        for name in names:
            c.chat.completions.create(model=name, messages=USER, max_tokens=2)
        s = scrape(server)
    finally:
        server.stop()
    models = {labels["model"] for labels, _ in s["llmsim_requests_total"]}
    assert models == {"gpt-4o", "made-up-0", "made-up-1", "made-up-2", "other"}
    assert total(s, "llmsim_requests_total", model="other") == 17
    assert total(s, "llmsim_requests_total") == len(names)


def test_active_streams_gauge_counts_requests_in_flight(sim_server_factory: Callable[..., SimServer]) -> None:
    slow: dict[str, Any] = {
        "latency": {
            "ttftMs": {"type": "constant", "value": 800},
            "outputTokens": {"type": "constant", "value": 2},
        }
    }
    server = sim_server_factory(slow)
    threads = [
        threading.Thread(target=lambda: client(server).chat.completions.create(model="m", messages=USER))
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 5
    seen = 0.0
    while time.monotonic() < deadline and seen < 3:
        seen = total(scrape(server), "llmsim_active_streams", provider="openai")
        time.sleep(0.02)
    for t in threads:
        t.join(timeout=10)
    assert seen == 3
    assert total(scrape(server), "llmsim_active_streams") == 0


def test_other_providers_are_labelled_by_their_wire_format(sim_server: SimServer) -> None:
    import anthropic
    from google import genai
    from google.genai import types

    a = anthropic.Anthropic(base_url=sim_server.url, api_key="sk-ant-test", max_retries=0)
    with a.messages.stream(model="claude-sonnet-4", max_tokens=50, messages=USER) as stream:
        assert stream.get_final_message().usage.output_tokens == 12
    g = genai.Client(api_key="gm-test", http_options=types.HttpOptions(base_url=sim_server.url))
    chunks = list(g.models.generate_content_stream(model="gemini-2.0-flash", contents="Hello?"))
    assert chunks[-1].usage_metadata and chunks[-1].usage_metadata.candidates_token_count == 12
    s = scrape(sim_server)
    # ITL is measured between token-carrying writes: Gemini groups its tokens into chunks
    gaps = {"anthropic": 11, "gemini": len(chunks) - 1}
    for provider, model in (("anthropic", "claude-sonnet-4"), ("gemini", "gemini-2.0-flash")):
        labels = {"provider": provider, "model": model, "outcome": "ok"}
        assert total(s, "llmsim_requests_total", **labels) == 1
        assert total(s, "llmsim_ttft_seconds_count", **labels) == 1
        assert total(s, "llmsim_itl_seconds_count", **labels) == gaps[provider]
        assert total(s, "llmsim_tokens_total", provider=provider, direction="output") == 12
