"""The default rate-limit tiers the headers report without `rateLimits` (pinned: docs/faults.md
quotes them), their overrides, and reading a bucket without charging it."""

from __future__ import annotations

from llmsim.api.faults import RateLimitHeaders
from llmsim.simulation import rate_tiers, ratelimit
from llmsim.simulation.rate_tiers import Tier


def test_the_default_tiers_are_the_documented_ones() -> None:
    assert {
        "openai": Tier(requests=500, tokens=30_000),
        "azure": Tier(requests=180, tokens=30_000),
        "anthropic": Tier(requests=50, input_tokens=30_000, output_tokens=8_000),
    } == rate_tiers.DEFAULT_TIERS
    assert rate_tiers.advertised("gemini", RateLimitHeaders()) is None
    assert rate_tiers.advertised("ollama", RateLimitHeaders()) is None
    assert rate_tiers.advertised("openai", RateLimitHeaders(enabled=False)) is None


def test_overrides_replace_only_the_figures_they_set() -> None:
    spec = RateLimitHeaders(requests_per_minute=7, output_tokens_per_minute=99)
    assert rate_tiers.advertised("openai", spec) == Tier(requests=7, tokens=30_000)
    assert rate_tiers.advertised("anthropic", spec) == Tier(requests=7, input_tokens=30_000, output_tokens=99)


def test_azure_holds_ten_seconds_of_requests_and_anthropic_has_an_output_bucket() -> None:
    azure = rate_tiers.main_buckets("azure", Tier(requests=180, tokens=30_000))
    assert azure.requests is not None and azure.requests.capacity == 30 and azure.requests.limit == 180
    assert rate_tiers.output_buckets(Tier(requests=180, tokens=30_000)) is None
    out = rate_tiers.output_buckets(Tier(requests=50, input_tokens=30_000, output_tokens=8_000))
    assert out is not None and out.requests is None and out.tokens is not None and out.tokens.limit == 8_000


def test_observing_a_bucket_charges_nothing() -> None:
    limits = rate_tiers.main_buckets("openai", Tier(requests=60, tokens=600))
    state, taken = ratelimit.take(None, limits, 100, now=0.0)
    _, seen = ratelimit.observe(state, limits, now=0.0)
    assert (
        (taken.remaining_requests, taken.remaining_tokens)
        == (seen.remaining_requests, seen.remaining_tokens)
        == (59, 500)
    )
    _, later = ratelimit.observe(state, limits, now=1.0)  # one second refills 1 request and 10 tokens
    assert (later.remaining_requests, later.remaining_tokens) == (60, 510) and later.allowed
