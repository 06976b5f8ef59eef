"""The SimulationProfile spec: exactly what `llmsim serve --profile FILE`, the sidecar and the
SimulationProfile custom resource's `spec` contain."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from llmsim import linear_regex
from llmsim.api import schedule
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
    """Arguments to send (an object). String values may quote the rule's capture groups (`$1`,
    `${name}`); a string that is exactly one `${name}` becomes the number, boolean or null the
    capture spells in JSON (so `{celsius: "${temp}"}` sends `{"celsius": 21}`)."""


def _check_regex(value: str | None) -> str | None:
    """Rule regexes run against every prompt: they must compile for the linear-time engine (RE2),
    so none can backtrack catastrophically (`^(a+)+$`, or `.*x` against a long prompt)."""
    if value is not None:
        problem = linear_regex.problem(value)
        if problem is not None:
            raise ValueError(problem)
    return value


class ToolResultMatch(StrictModel):
    """Which tool result a rule answers: the reply follows a round of tool results, one of which
    comes from tool `name` (any tool when unset) and contains `match`."""

    name: str | None = Field(default=None, min_length=1)
    """The tool whose result it is (resolved from the call the result answers)."""
    match: str | None = Field(default=None, min_length=1)
    """A regular expression (RE2 syntax, as `match` of the rule) searched in the result's content
    (case-insensitive); its
    groups are the rule's captures (they take precedence over those of the rule's `match`)."""

    @field_validator("match")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        return _check_regex(value)


class ContentRule(StrictModel):
    """A scripted reply: when the conversation is where the rule says, reply with `reply` text
    and/or tool calls.

    Rules are tried in order and the first that applies answers. A rule applies on model turn
    `turn` of the exchange that answers the latest user message (1: the first reply to it; 2:
    the reply after the first round of tool results; ...). Without `turn`, a rule with
    `toolResult` applies on any turn that answers matching tool results, and any other rule
    only on turn 1, so a rule that calls a tool answers the user's message once and the tool's
    result gets the default final answer (or the next rule) instead of the same call again.
    """

    match: str | None = Field(default=None, min_length=1)
    """A regular expression (RE2 syntax: Python's without back-references and look-arounds, so it
    matches in linear time) searched in the latest user message (case-insensitive)."""
    tool_result: ToolResultMatch | None = None
    """Apply only when the reply answers a tool result like this one."""
    turn: int | None = Field(default=None, ge=1, le=1000)
    """Apply only on this model turn of the exchange (see above)."""
    reply: str | None = None
    """Reply text (with tool calls: the text before them); `$1`..`$9` and `${name}` refer to
    capture groups."""
    tool_call: ToolCallReply | None = None
    """Reply with this tool call."""
    tool_calls: list[ToolCallReply] = Field(default_factory=list, max_length=16)
    """Reply with these tool calls at once (parallel calls; only the first when the request
    disallows parallel calls)."""

    @field_validator("match")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        return _check_regex(value)

    @model_validator(mode="after")
    def _condition_and_answer(self) -> ContentRule:
        if self.match is None and self.tool_result is None and self.turn is None:
            raise ValueError("give at least one of match, toolResult or turn")
        if self.tool_call is not None and self.tool_calls:
            raise ValueError("give toolCall or toolCalls, not both")
        if self.reply is None and self.tool_call is None and not self.tool_calls:
            raise ValueError("give reply, toolCall or toolCalls")
        return self

    @property
    def calls(self) -> list[ToolCallReply]:
        """The rule's tool calls (`toolCall` or `toolCalls`)."""
        return [self.tool_call] if self.tool_call is not None else list(self.tool_calls)


DEFAULT_TOOL_CALL_SHARE = 1.0
"""Default `content.toolCallShare`: see Content.tool_call_share."""


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
    whose arguments satisfy the tool's JSON Schema (with tool choice `auto`, at the shares
    below); `never`: only rules call tools."""
    tool_call_share: float = Field(default=DEFAULT_TOOL_CALL_SHARE, ge=0, le=1)
    """With tool choice `auto` (and on Ollama, which has none), the share of replies to a user
    message that call a tool. The default 1 makes a plain agent loop deterministic: the user's
    message gets a tool call, the tool's result a final answer (`toolFollowUpShare` 0), so the
    loop exercises its tool path once and ends. Lower it for a mix of direct answers."""
    tool_follow_up_share: float = Field(default=0.0, ge=0, lt=1)
    """With tool choice `auto`, the share of replies to tool results that call a tool again
    instead of answering. Each round is drawn anew, so a loop makes 1/(1 - share) tool rounds on
    average and ends with probability 1 (hence below 1)."""
    parallel_tool_call_share: float = Field(default=0.0, ge=0, le=1)
    """The share of sampled tool-calling replies that call several tools at once (when the
    request allows parallel calls)."""
    max_parallel_tool_calls: int = Field(default=3, ge=2, le=16)
    """Most calls in such a reply: 2 to this many, uniformly; tools are picked without
    repetition while there are enough of them."""

    @model_validator(mode="after")
    def _fixed_has_text(self) -> Content:
        if self.mode == "fixed" and not self.text:
            raise ValueError("mode 'fixed' needs `text`")
        return self


class Streaming(StrictModel):
    """How streamed replies are cut into chunks, per wire format, as the real APIs cut them.

    Every other format streams one token per chunk, as the real APIs do (OpenAI, Ollama) or
    nearly do (Anthropic's deltas hold a few tokens).
    """

    gemini_chunk_tokens: Distribution = Field(
        default_factory=lambda: LogNormal(median=16, sigma=0.5, min=1, max=64)
    )
    """Tokens per chunk of a Gemini stream (`streamGenerateContent`), drawn per chunk. Gemini
    sends text in chunks of a dozen tokens or more (recorded gemini-2.5 streams: 1 to 40, most
    12 to 25) and function calls whole, all in one chunk. A chunk is sent when its last token is
    due, so a client sees the bursts; `{type: constant, value: 1}` streams token by token."""

    def chunk_tokens(self, provider: str) -> Distribution | None:
        """The chunk-size distribution of a provider's streams (None: one token per chunk)."""
        return self.gemini_chunk_tokens if provider == "gemini" else None


class PromptCaching(StrictModel):
    """Prompt caching: repeated prompt prefixes are read from a cache, reported in usage
    (`cached_tokens`, `cache_read_input_tokens` / `cache_creation_input_tokens`,
    `cachedContentTokenCount`) and answered sooner.

    OpenAI, Azure and Gemini cache automatically (every `blockTokens` from `minPrefixTokens`
    on); Anthropic caches up to the blocks marked `cache_control`. With cached share c of the
    prompt, TTFT = ttftMs sample x (1 - ttftReduction x c) + ttftPerInputTokenMs x uncached
    tokens. The cache is bounded, expires idle entries and is seeded: see
    `llmsim/simulation/prompt_cache.py`.
    """

    enabled: bool = False
    """Simulate prompt caching (off: every prompt is computed anew, as without a cache)."""
    min_prefix_tokens: int = Field(default=1024, ge=1, le=1_000_000)
    """Shortest cacheable prefix (OpenAI and Anthropic's Sonnet/Opus models: 1,024 tokens)."""
    block_tokens: int = Field(default=128, ge=1, le=1_000_000)
    """Automatic caching extends a cached prefix in steps of this many tokens (OpenAI: 128)."""
    hit_rate: float = Field(default=1.0, ge=0, le=1)
    """Probability that a stored prefix is found (real caches are best-effort across servers)."""
    ttft_reduction: float = Field(default=0.8, ge=0, le=1)
    """TTFT saved for a fully cached prompt (OpenAI documents "up to 80%" lower latency)."""
    ttl_s: float = Field(default=300.0, gt=0, le=86_400)
    """Entries expire this long after their last use (OpenAI: 5-10 minutes; Anthropic: 5)."""
    max_entries: int = Field(default=100_000, ge=1, le=10_000_000)
    """Most prefixes kept per profile; the least recently used go first."""


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
    streaming: Streaming = Field(default_factory=Streaming)
    """How streamed replies are cut into chunks."""
    prompt_caching: PromptCaching = Field(default_factory=PromptCaching)
    """Cached prompt prefixes: usage fields and lower TTFT."""
    models: Models = Field(default_factory=Models)
    """Model names and aliases."""
    faults: FaultSpec = Field(default_factory=FaultSpec)
    """Injected errors."""
    intercept_hosts: list[str] = Field(default_factory=list)
    """Extra provider hosts (`host` or `host:port`) the proxy intercepts, e.g. an in-cluster vLLM."""
    allow_upstream_header: bool = False
    """base-url capture only: honour a request's `x-llmsim-upstream: https://host` (its host must be
    one the proxy intercepts: a provider's or `interceptHosts`). Off: the header is refused with
    the provider's 400, and the upstream is the provider's configured base URL."""
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

    @model_validator(mode="after")
    def _windows_can_fire(self) -> SimulationProfileSpec:
        """A window that opens only after the profile stopped applying never fires."""
        for index, window in enumerate(self.faults.windows):
            where = f"faults.windows[{index}]"
            if schedule.is_absolute(window):
                if self.until is None:
                    continue
                since = window.start_at.timestamp() if window.start_at is not None else None
                if since is None:
                    continue  # a cron without startAt: when it first fires depends on today
                first = schedule.first_after(window, since)
                if first is None or first.start >= self.until.timestamp():
                    opens = "never opens" if first is None else f"opens first at {_iso(first.start)}"
                    raise ValueError(
                        f"{where}: {opens}, at or after until ({_iso(self.until.timestamp())}): it never fires"
                    )
            elif self.duration_s is not None and window.start_s >= self.duration_s:
                raise ValueError(
                    f"{where}.startS: {window.start_s:g} s is not before durationS ({self.duration_s:g} s), "
                    "when the profile stops applying: the window never fires"
                )
        return self


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat().replace("+00:00", "Z")
