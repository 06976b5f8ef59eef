"""The LoadScenario spec: exactly what `llmsim load --scenario FILE` reads and what the LoadScenario
custom resource's `spec` contains (the operator adds scheduling on top)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from llmsim.api import urls
from llmsim.api.base import StrictModel
from llmsim.api.distributions import Constant, Distribution, LogNormal


class TargetProvider(StrEnum):
    """Wire format the load generator speaks to the target."""

    OPENAI = "openai"
    AZURE = "azure"
    ANTHROPIC = "anthropic"
    GEMINI = "gemini"
    OLLAMA = "ollama"


class ApiKeySource(StrictModel):
    """Where the API key comes from. Keys are never written into reports or logs."""

    env: str | None = Field(default=None, min_length=1)
    """Name of an environment variable holding the key."""
    file: str | None = Field(default=None, min_length=1)
    """Path of a file holding the key (surrounding whitespace is stripped), e.g. a mounted Secret."""

    @model_validator(mode="after")
    def _one_source(self) -> ApiKeySource:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of env or file")
        return self


class Target(StrictModel):
    """The endpoint under load."""

    url: str = Field(default="http://127.0.0.1:8080", min_length=1, pattern=r"^https?://")
    """Base URL of the provider (scheme, host, port; no API path), e.g. `http://127.0.0.1:8080`."""
    provider: TargetProvider = TargetProvider.OPENAI
    """Wire format: `openai`, `azure`, `anthropic`, `gemini` or `ollama`."""
    model: str = Field(default="gpt-4o-mini", min_length=1)
    """Model name (for Azure: the deployment name)."""
    api_version: str = Field(default="2024-10-21", min_length=1)
    """Azure `api-version` query parameter (Azure only)."""
    gemini_api_version: Literal["v1", "v1beta"] = "v1beta"
    """Gemini API path version (Gemini only)."""
    api_key: ApiKeySource | None = None
    """Where to read the API key; unset sends a placeholder key (fine for `llmsim serve`)."""
    headers: dict[str, str] = Field(default_factory=dict)
    """Extra request headers, e.g. `x-llmsim-profile: fixed-latency` (never credentials: use apiKey)."""

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return urls.check(value, urls.HTTP_SCHEMES)


class Steady(StrictModel):
    """A constant rate."""

    type: Literal["steady"] = "steady"
    rps: float = Field(ge=0)
    """Requests per second."""


class RampUp(StrictModel):
    """A linear ramp from `startRps` to `endRps` over `rampDurationS`, then `endRps`."""

    type: Literal["ramp_up"] = "ramp_up"
    start_rps: float = Field(default=0.0, ge=0)
    """Rate at the start."""
    end_rps: float = Field(ge=0)
    """Rate at the end of the ramp."""
    ramp_duration_s: float | None = Field(default=None, gt=0)
    """Length of the ramp in seconds (unset: the whole run)."""


class Spike(StrictModel):
    """A base rate with one rectangular spike of `peakRps` starting at `atS` for `widthS` seconds."""

    type: Literal["spike"] = "spike"
    base_rps: float = Field(ge=0)
    """Rate outside the spike."""
    peak_rps: float = Field(ge=0)
    """Rate during the spike."""
    at_s: float = Field(ge=0)
    """Start of the spike, seconds after the run starts."""
    width_s: float = Field(gt=0)
    """Length of the spike in seconds."""


class Wave(StrictModel):
    """A sinusoid: mean + amplitude * sin(2π t / period)."""

    type: Literal["wave"] = "wave"
    mean_rps: float = Field(ge=0)
    """Mean rate."""
    amplitude_rps: float = Field(ge=0)
    """Amplitude (the rate never goes below 0)."""
    period_s: float = Field(gt=0)
    """Period in seconds."""


class Stage(StrictModel):
    """One stage of a step pattern."""

    duration_s: float = Field(gt=0)
    """Length of the stage in seconds."""
    rps: float = Field(ge=0)
    """Rate during the stage."""


class Step(StrictModel):
    """Consecutive stages of constant rate; the last stage's rate holds until the run ends."""

    type: Literal["step"] = "step"
    stages: list[Stage] = Field(min_length=1)
    """The stages, in order."""


DEFAULT_DIURNAL_SHAPE = (
    0.30, 0.22, 0.18, 0.15, 0.15, 0.20, 0.32, 0.50, 0.72, 0.88, 0.96, 1.00,
    0.98, 0.95, 0.93, 0.92, 0.90, 0.88, 0.80, 0.70, 0.62, 0.55, 0.45, 0.36,
)  # fmt: skip
"""Relative traffic per hour of a day (00:00 .. 23:00) of a typical business-facing service."""


class Diurnal(StrictModel):
    """A 24-hour traffic shape compressed into the run (or into `dayS` seconds, repeating)."""

    type: Literal["diurnal"] = "diurnal"
    peak_rps: float = Field(ge=0)
    """Rate at the busiest hour (shape value 1)."""
    trough_rps: float = Field(default=0.0, ge=0)
    """Rate at shape value 0 (the rate is trough + (peak - trough) * shape)."""
    shape: list[float] = Field(
        default_factory=lambda: list(DEFAULT_DIURNAL_SHAPE), min_length=24, max_length=24
    )
    """24 hourly values in [0, 1]; linearly interpolated between hours."""
    day_s: float | None = Field(default=None, gt=0)
    """Seconds one simulated day lasts (unset: the whole run)."""

    @model_validator(mode="after")
    def _shape_in_range(self) -> Diurnal:
        for i, value in enumerate(self.shape):
            if not 0 <= value <= 1:
                raise ValueError(f"shape[{i}]: {value} is outside [0, 1]")
        return self


class Chaos(StrictModel):
    """Random bursts and lulls: the rate jumps between segments of random length (seeded)."""

    type: Literal["chaos"] = "chaos"
    mean_rps: float = Field(ge=0)
    """Typical rate between bursts and lulls."""
    burst_factor: float = Field(default=4.0, ge=1)
    """A burst multiplies the mean rate by this."""
    lull_factor: float = Field(default=0.1, ge=0, le=1)
    """A lull multiplies the mean rate by this."""
    burst_share: float = Field(default=0.2, ge=0, le=1)
    """Share of segments that are bursts."""
    lull_share: float = Field(default=0.2, ge=0, le=1)
    """Share of segments that are lulls."""
    mean_segment_s: float = Field(default=2.0, gt=0)
    """Mean segment length in seconds (exponentially distributed)."""

    @model_validator(mode="after")
    def _shares(self) -> Chaos:
        if self.burst_share + self.lull_share > 1:
            raise ValueError("burstShare + lullShare must not exceed 1")
        return self


class ClosedLoop(StrictModel):
    """`users` virtual users, each sending its next request when its previous one has finished
    (after an optional think time): the load follows the target's speed instead of a rate curve."""

    type: Literal["closed_loop"] = "closed_loop"
    users: int = Field(ge=1, le=100_000)
    """Concurrent users (each has at most one request in flight)."""
    think_time_s: Distribution | None = None
    """Pause between a user's answer and its next request, in seconds (unset: none)."""
    ramp_up_s: float | None = Field(default=None, gt=0)
    """Users start evenly spread over this many seconds (unset: all at once)."""
    iterations: int | None = Field(default=None, ge=1)
    """Requests in all (every user together); unset: users keep going until `durationS`."""


class WorkflowRun(StrictModel):
    """Multi-turn conversations from `workflows`, `parallelWorkflows` at once: each slot starts its
    next conversation when the previous one has ended (a closed loop over conversations)."""

    type: Literal["workflow"] = "workflow"
    workflow_id: str | None = Field(default=None, min_length=1)
    """Which workflow (`workflows[].id`) to run; unset: all of them, chosen by weight."""
    parallel_workflows: int = Field(default=1, ge=1, le=100_000)
    """Conversations in flight at once."""
    iterations: int | None = Field(default=None, ge=1)
    """Conversations in all; unset: slots keep starting new ones until `durationS`."""
    think_time_s: Distribution | None = None
    """Pause between an answer and the next user turn, in seconds (unset: none)."""
    ramp_up_s: float | None = Field(default=None, gt=0)
    """Slots start evenly spread over this many seconds (unset: all at once)."""


OpenLoopPattern = Steady | RampUp | Spike | Wave | Step | Diurnal | Chaos
"""Patterns that are rate curves (arrivals follow the curve whatever the target does)."""

Pattern = Annotated[
    Steady | RampUp | Spike | Wave | Step | Diurnal | Chaos | ClosedLoop | WorkflowRun,
    Field(discriminator="type"),
]
"""The load pattern, chosen by `type`: a rate curve (open loop), `closed_loop` users or `workflow` runs."""


TOOL_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$"
"""Function names every provider accepts."""


class WorkflowTool(StrictModel):
    """A tool the conversation offers the model, with the scripted result the workflow answers its
    calls with (a real agent would run the tool here)."""

    name: str = Field(pattern=TOOL_NAME_PATTERN)
    """The function name (a profile's `content.rules[].toolCall.name` can script calls to it)."""
    description: str = ""
    """What the tool does (sent to the model)."""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    """JSON Schema of the arguments."""
    result: dict[str, Any] = Field(default_factory=lambda: {"ok": True})
    """The tool result sent back to the model for every call."""


class Turn(StrictModel):
    """One user turn of a conversation; the answer (and any tool round trips) follows it."""

    user: str = Field(min_length=1)
    """The user message."""
    tools: list[str] = Field(default_factory=list)
    """Names of `tools` offered in this turn."""
    tool_choice: Literal["auto", "required"] = "auto"
    """`required` forces a tool call in the turn's first request; requests that carry tool results
    always use `auto`, so the model can answer."""


class Workflow(StrictModel):
    """A conversation: the turns in order, each sent with the whole history so far (every earlier
    user message, reply, tool call and tool result), as a chat application or an agent does."""

    id: str = Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$")
    """The workflow's name in the report (the spec's `workflowId`)."""
    weight: float = Field(default=1.0, gt=0)
    """Relative frequency when several workflows run."""
    system: str | None = None
    """An optional system message."""
    turns: list[Turn] = Field(min_length=1, max_length=200)
    """The user turns, in order."""
    tools: list[WorkflowTool] = Field(default_factory=list)
    """Tools the turns may offer."""
    max_tool_rounds: int = Field(default=4, ge=1, le=50)
    """Tool results a turn may send back before the turn fails as `tool_loop` (a model that
    keeps calling tools)."""

    @model_validator(mode="after")
    def _known_tools(self) -> Workflow:
        names = [t.name for t in self.tools]
        if len(set(names)) != len(names):
            raise ValueError("tools: names must be unique")
        for i, turn in enumerate(self.turns):
            for name in turn.tools:
                if name not in names:
                    raise ValueError(f"turns[{i}].tools: {name!r} is not one of tools[].name")
            if turn.tool_choice == "required" and not turn.tools:
                raise ValueError(f"turns[{i}].toolChoice: required needs tools")
        return self


class ModelShare(StrictModel):
    """A model name and its share of the requests."""

    name: str = Field(min_length=1)
    """Model name (for Azure: the deployment)."""
    weight: float = Field(default=1.0, gt=0)
    """Relative frequency."""


class PromptTemplate(StrictModel):
    """A prompt text with a relative weight."""

    text: str = Field(min_length=1)
    """The user message."""
    weight: float = Field(default=1.0, gt=0)
    """Relative frequency among the templates."""


class RequestMix(StrictModel):
    """What each request asks for."""

    prompt_tokens: Distribution = Field(
        default_factory=lambda: LogNormal(median=200, sigma=0.5, min=8, max=4000)
    )
    """Length of synthetic prompts in tokens (used when neither templates nor promptsFile are given)."""
    max_tokens: Distribution = Field(default_factory=lambda: Constant(value=256))
    """`max_tokens` sent with each request (rounded, at least 1)."""
    streaming_share: float = Field(default=1.0, ge=0, le=1)
    """Share of requests that stream (TTFT and ITL are measured on streamed requests only)."""
    tool_call_share: float = Field(default=0.0, ge=0, le=1)
    """Share of requests that offer a tool and force a call to it."""
    templates: list[PromptTemplate] = Field(default_factory=list)
    """Weighted prompt texts (instead of synthetic prompts)."""
    prompts_file: str | None = Field(default=None, min_length=1)
    """JSONL file of real prompts, one `{"prompt": "..."}` per line (instead of synthetic prompts)."""
    system: str | None = None
    """An optional system message sent with every request."""
    models: list[ModelShare] = Field(default_factory=list)
    """Several models at the one target, by weight (unset: `target.model`); the report breaks
    latencies, errors and cost down per model."""

    @model_validator(mode="after")
    def _one_prompt_source(self) -> RequestMix:
        if self.templates and self.prompts_file:
            raise ValueError("give templates or promptsFile, not both")
        return self


SloMetric = Literal["ttft_ms", "itl_ms", "e2e_ms", "tpot_ms", "error_rate"]


class Slo(StrictModel):
    """One objective: `metric` (at `percentile`, for latencies) must stay below `threshold`."""

    metric: SloMetric
    """`ttft_ms`, `itl_ms`, `e2e_ms`, `tpot_ms` (milliseconds) or `error_rate` (a fraction 0..1)."""
    percentile: float | None = Field(default=None, gt=0, lt=100)
    """Percentile of a latency metric, e.g. 95 (required for latencies, not allowed for error_rate)."""
    threshold: float = Field(ge=0)
    """The metric must be strictly below this (milliseconds, or a fraction for error_rate)."""
    from_intended_send: bool = False
    """Measure latencies from the intended send time (includes schedule lag: coordinated omission)."""

    @model_validator(mode="after")
    def _percentile_matches_metric(self) -> Slo:
        if self.metric == "error_rate" and self.percentile is not None:
            raise ValueError("percentile: not allowed for error_rate")
        if self.metric != "error_rate" and self.percentile is None:
            raise ValueError(f"percentile: required for {self.metric}, e.g. 95")
        return self

    def label(self) -> str:
        """A short human name, e.g. `ttft_ms p95 < 200`."""
        pct = f" p{self.percentile:g}" if self.percentile is not None else ""
        return f"{self.metric}{pct} < {self.threshold:g}"


class ModelPrice(StrictModel):
    """Price of a model in US dollars per million tokens."""

    model: str = Field(min_length=1)
    """Model name or glob pattern (first match wins; entries here come before the built-in table)."""
    input_per_million_usd: float = Field(ge=0)
    """Price of one million input (prompt) tokens."""
    output_per_million_usd: float = Field(ge=0)
    """Price of one million output (completion) tokens."""


class LoadScenarioSpec(StrictModel):
    """A load test: a target, an arrival pattern, a request mix and the SLOs to judge it by."""

    target: Target = Field(default_factory=Target)
    """The endpoint under load."""
    duration_s: float = Field(default=60.0, gt=0, le=7 * 24 * 3600)
    """Length of the run in seconds."""
    pattern: Pattern = Field(default_factory=lambda: Steady(rps=5))
    """The load: an arrival-rate curve, `closed_loop` users or `workflow` conversations."""
    arrival: Literal["poisson", "constant"] = "poisson"
    """Arrivals at the instantaneous rate of a rate curve: `poisson` (random, like real users) or
    `constant` spacing (closed-loop patterns have no arrivals of their own)."""
    requests: RequestMix = Field(default_factory=RequestMix)
    """What each request asks for."""
    max_concurrency: int = Field(default=512, ge=1, le=100_000)
    """Requests in flight at once per worker; beyond it requests wait, and that wait shows up as
    schedule lag and in the latencies measured from the intended send time."""
    request_timeout_s: float = Field(default=60.0, gt=0)
    """Whole-request timeout; a request that takes longer counts as a `timeout` error."""
    window_s: float | None = Field(default=None, gt=0)
    """Length of the report's time windows (unset: about 1/30 of the run, at least 1 s)."""
    slos: list[Slo] = Field(default_factory=list)
    """Objectives judged over the whole run and per window."""
    seed: int = Field(default=0, ge=0)
    """Seed of the arrival schedule and the request mix (same seed: same schedule)."""
    parallelism: int = Field(default=1, ge=1, le=1000)
    """Number of workers sharing the schedule (the operator runs them as an indexed Job)."""
    pricing: list[ModelPrice] = Field(default_factory=list)
    """Prices that override the built-in table for the cost estimate."""
    workflows: list[Workflow] = Field(default_factory=list)
    """Conversations a `workflow` pattern runs."""

    @model_validator(mode="after")
    def _workflows_match_the_pattern(self) -> LoadScenarioSpec:
        ids = [w.id for w in self.workflows]
        if len(set(ids)) != len(ids):
            raise ValueError("workflows: ids must be unique")
        if isinstance(self.pattern, WorkflowRun):
            if not self.workflows:
                raise ValueError("workflows: a workflow pattern needs at least one workflow")
            if self.pattern.workflow_id is not None and self.pattern.workflow_id not in ids:
                raise ValueError(
                    f"pattern.workflowId: {self.pattern.workflow_id!r} is not one of workflows[].id"
                )
        elif self.workflows:
            raise ValueError("workflows: only a pattern of type workflow runs them")
        return self
