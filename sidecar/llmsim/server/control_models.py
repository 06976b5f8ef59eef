"""Request and response bodies of the control API (`/v1/sessions`, `/v1/simulate`, `/v1/metrics`).

The OpenAPI document at `/openapi.json` is generated from these models.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import Field, field_validator

from llmsim.api.base import StrictModel
from llmsim.api.faults import FaultType
from llmsim.api.profile import SimulationProfileSpec
from llmsim.errors import ProfileError
from llmsim.headers import SESSION as SESSION_HEADER
from llmsim.profiles import resolve_extends
from llmsim.telemetry.sessions import SESSION_ID_PATTERN, LatencySummary

MAX_SIMULATE_COUNT = 10_000
REALTIME_MAX_WAIT_S = 120.0
"""`realtime` never holds an answer longer than this (a `timeout` fault would stall 10 minutes)."""


def _inline_profile(value: Any) -> Any:
    """Resolve `extends` of an inline profile before it is validated."""
    if isinstance(value, dict):
        try:
            return resolve_extends(value, "profile")
        except ProfileError as exc:
            raise ValueError("; ".join(exc.problems)) from None
    return value


class ErrorDetail(StrictModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorBody(StrictModel):
    """Every control-API error: the same shape as the OpenAI-style errors of the provider routes."""

    error: ErrorDetail


class CreateSession(StrictModel):
    """`POST /v1/sessions`."""

    id: str | None = Field(default=None, pattern=SESSION_ID_PATTERN)
    """The session id to use (default: a random `ses_...` id)."""
    profile: str | SimulationProfileSpec | None = None
    """A profile name (as for `x-llmsim-profile`) or an inline profile spec. Requests that carry
    `x-llmsim-session` and no `x-llmsim-profile` are answered with it. Unset: requests use
    whatever profile they select."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Free-form labels, echoed in the session's metrics and events."""

    @field_validator("profile", mode="before")
    @classmethod
    def _extends(cls, value: Any) -> Any:
        return _inline_profile(value)


class SessionCreated(StrictModel):
    session_id: str
    profile: str | None
    labels: dict[str, str]
    created_at: float
    """Unix time."""
    header: str = SESSION_HEADER
    """The request header that attributes a request to this session."""


class NeutralMessage(StrictModel):
    role: str = "user"
    content: str


class NeutralTool(StrictModel):
    name: str = Field(min_length=1)
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=dict)
    """The tool's JSON Schema."""


class NeutralRequest(StrictModel):
    """A provider-neutral generation request."""

    model: str = "gpt-4o-mini"
    operation: Literal["chat", "completion", "responses", "embeddings"] = "chat"
    provider: str = "openai"
    """Only informs content choices and the reported provider; no wire format is rendered."""
    messages: list[NeutralMessage] = Field(default_factory=lambda: [NeutralMessage(content="Hello")])
    input: list[str] = Field(default_factory=list, max_length=2048)
    """Texts to embed (operation `embeddings`)."""
    max_tokens: int | None = Field(default=None, ge=1)
    stop: list[str] = Field(default_factory=list)
    n: int = Field(default=1, ge=1, le=16)
    stream: bool = True
    tools: list[NeutralTool] = Field(default_factory=list)
    tool_choice: Literal["auto", "none", "required"] | str = "auto"
    """`auto`, `none`, `required`, or a tool name (that tool must be called)."""
    dimensions: int | None = Field(default=None, ge=1, le=8192)


class Simulate(StrictModel):
    """`POST /v1/simulate`: simulate `count` responses to one request without any wire format."""

    request: NeutralRequest = Field(default_factory=NeutralRequest)
    profile: str | SimulationProfileSpec | None = None
    """Profile name or inline spec (default: the server's default profile)."""
    overrides: dict[str, Any] = Field(default_factory=dict)
    """Partial profile (camelCase, as in files) deep-merged over the profile, e.g.
    `{"latency": {"ttftMs": {"type": "constant", "value": 50}}}`."""
    count: int = Field(default=1, ge=1, le=MAX_SIMULATE_COUNT)
    """How many independent responses to simulate."""
    seed: int | None = Field(default=None, ge=0)
    """Seed of the simulation (default: the profile's seed, else random); echoed in the answer."""
    realtime: bool = False
    """Wait until the longest simulated response would have finished (at most 120 s) before
    answering; false answers at once."""
    fault: FaultType | None = None
    """Force this fault on every response (as `x-llmsim-fault` does); `none` forces clean answers.
    Otherwise the profile's windows, `failFirst` (every result counts as a first attempt) and
    `rates` decide, independently per result."""
    elapsed_s: float = Field(default=0.0, ge=0)
    """Seconds since profile activation, for relative fault windows."""
    at: dt.datetime | None = None
    """Wall-clock time (RFC 3339) at which windows with `startAt` or `cron` are evaluated; default: now."""
    active_streams: int = Field(default=1, ge=1, le=1_000_000)
    """Concurrent streams to assume for the capacity model."""
    include_content: bool = True
    """Include reply texts and tool calls (turn off for large `count`)."""

    @field_validator("profile", mode="before")
    @classmethod
    def _extends(cls, value: Any) -> Any:
        return _inline_profile(value)


class SimToolCall(StrictModel):
    id: str
    name: str
    arguments: dict[str, Any]


class SimChoice(StrictModel):
    index: int
    finish_reason: str
    output_tokens: int
    text: str | None = None
    tool_calls: list[SimToolCall] | None = None


class SimFault(StrictModel):
    type: str
    reason: str
    after_tokens: int
    status_fault: bool
    """True when the fault replaces the whole answer with an error status (no tokens are sent)."""


class SimTiming(StrictModel):
    """Simulated timing in seconds from admission."""

    queue_s: float
    ttft_s: float | None
    """None when no token would be sent (status faults, embeddings)."""
    e2e_s: float = Field(alias="e2eS")
    itl_s: list[float]
    """Gaps between consecutive tokens (as many as tokens minus one, after stream faults cut)."""


class SimUsage(StrictModel):
    input_tokens: int
    output_tokens: int
    total_tokens: int


class SimResult(StrictModel):
    index: int
    response_id: str
    model: str
    choices: list[SimChoice]
    usage: SimUsage
    fault: SimFault | None
    timing: SimTiming


class SimSummary(StrictModel):
    ttft_s: LatencySummary
    itl_s: LatencySummary
    e2e_s: LatencySummary = Field(alias="e2eS")
    output_tokens: LatencySummary
    faults: dict[str, int]


class SimulateResult(StrictModel):
    profile: str
    seed: int
    count: int
    realtime: bool
    results: list[SimResult]
    summary: SimSummary
