"""The SimulationProfile spec: exactly what `llmsim serve --profile FILE`, the sidecar and the
SimulationProfile custom resource's `spec` contain."""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from llmsim.api.base import StrictModel
from llmsim.api.distributions import Constant, Distribution, LogNormal
from llmsim.api.faults import FaultSpec


class Mode(StrEnum):
    """How the sidecar treats intercepted traffic."""

    SIMULATE = "simulate"
    """Answer every request itself; nothing goes upstream."""
    PERTURB = "perturb"
    """Forward to the real provider and inject latency and faults on the way."""
    PASSTHROUGH = "passthrough"
    """Forward untouched, but measure."""


class Provider(StrEnum):
    """Wire formats llmsim speaks."""

    ANY = "any"
    OPENAI = "openai"
    AZURE = "azure"
    ANTHROPIC = "anthropic"
    GEMINI = "gemini"
    OLLAMA = "ollama"


class Capacity(StrictModel):
    """Load-dependent latency: a server with `maxConcurrency` decode slots.

    With n streams active, utilisation u = n / maxConcurrency. TTFT and ITL are multiplied by
    1 + (slowdown - 1) * u**exponent, reaching `ttftSlowdown` / `itlSlowdown` at full load.
    Requests beyond `maxConcurrency` wait in a FIFO queue (the wait adds to their TTFT); a request
    that finds `maxQueue` others waiting is rejected with the `overloaded` fault.
    """

    max_concurrency: int = Field(ge=1, le=1_000_000)
    """Streams served at once; more wait in the queue."""
    ttft_slowdown: float = Field(default=2.0, ge=1)
    """TTFT multiplier when all slots are busy."""
    itl_slowdown: float = Field(default=1.5, ge=1)
    """ITL multiplier when all slots are busy."""
    exponent: float = Field(default=2.0, gt=0, le=10)
    """Shape of the slowdown curve (1: linear; 2: gentle at first, steep near the knee)."""
    max_queue: int | None = Field(default=None, ge=0)
    """Queue length beyond which requests are rejected as overloaded (unset: unbounded)."""


class Latency(StrictModel):
    """Timing of a simulated response.

    TTFT = ttftMs sample + ttftPerInputTokenMs * input tokens (then the capacity multiplier).
    Gaps between output tokens come from `itlMs`, or from `tokensPerSecond` when that is set.
    """

    ttft_ms: Distribution = Field(default_factory=lambda: LogNormal(median=300, sigma=0.3))
    """Time to first token for a small prompt, in milliseconds."""
    itl_ms: Distribution = Field(default_factory=lambda: LogNormal(median=20, sigma=0.25))
    """Inter-token latency (gap between consecutive output tokens), in milliseconds."""
    tokens_per_second: Distribution | None = None
    """Alternative to `itlMs`: decode speed sampled once per response; ITL = 1000 / tokensPerSecond."""
    ttft_per_input_token_ms: float = Field(default=0.0, ge=0)
    """Prefill cost: extra TTFT per input token, in milliseconds. A usual rule of thumb is that
    ~100 input tokens cost about one output token's time, i.e. ITL/100."""
    output_tokens: Distribution = Field(
        default_factory=lambda: LogNormal(median=120, sigma=0.6, min=1, max=2048)
    )
    """How many tokens a reply has, before the request's max tokens cap it."""
    capacity: Capacity | None = None
    """Load-dependent latency and queueing (unset: infinite capacity)."""

    @model_validator(mode="after")
    def _speed_positive(self) -> Latency:
        tps = self.tokens_per_second
        if isinstance(tps, Constant) and tps.value <= 0:
            raise ValueError("tokensPerSecond: must be > 0")
        return self


class ToolCallReply(StrictModel):
    """A scripted tool call."""

    name: str = Field(min_length=1)
    """The function/tool name (must be one the request offers; otherwise the rule is skipped)."""
    arguments: dict[str, Any] = Field(default_factory=dict)
    """Arguments to send (an object)."""


class ContentRule(StrictModel):
    """If the last user message matches `match`, reply with `reply` text or `toolCall`."""

    match: str = Field(min_length=1)
    """A Python regular expression searched in the last user message (case-insensitive)."""
    reply: str | None = None
    """Reply text; `$1`..`$9` and `${name}` refer to capture groups."""
    tool_call: ToolCallReply | None = None
    """Reply with this tool call instead of text."""

    @field_validator("match")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _one_answer(self) -> ContentRule:
        if (self.reply is None) == (self.tool_call is None):
            raise ValueError("give exactly one of reply or toolCall")
        return self


class Content(StrictModel):
    """How reply text is generated."""

    mode: Literal["lorem", "echo", "fixed"] = "lorem"
    """`lorem`: deterministic pseudo-words; `echo`: the last user message; `fixed`: `text`."""
    text: str | None = None
    """The reply for `mode: fixed`."""
    rules: list[ContentRule] = Field(default_factory=list)
    """Scripted replies, tried in order before `mode` applies."""
    tool_calls: Literal["auto", "never"] = "auto"
    """`auto`: when the request offers tools and tool choice is required/named, reply with a call
    whose arguments satisfy the tool's JSON Schema (also for `auto` with probability `toolCallShare`)."""
    tool_call_share: float = Field(default=0.0, ge=0, le=1)
    """With tool choice `auto`, the share of replies that call a tool."""

    @model_validator(mode="after")
    def _fixed_has_text(self) -> Content:
        if self.mode == "fixed" and not self.text:
            raise ValueError("mode 'fixed' needs `text`")
        return self


class Models(StrictModel):
    """Which model names the profile answers for."""

    allow: list[str] = Field(default_factory=lambda: ["*"])
    """Glob patterns of accepted model names; `*` accepts any."""
    aliases: dict[str, str] = Field(default_factory=dict)
    """Requested name -> name reported back in responses."""
    strict: bool = False
    """Reject models outside `allow` with the provider's 404 (otherwise answer anyway)."""
    context_window: int = Field(default=128_000, ge=1)
    """Input tokens beyond this are rejected with `context_length` (like the real model)."""
    listed: list[str] = Field(
        default_factory=lambda: ["gpt-4o-mini", "gpt-4o", "claude-sonnet-4", "gemini-2.0-flash", "llama3.1"]
    )
    """Model names reported by the list-models routes."""


class MatchRule(StrictModel):
    """Narrows which intercepted requests are perturbed/simulated (all fields must match)."""

    hosts: list[str] = Field(default_factory=list)
    """Glob patterns of hosts (empty: any)."""
    paths: list[str] = Field(default_factory=list)
    """Glob patterns of paths (empty: any)."""
    models: list[str] = Field(default_factory=list)
    """Glob patterns of model names (empty: any)."""
    stream: bool | None = None
    """Only streaming (true) or only non-streaming (false) requests; unset: both."""


class PodSelector(StrictModel):
    """Which pods (by label) the operator injects this profile into (operator only)."""

    match_labels: dict[str, str] = Field(default_factory=dict)
    """Labels a pod must carry."""


class SimulationProfileSpec(StrictModel):
    """A simulation profile: latency, content, faults and the limits of live-traffic perturbation."""

    extends: list[str] = Field(default_factory=list)
    """Named presets merged in order beneath this spec (see `llmsim profile list`)."""
    provider: Provider = Provider.ANY
    """Which wire format(s) the profile answers; `any` serves every provider route."""
    mode: Mode = Mode.SIMULATE
    """Default handling of intercepted traffic (overridable per request with `x-simulation-mode`)."""
    seed: int | None = Field(default=None, ge=0)
    """Seed for every random decision; unset means a fresh random seed per process."""
    latency: Latency = Field(default_factory=Latency)
    """Timing of responses."""
    content: Content = Field(default_factory=Content)
    """What replies say."""
    models: Models = Field(default_factory=Models)
    """Model names and aliases."""
    faults: FaultSpec = Field(default_factory=FaultSpec)
    """Injected errors."""
    intercept_hosts: list[str] = Field(default_factory=list)
    """Extra provider hosts (`host` or `host:port`) the proxy intercepts, e.g. an in-cluster vLLM."""
    match: list[MatchRule] = Field(default_factory=list)
    """Only requests matching one of these rules are simulated/perturbed (empty: all)."""
    percentage: float = Field(default=100.0, ge=0, le=100)
    """Share of matching requests that are simulated/perturbed (seeded by request id)."""
    duration_s: float | None = Field(default=None, gt=0)
    """After this many seconds from activation the proxy passes everything through."""
    until: dt.datetime | None = None
    """Absolute expiry (RFC 3339); after it the proxy passes everything through."""
    paused: bool = False
    """Pass everything through while true (the operator's kill switch)."""
    selector: PodSelector | None = None
    """Pods the operator injects this profile into (in addition to the pod annotation)."""

    @field_validator("until")
    @classmethod
    def _aware(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("must carry a time zone, e.g. 2026-01-01T12:00:00Z")
        return value
