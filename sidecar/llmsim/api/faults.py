"""Fault configuration: what goes wrong, how often, and when."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Literal

from pydantic import Field, field_validator, model_validator

from llmsim.api.base import StrictModel


class FaultType(StrEnum):
    """The faults llmsim can inject; each provider renders them in its own wire format."""

    RATE_LIMIT = "rate_limit"
    """HTTP 429, rate-limit flavour (retryable, with retry-after)."""
    QUOTA = "quota"
    """HTTP 429 (Anthropic 429 spend limit, Gemini RESOURCE_EXHAUSTED): quota exhausted, not worth retrying."""
    OVERLOADED = "overloaded"
    """Anthropic 529, OpenAI/Gemini 503, Ollama 503."""
    SERVER_ERROR = "server_error"
    """HTTP 500."""
    TIMEOUT = "timeout"
    """No response until the client gives up (bounded server-side by `faults.params.timeoutS`)."""
    CONTEXT_LENGTH = "context_length"
    """HTTP 400 with the provider's context-length message."""
    DISCONNECT = "disconnect"
    """The stream (or response) is cut after k tokens, without a terminator."""
    SLOW_STREAM = "slow_stream"
    """Inter-token latency inflated by `faults.params.slowStreamFactor`."""
    MALFORMED_CHUNK = "malformed_chunk"
    """A broken stream frame after k tokens (for client hardening tests)."""
    MIDSTREAM_ERROR = "midstream_error"
    """The provider's in-stream error event after k tokens."""
    AUTHENTICATION = "authentication"
    """HTTP 401 in the provider's shape (invalid or missing API key)."""
    PERMISSION = "permission"
    """HTTP 403 in the provider's shape (the key may not use this model or API)."""
    CONTENT_FILTER = "content_filter"
    """The provider's output safety system stops the answer after k tokens: Azure/OpenAI
    `finish_reason: content_filter` (Azure with `content_filter_results`), Gemini
    `finishReason: SAFETY` with `safetyRatings`, Anthropic `stop_reason: refusal`."""
    REFUSAL = "refusal"
    """The model declines: OpenAI/Azure fill `message.refusal` (content null), Anthropic stops with
    `stop_reason: refusal`, Gemini and Ollama answer with a refusal text."""
    PROMPT_FILTER = "prompt_filter"
    """The prompt is rejected by the provider's input filter: Azure HTTP 400 `code: content_filter`
    with `innererror`, OpenAI HTTP 400 `invalid_prompt`, Anthropic HTTP 400, Gemini HTTP 200 with
    `promptFeedback.blockReason: SAFETY` and no candidates, Ollama HTTP 400."""
    NONE = "none"
    """No fault (useful to force a clean answer with `x-llmsim-fault: none`)."""


class FaultWindow(StrictModel):
    """A time window in which a fault hits a share of requests, e.g. for failover drills.

    Time is measured from when the profile became active in the serving process.
    """

    fault: FaultType
    """Which fault to inject inside the window."""
    start_s: float = Field(default=0, ge=0)
    """Seconds after activation at which the window opens."""
    duration_s: float = Field(gt=0)
    """How long the window stays open, in seconds."""
    every_s: float | None = Field(default=None, gt=0)
    """Repeat period in seconds (the window reopens every `everyS`); unset means one-shot."""
    probability: float = Field(default=1.0, ge=0, le=1)
    """Share of requests inside the window that get the fault."""

    @model_validator(mode="after")
    def _period_fits(self) -> FaultWindow:
        if self.every_s is not None and self.every_s < self.duration_s:
            raise ValueError(f"everyS ({self.every_s}) must be >= durationS ({self.duration_s})")
        if self.fault is FaultType.NONE:
            raise ValueError("fault 'none' makes no sense in a window")
        return self


class FailFirst(StrictModel):
    """Fail the first N attempts of each conversation (or request id), then succeed: retry-path tests."""

    attempts: int = Field(ge=1, le=100)
    """How many attempts fail before one succeeds."""
    fault: FaultType = FaultType.SERVER_ERROR
    """The fault those attempts get."""
    key: Literal["conversation", "request_id"] = "conversation"
    """What identifies 'the same request': a hash of the conversation (messages, model) or the
    client's request id header (`x-request-id` / `idempotency-key` / `x-llmsim-request-id`)."""


BucketKeyPart = Literal["api_key", "model"]


class RateLimits(StrictModel):
    """Stateful token-bucket rate limits, like the real providers' per-key limits."""

    requests_per_minute: int | None = Field(default=None, ge=1)
    """Requests per minute per bucket (unset: unlimited)."""
    tokens_per_minute: int | None = Field(default=None, ge=1)
    """Input + max output tokens per minute per bucket (unset: unlimited)."""
    key_by: list[BucketKeyPart] = Field(default_factory=lambda: list[BucketKeyPart](["api_key", "model"]))
    """What a bucket is keyed by."""
    scope: Literal["pod", "shared"] = "pod"
    """`pod`: each process keeps its own buckets. `shared`: all replicas draw from one bucket in Redis."""
    redis_url: str | None = None
    """Redis URL for `scope: shared` (default: `$LLMSIM_REDIS_URL`, else redis://127.0.0.1:6379/0)."""
    burst_s: float = Field(default=60.0, gt=0, le=60)
    """How many seconds' worth of the per-minute limits a bucket holds (60: the whole minute can be
    used at once). Real providers enforce over shorter periods too ("60,000 RPM may be enforced as
    1,000 requests per second"): `burstS: 1` models that."""

    @model_validator(mode="after")
    def _something_limited(self) -> RateLimits:
        if self.requests_per_minute is None and self.tokens_per_minute is None:
            raise ValueError("set requestsPerMinute and/or tokensPerMinute (or drop rateLimits)")
        if self.requests_per_minute is not None and self.requests_per_minute * self.burst_s / 60 < 1:
            raise ValueError(
                f"burstS: {self.burst_s:g} s of {self.requests_per_minute} requests/minute holds less than "
                "one request; raise burstS or requestsPerMinute"
            )
        return self


class RateLimitHeaders(StrictModel):
    """The rate-limit headers sent while `rateLimits` is unset: the tier they report.

    Nothing is enforced: the numbers come from a bucket per API key and model that is debited like
    an enforced one (so `remaining` falls and refills) but never rejects. Unset figures take the
    provider's default tier (see docs/faults.md); Gemini and Ollama send no rate-limit headers.
    """

    enabled: bool = True
    """Send the headers (false: only an enforced `rateLimits` produces them)."""
    requests_per_minute: int | None = Field(default=None, ge=1)
    """Requests per minute reported (default: the provider's default tier)."""
    tokens_per_minute: int | None = Field(default=None, ge=1)
    """Tokens per minute reported by OpenAI/Azure (input + max output tokens; default: the tier's)."""
    input_tokens_per_minute: int | None = Field(default=None, ge=1)
    """Anthropic's input tokens per minute (default: the tier's)."""
    output_tokens_per_minute: int | None = Field(default=None, ge=1)
    """Anthropic's output tokens per minute, charged `max_tokens` up front (default: the tier's)."""


class RequiredKey(StrictModel):
    """Answer requests whose API key does not match with the provider's 401."""

    pattern: str = Field(min_length=1)
    """A regular expression the whole API key must match (e.g. `sk-test-.*`)."""

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"not a regular expression ({exc})") from None
        return pattern


class FaultParams(StrictModel):
    """Knobs of the individual fault types."""

    timeout_s: float = Field(default=600.0, gt=0, le=3600)
    """How long a `timeout` fault stalls before the server closes the connection itself."""
    slow_stream_factor: float = Field(default=5.0, ge=1)
    """ITL multiplier of `slow_stream`."""
    after_tokens: int = Field(default=5, ge=0)
    """Tokens sent before `disconnect`, `malformed_chunk` or `midstream_error` strike."""
    retry_after_s: float = Field(default=1.0, ge=0, le=120)
    """`retry-after` sent with `rate_limit` and `overloaded` (kept small: Anthropic's SDK has no cap)."""


class FaultSpec(StrictModel):
    """What goes wrong and how often."""

    rates: dict[FaultType, float] = Field(default_factory=dict)
    """Probability per request of each fault type (independent of windows); the sum must be <= 1."""
    windows: list[FaultWindow] = Field(default_factory=list)
    """Time windows with their own fault (evaluated before `rates`)."""
    fail_first: FailFirst | None = None
    """Fail the first N attempts of each conversation, then succeed."""
    rate_limits: RateLimits | None = None
    """Stateful per-key rate limits answered with truthful headers."""
    rate_limit_headers: RateLimitHeaders = Field(default_factory=RateLimitHeaders)
    """The tier the rate-limit headers report while `rateLimits` is unset."""
    require_key: RequiredKey | None = None
    """Only API keys matching a pattern are accepted; others (and none) get the provider's 401."""
    params: FaultParams = Field(default_factory=FaultParams)
    """Parameters of the individual fault types."""

    @model_validator(mode="after")
    def _rates_sum(self) -> FaultSpec:
        for fault, p in self.rates.items():
            if not 0 <= p <= 1:
                raise ValueError(f"rates.{fault.value}: probability {p} must be between 0 and 1")
        total = sum(self.rates.values())
        if total > 1 + 1e-9:
            raise ValueError(f"rates: probabilities sum to {total:g}, which is more than 1")
        if FaultType.NONE in self.rates:
            raise ValueError("rates.none: 'none' is not a fault; leave it out")
        return self
