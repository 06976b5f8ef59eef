"""Token-bucket rate limiting, as the providers do it per API key and model. Pure math.

A bucket pair holds requests and tokens. Each bucket has a capacity of `limit * burstS / 60`
and refills continuously at `limit / 60` per second. A request costs one request and
`input tokens + max output tokens` tokens; it is admitted only if both buckets hold enough,
and then both are debited. A rejected request debits nothing.

What the headers report, for each bucket:

* `remaining`: what the bucket holds after this request (rounded down);
* `reset`: how long until the bucket is full again;
* `retry_after` (rejections only): how long until the bucket holds enough for this request.

The same arithmetic runs inside Redis for shared buckets (`server/ratelimit_store.py`); that
store returns the refilled state and this module computes the verdict from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from llmsim.api.faults import RateLimits
from llmsim.simulation import planner
from llmsim.simulation.request import GenerationRequest

Dimension = Literal["requests", "tokens"]


@dataclass(frozen=True)
class Bucket:
    """One limit: capacity and refill rate (per second)."""

    limit: int
    """The configured per-minute limit (what `*-limit` headers report)."""
    capacity: float
    rate: float


@dataclass(frozen=True)
class BucketLimits:
    """The two buckets of a RateLimits spec (None where unlimited)."""

    requests: Bucket | None
    tokens: Bucket | None

    @classmethod
    def of(cls, spec: RateLimits) -> BucketLimits:
        def bucket(per_minute: int | None) -> Bucket | None:
            if per_minute is None:
                return None
            return Bucket(limit=per_minute, capacity=per_minute * spec.burst_s / 60.0, rate=per_minute / 60.0)

        return cls(requests=bucket(spec.requests_per_minute), tokens=bucket(spec.tokens_per_minute))

    @property
    def ttl_s(self) -> float:
        """How long an idle bucket pair takes to fill up again (after that it can be forgotten)."""
        return max((b.capacity / b.rate for b in (self.requests, self.tokens) if b is not None), default=0.0)


@dataclass(frozen=True)
class BucketState:
    """Contents of a bucket pair at time `at` (seconds on the store's clock)."""

    requests: float
    tokens: float
    at: float


@dataclass(frozen=True)
class Verdict:
    """The outcome of one request against a bucket pair, with everything the headers report."""

    allowed: bool
    limited_by: Dimension | None
    """Which bucket rejected the request (the one with the longer wait)."""
    cost_tokens: int
    too_large: bool
    """The request needs more tokens than the bucket can ever hold (retrying cannot help)."""
    limit_requests: int | None
    limit_tokens: int | None
    remaining_requests: int | None
    remaining_tokens: int | None
    reset_requests_s: float | None
    reset_tokens_s: float | None
    retry_after_s: float
    """0 when allowed."""


def full(limits: BucketLimits, now: float) -> BucketState:
    """A fresh, full bucket pair."""
    return BucketState(
        requests=limits.requests.capacity if limits.requests else 0.0,
        tokens=limits.tokens.capacity if limits.tokens else 0.0,
        at=now,
    )


def refill(state: BucketState | None, limits: BucketLimits, now: float) -> BucketState:
    """The state at `now` (time never runs backwards: a clock behind `state.at` refills nothing)."""
    if state is None:
        return full(limits, now)
    elapsed = max(0.0, now - state.at)
    requests, tokens = state.requests, state.tokens
    if limits.requests is not None:
        requests = min(limits.requests.capacity, requests + limits.requests.rate * elapsed)
    if limits.tokens is not None:
        tokens = min(limits.tokens.capacity, tokens + limits.tokens.rate * elapsed)
    return BucketState(requests=requests, tokens=tokens, at=max(now, state.at))


def admit(current: BucketState, limits: BucketLimits, cost_tokens: int) -> tuple[BucketState, Verdict]:
    """Admit or reject a request against an already refilled state (no time passes)."""
    req, tok = limits.requests, limits.tokens
    short_requests = req is not None and current.requests < 1.0
    short_tokens = tok is not None and current.tokens < cost_tokens
    allowed = not (short_requests or short_tokens)
    after = current
    if allowed:
        after = BucketState(
            requests=current.requests - 1.0 if req is not None else current.requests,
            tokens=current.tokens - cost_tokens if tok is not None else current.tokens,
            at=current.at,
        )
    waits: dict[Dimension, float] = {}
    if req is not None and short_requests:
        waits["requests"] = (1.0 - current.requests) / req.rate
    too_large = tok is not None and cost_tokens > tok.capacity
    if tok is not None and short_tokens:
        need = min(float(cost_tokens), tok.capacity) if too_large else float(cost_tokens)
        waits["tokens"] = max(need - current.tokens, 0.0) / tok.rate
    limited_by: Dimension | None = None
    for dim, wait in waits.items():
        if limited_by is None or wait > waits[limited_by]:
            limited_by = dim
    verdict = Verdict(
        allowed=allowed,
        limited_by=limited_by,
        cost_tokens=cost_tokens,
        too_large=too_large,
        limit_requests=req.limit if req else None,
        limit_tokens=tok.limit if tok else None,
        remaining_requests=math.floor(after.requests) if req else None,
        remaining_tokens=max(0, math.floor(after.tokens)) if tok else None,
        reset_requests_s=(req.capacity - after.requests) / req.rate if req else None,
        reset_tokens_s=(tok.capacity - after.tokens) / tok.rate if tok else None,
        retry_after_s=max(waits.values()) if waits else 0.0,
    )
    return after, verdict


def observe(state: BucketState | None, limits: BucketLimits, now: float) -> tuple[BucketState, Verdict]:
    """What the headers report about a bucket pair at `now` without charging anything (for answers
    that never reached the model, e.g. an injected status fault)."""
    current = refill(state, limits, now)
    req, tok = limits.requests, limits.tokens
    verdict = Verdict(
        allowed=True,
        limited_by=None,
        cost_tokens=0,
        too_large=False,
        limit_requests=req.limit if req else None,
        limit_tokens=tok.limit if tok else None,
        remaining_requests=math.floor(current.requests) if req else None,
        remaining_tokens=max(0, math.floor(current.tokens)) if tok else None,
        reset_requests_s=(req.capacity - current.requests) / req.rate if req else None,
        reset_tokens_s=(tok.capacity - current.tokens) / tok.rate if tok else None,
        retry_after_s=0.0,
    )
    return current, verdict


def take(
    state: BucketState | None, limits: BucketLimits, cost_tokens: int, now: float
) -> tuple[BucketState, Verdict]:
    """Refill to `now`, then admit or reject a request costing one request and `cost_tokens` tokens."""
    return admit(refill(state, limits, now), limits, cost_tokens)


def go_duration(seconds: float) -> str:
    """A duration as Go prints it, at millisecond precision, like OpenAI's `x-ratelimit-reset-*`
    headers: `0s`, `6ms`, `1.5s`, `6m0s`, `1h2m3.4s`."""
    ms = max(0, math.ceil(seconds * 1000 - 1e-6))
    if ms == 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs = f"{rest // 1000}.{rest % 1000:03d}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{secs}"
    if minutes:
        return f"{minutes}m{secs}"
    return secs


def request_cost(request: GenerationRequest) -> int:
    """Tokens a request is charged: its input tokens plus the output it may produce (`max_tokens`,
    when the request sets it), as the providers estimate before generating."""
    return planner.prompt_tokens(request) + max(0, request.max_tokens or 0)


def bucket_key(spec: RateLimits, request: GenerationRequest) -> str:
    """Which bucket pair a request draws from: the provider plus the `keyBy` parts (API key
    fingerprint and/or model)."""
    parts = [request.provider]
    if "api_key" in spec.key_by:
        parts.append(f"key={request.api_key_id or '-'}")
    if "model" in spec.key_by:
        parts.append(f"model={request.model}")
    return "|".join(parts)
