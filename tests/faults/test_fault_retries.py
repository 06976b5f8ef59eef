"""Stateful behaviour over HTTP: rate limits that SDK retries wait out, fail-first retry paths,
shared buckets across replicas, and observed fault rates."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import types as genai_types
from scipy import stats

from llmsim.profiles import ProfileRegistry
from llmsim.server.app import create_app
from simserver import SimServer, profile_from

from .conftest import RedisProcess

LATENCY = {
    "ttftMs": {"type": "constant", "value": 1},
    "itlMs": {"type": "constant", "value": 1},
    "outputTokens": {"type": "constant", "value": 4},
}
USER = [{"role": "user", "content": "Say hello"}]


def serve(faults: dict[str, Any]) -> SimServer:
    return SimServer(
        create_app(ProfileRegistry(profile_from({"seed": 3, "latency": LATENCY, "faults": faults})))
    ).start()


@pytest.fixture(scope="module")
def limited() -> Iterator[SimServer]:
    """Two requests per second, one at a time (burst 0.5 s): a second request waits <= 0.5 s."""
    server = serve({"rateLimits": {"requestsPerMinute": 120, "burstS": 0.5}})
    yield server
    server.stop()


class Recorder:
    """httpx event hooks: when each request went out and what each response said."""

    def __init__(self) -> None:
        self.sent: list[float] = []
        self.responses: list[tuple[int, dict[str, str]]] = []

    def request(self, request: Any) -> None:
        self.sent.append(time.monotonic())

    def response(self, response: Any) -> None:
        self.responses.append((response.status_code, dict(response.headers)))

    @property
    def hooks(self) -> dict[str, list[Callable[[Any], None]]]:
        return {"request": [self.request], "response": [self.response]}


def assert_waited_per_retry_after(rec: Recorder) -> None:
    statuses = [status for status, _ in rec.responses]
    assert statuses == [200, 429, 200], statuses
    headers = rec.responses[1][1]
    wait_s = float(headers["retry-after-ms"]) / 1000
    assert 0 < wait_s <= 0.5 and headers["retry-after"] == "1"
    gap = rec.sent[2] - rec.sent[1]
    assert wait_s - 0.01 <= gap <= wait_s + 0.3, (gap, wait_s)


@pytest.mark.parametrize("provider", ["openai", "azure"])
def test_openai_sdk_waits_the_retry_after_and_then_succeeds(limited: SimServer, provider: str) -> None:
    rec = Recorder()
    http = openai.DefaultHttpxClient(event_hooks=rec.hooks)
    if provider == "openai":
        client: openai.OpenAI = openai.OpenAI(
            base_url=limited.url + "/v1", api_key=f"sk-{provider}", http_client=http
        )
    else:
        client = openai.AzureOpenAI(
            azure_endpoint=limited.url, api_version="2024-10-21", api_key="az", http_client=http
        )
    first = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=USER)  # type: ignore[arg-type]
    assert first.headers["x-ratelimit-remaining-requests"] == "0"
    if provider == "openai":  # Azure sends only the remaining-* pair
        assert first.headers["x-ratelimit-limit-requests"] == "120"
        assert first.headers["x-ratelimit-reset-requests"].endswith("ms")
    else:
        assert "x-ratelimit-limit-requests" not in first.headers
    second = client.chat.completions.create(model="gpt-4o-mini", messages=USER)  # type: ignore[arg-type]
    assert second.choices[0].message.content
    assert_waited_per_retry_after(rec)
    limited_headers = rec.responses[1][1]
    assert (
        limited_headers["x-ratelimit-remaining-requests"] == "0" and "x-should-retry" not in limited_headers
    )


def test_anthropic_sdk_waits_the_retry_after_and_then_succeeds(limited: SimServer) -> None:
    rec = Recorder()
    http = anthropic.DefaultHttpxClient(event_hooks=rec.hooks)
    client = anthropic.Anthropic(base_url=limited.url, api_key="anthropic-key", http_client=http)
    client.messages.create(model="claude-sonnet-4", max_tokens=20, messages=USER)  # type: ignore[arg-type]
    message = client.messages.create(model="claude-sonnet-4", max_tokens=20, messages=USER)  # type: ignore[arg-type]
    assert message.content
    assert_waited_per_retry_after(rec)
    ok_headers = rec.responses[0][1]
    assert ok_headers["anthropic-ratelimit-requests-limit"] == "120"
    assert ok_headers["anthropic-ratelimit-requests-reset"].endswith("Z")


def test_gemini_sdk_with_retry_options_gets_through_after_a_429(limited: SimServer) -> None:
    """google-genai ignores retry-after (it backs off exponentially) and retries only when asked."""
    rec = Recorder()
    retry = genai_types.HttpRetryOptions(attempts=3, initial_delay=0.6, max_delay=1.0, jitter=0.0)
    options = genai_types.HttpOptions(
        base_url=limited.url, retry_options=retry, client_args={"event_hooks": rec.hooks}
    )
    client = genai.Client(api_key="gemini-key", http_options=options)
    client.models.generate_content(model="gemini-2.0-flash", contents="hi")
    assert client.models.generate_content(model="gemini-2.0-flash", contents="hi").text
    assert [status for status, _ in rec.responses] == [200, 429, 200]


def test_fail_first_fails_n_attempts_of_a_conversation_then_the_retry_succeeds() -> None:
    server = serve({"failFirst": {"attempts": 2, "fault": "overloaded"}, "params": {"retryAfterS": 0.05}})
    try:
        rec = Recorder()
        client = anthropic.Anthropic(
            base_url=server.url, api_key="k", http_client=anthropic.DefaultHttpxClient(event_hooks=rec.hooks)
        )
        assert client.messages.create(model="claude-sonnet-4", max_tokens=20, messages=USER).content  # type: ignore[arg-type]
        assert [status for status, _ in rec.responses] == [529, 529, 200]
        other = client.messages.create(
            model="claude-sonnet-4", max_tokens=20, messages=[{"role": "user", "content": "New"}]
        )
        assert other.content and [s for s, _ in rec.responses][3:] == [529, 529, 200]
    finally:
        server.stop()


def test_fail_first_by_request_id_counts_per_client_request_id() -> None:
    server = serve({"failFirst": {"attempts": 1, "key": "request_id", "fault": "server_error"}})
    try:

        def post(request_id: str) -> int:
            body = {"model": "m", "messages": USER}
            response = httpx.post(
                server.url + "/v1/chat/completions", json=body, headers={"x-llmsim-request-id": request_id}
            )
            return response.status_code

        assert [post("a"), post("a"), post("b"), post("a")] == [500, 200, 500, 200]
    finally:
        server.stop()


def test_shared_rate_limits_span_replicas(redis_server: RedisProcess) -> None:
    faults = {"rateLimits": {"requestsPerMinute": 3, "scope": "shared", "redisUrl": redis_server.url}}
    replicas = [serve(faults), serve(faults)]
    try:
        codes = []
        for i in range(6):
            url = replicas[i % 2].url + "/v1/chat/completions"
            response = httpx.post(
                url, json={"model": "shared", "messages": USER}, headers={"authorization": "Bearer same"}
            )
            codes.append(response.status_code)
        assert codes == [200, 200, 200, 429, 429, 429]
    finally:
        for server in replicas:
            server.stop()


def test_observed_http_fault_rates_match_the_configured_ones() -> None:
    rates = {"server_error": 0.2, "rate_limit": 0.1}
    server = serve({"rates": rates})
    n = 400
    try:
        codes: dict[int, int] = {}
        with httpx.Client(base_url=server.url) as client:
            for i in range(n):
                body = {"model": "m", "messages": [{"role": "user", "content": f"question {i}"}]}
                code = client.post("/v1/chat/completions", json=body).status_code
                codes[code] = codes.get(code, 0) + 1
        for code, p in ((500, 0.2), (429, 0.1)):
            lo, hi = stats.binom.ppf(5e-5, n, p), stats.binom.isf(5e-5, n, p)
            assert lo <= codes.get(code, 0) <= hi, codes
        assert set(codes) <= {200, 429, 500}
    finally:
        server.stop()


def test_injected_status_faults_spare_the_bucket_and_forcing_none_does_not_bypass_it() -> None:
    server = serve({"rateLimits": {"requestsPerMinute": 1}})
    try:

        def post(fault: str | None) -> int:
            headers = {"x-llmsim-fault": fault} if fault else {}
            return httpx.post(
                server.url + "/v1/chat/completions", json={"model": "m", "messages": USER}, headers=headers
            ).status_code

        assert [post("server_error"), post(None), post("none")] == [500, 200, 429]
    finally:
        server.stop()


def test_every_replica_gives_a_request_the_same_fate() -> None:
    faults = {"rates": {"server_error": 0.3, "overloaded": 0.2}}
    replicas = [serve(faults), serve(faults)]
    try:

        def fates(server: SimServer, order: list[int]) -> dict[int, int]:
            out = {}
            for i in order:
                body = {"model": "m", "messages": [{"role": "user", "content": f"question {i}"}]}
                out[i] = httpx.post(server.url + "/v1/chat/completions", json=body).status_code
            return out

        first = fates(replicas[0], list(range(40)))
        second = fates(replicas[1], list(reversed(range(40))))  # other replica, other arrival order
        assert first == second
        assert {500, 503, 200} <= set(first.values())
    finally:
        for server in replicas:
            server.stop()
