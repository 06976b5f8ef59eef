"""The rate-limit tier each provider's headers report when the profile enforces none. Pure.

Real providers send their rate-limit headers on every response; clients, gateways and
middleware read them to pace themselves. Without `faults.rateLimits` the simulator still sends
them, with the figures of the provider's default (entry) tier, overridable per profile in
`faults.rateLimitHeaders`:

| provider | requests/min | tokens/min | source |
|---|---|---|---|
| OpenAI | 500 | 30,000 | usage tier 1, gpt-4o |
| Azure OpenAI | 180 | 30,000 | a 30K TPM standard deployment; Azure grants 6 RPM per 1,000 TPM |
| Anthropic | 50 | 30,000 input, 8,000 output | usage tier 1, Claude Sonnet |

Gemini and Ollama send no rate-limit headers.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmsim.api.faults import RateLimitHeaders
from llmsim.simulation.ratelimit import Bucket, BucketLimits


@dataclass(frozen=True)
class Tier:
    """Per-minute figures a provider's headers report (None: the provider has no such family)."""

    requests: int
    tokens: int | None = None
    """OpenAI/Azure: input + max output tokens."""
    input_tokens: int | None = None
    """Anthropic: input tokens."""
    output_tokens: int | None = None
    """Anthropic: output tokens (charged `max_tokens` when the request starts)."""


DEFAULT_TIERS: dict[str, Tier] = {
    "openai": Tier(requests=500, tokens=30_000),
    "azure": Tier(requests=180, tokens=30_000),
    "anthropic": Tier(requests=50, input_tokens=30_000, output_tokens=8_000),
}
"""The default tier per provider (providers absent here send no rate-limit headers)."""


def advertised(provider: str, spec: RateLimitHeaders) -> Tier | None:
    """The tier `provider`'s headers report under `spec` (None: no headers)."""
    default = DEFAULT_TIERS.get(provider)
    if default is None or not spec.enabled:
        return None
    if provider == "anthropic":
        return Tier(
            requests=spec.requests_per_minute or default.requests,
            input_tokens=spec.input_tokens_per_minute or default.input_tokens,
            output_tokens=spec.output_tokens_per_minute or default.output_tokens,
        )
    return Tier(
        requests=spec.requests_per_minute or default.requests, tokens=spec.tokens_per_minute or default.tokens
    )


REQUEST_WINDOW_S: dict[str, float] = {"azure": 10.0}
"""Seconds' worth of the requests limit a bucket holds where the provider enforces RPM over a
shorter window (Azure: 10 s, so a 180 RPM deployment reports 30 remaining when idle)."""


def _bucket(per_minute: int | None, window_s: float = 60.0) -> Bucket | None:
    if per_minute is None:
        return None
    return Bucket(limit=per_minute, capacity=max(1.0, per_minute * window_s / 60.0), rate=per_minute / 60.0)


def main_buckets(provider: str, tier: Tier) -> BucketLimits:
    """Requests and (input) tokens: the bucket pair a request is charged `input (+ max output)` in."""
    window = REQUEST_WINDOW_S.get(provider, 60.0)
    return BucketLimits(
        requests=_bucket(tier.requests, window), tokens=_bucket(tier.tokens or tier.input_tokens)
    )


def output_buckets(tier: Tier) -> BucketLimits | None:
    """Anthropic's output-tokens bucket (None for providers without one)."""
    return (
        None
        if tier.output_tokens is None
        else BucketLimits(requests=None, tokens=_bucket(tier.output_tokens))
    )
