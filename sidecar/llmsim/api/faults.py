"""Fault configuration: what goes wrong, how often, and when."""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum
from typing import Literal

from pydantic import Field, field_validator, model_validator

from llmsim.api import cron, schedule, urls
from llmsim.api.base import StrictModel

CRON_PATTERN = r"^\S+\s+\S+\s+\S+\s+\S+\s+\S+$"
"""Five whitespace-separated cron fields (the models parse them fully)."""


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

    On the wall clock (`startAt` and/or `cron`) every replica opens and closes the window at the
    same instants, whenever it started. Without either, time counts from when the profile became
    active in the serving process (`llmsim serve`, a local `llmsim proxy`); the operator makes such
    windows absolute from the resource's creation, so its sidecars agree too. See docs/faults.md.
    """

    fault: FaultType
    """Which fault to inject inside the window."""
    start_s: float = Field(default=0, ge=0)
    """Seconds after activation (under the operator: after the resource's creation) at which the
    window opens. Not with `startAt` or `cron`."""
    start_at: dt.datetime | None = None
    """Absolute opening time (RFC 3339 with a time zone, e.g. 2026-03-02T14:00:00Z). With `cron`:
    no firing before it counts."""
    duration_s: float = Field(gt=0)
    """How long the window stays open, in seconds."""
    every_s: float | None = Field(default=None, gt=0)
    """Repeat period in seconds (the window reopens every `everyS`); unset means one-shot."""
    cron: str | None = Field(default=None, pattern=CRON_PATTERN)
    """Repeat on a cron schedule (`minute hour day-of-month month day-of-week`, in `timeZone`):
    each firing opens the window for `durationS`. Not with `everyS`."""
    time_zone: str | None = None
    """IANA time zone of `cron` (e.g. Europe/Berlin; default UTC). Only with `cron`."""
    probability: float = Field(default=1.0, ge=0, le=1)
    """Share of requests inside the window that get the fault."""

    @field_validator("start_at")
    @classmethod
    def _aware(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("must carry a time zone, e.g. 2026-03-02T14:00:00Z")
        return value

    @field_validator("cron")
    @classmethod
    def _parses(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                expression = cron.parse(value)
            except cron.CronError as exc:
                raise ValueError(str(exc)) from None
            if expression.next_after(CRON_REFERENCE) is None:
                raise ValueError(f"{value!r} matches no date: the window never opens")
        return value

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            schedule.zone(value)
        return value

    @model_validator(mode="after")
    def _period_fits(self) -> FaultWindow:
        if self.fault is FaultType.NONE:
            raise ValueError("fault 'none' makes no sense in a window")
        if self.every_s is not None and self.every_s < self.duration_s:
            raise ValueError(f"everyS ({self.every_s}) must be >= durationS ({self.duration_s})")
        if self.start_at is not None and self.start_s:
            raise ValueError("give startS (relative) or startAt (absolute), not both")
        if self.time_zone is not None and self.cron is None:
            raise ValueError("timeZone applies to cron only; startAt carries its own offset")
        if self.cron is not None:
            if self.every_s is not None:
                raise ValueError("give cron or everyS, not both")
            if self.start_s:
                raise ValueError("startS does not apply to cron (use startAt to delay the first firing)")
            gap = _shortest_gap_s(self.cron)
            if gap is not None and gap < self.duration_s:
                raise ValueError(
                    f"durationS ({self.duration_s:g} s) is longer than the shortest gap between the "
                    f"firings of cron {self.cron!r} ({gap:g} s): consecutive windows would overlap"
                )
        return self


CRON_REFERENCE = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
"""Where the time-independent checks of cron expressions start looking (any date would do: cron
repeats with the calendar)."""


def _shortest_gap_s(expression: str) -> float | None:
    """The shortest gap between consecutive UTC firings of `expression` over its first 2048
    firings (daylight-saving shifts are left out: windows they bring closer merge)."""
    previous: dt.datetime | None = None
    gap: float | None = None
    for i, firing in enumerate(cron.parse(expression).firings(CRON_REFERENCE)):
        if previous is not None:
            seconds = (firing - previous).total_seconds()
            gap = seconds if gap is None else min(gap, seconds)
        previous = firing
        if i >= 2048:
            break
    return gap


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

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        return None if value is None else urls.check(value, urls.REDIS_SCHEMES)

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
        self._windows_disjoint()
        return self

    def _windows_disjoint(self) -> None:
        """Two windows of the same fault may not be open at once: whether their probabilities add
        up would be anybody's guess. (Windows of different faults may overlap: they are tried in
        order, the first that strikes wins, as docs/faults.md says.)"""
        for j, later in enumerate(self.windows):
            for i, earlier in enumerate(self.windows[:j]):
                if earlier.fault is not later.fault:
                    continue
                if schedule.is_absolute(earlier) != schedule.is_absolute(later):
                    continue  # wall clock vs activation clock: not comparable in advance
                since = _overlap_start(earlier, later)
                found = schedule.overlap(earlier, later, since)
                if found is not None:
                    at = max(found[0].start, found[1].start)
                    when = _describe(at, schedule.is_absolute(later))
                    raise ValueError(
                        f"windows[{j}] overlaps windows[{i}], both {later.fault.value} (e.g. both open "
                        f"{when}): whether their probabilities add up is ambiguous; make them disjoint "
                        "or merge them into one window"
                    )


def _overlap_start(a: FaultWindow, b: FaultWindow) -> float:
    """Where comparing two windows starts: the later `startAt` (nothing opens before its own), the
    cron reference date, or activation."""
    if not schedule.is_absolute(a):
        return 0.0
    starts = [w.start_at.timestamp() for w in (a, b) if w.start_at is not None]
    return max(starts) if starts else CRON_REFERENCE.timestamp()


def _describe(t: float, absolute: bool) -> str:
    if absolute:
        return "at " + dt.datetime.fromtimestamp(t, dt.UTC).isoformat().replace("+00:00", "Z")
    return f"{t:g} s after activation"
