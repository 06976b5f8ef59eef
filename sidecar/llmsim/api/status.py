"""Typed `status` of the SimulationProfile and LoadScenario custom resources.

The operator writes these (never free-form dicts); the CRDs' status schemas are generated from them.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Literal

from pydantic import Field

from llmsim.api.base import StrictModel


class Condition(StrictModel):
    """One observation about the resource, in the usual Kubernetes shape."""

    type: str = Field(min_length=1)
    """What the condition is about, e.g. `Ready`, `Invalid`, `Complete`."""
    status: Literal["True", "False", "Unknown"]
    """Whether the condition holds."""
    reason: str = Field(min_length=1)
    """A CamelCase machine-readable reason for the last transition."""
    message: str = ""
    """Human-readable details; for invalid specs it names the offending field."""
    last_transition_time: dt.datetime | None = None
    """When `status` last changed."""
    observed_generation: int | None = Field(default=None, ge=0)
    """The `metadata.generation` this condition was computed from."""


class ProfilePhase(StrEnum):
    """Where a SimulationProfile stands."""

    PENDING = "Pending"
    """Not reconciled yet."""
    READY = "Ready"
    """Valid and rendered into its ConfigMap; sidecars can use it."""
    INVALID = "Invalid"
    """The spec does not validate; the previous ConfigMap (if any) is left as it was."""


class WindowStatus(StrictModel):
    """A fault window's current or next opening, on the wall clock."""

    index: int = Field(ge=0)
    """Its position in `spec.faults.windows`."""
    fault: str = Field(min_length=1)
    """The fault it injects."""
    starts_at: dt.datetime
    """When it opens (or opened, while `open`)."""
    ends_at: dt.datetime
    """When it closes."""
    open: bool = False
    """Whether it is open now."""


class SimulationProfileStatus(StrictModel):
    """Status of a SimulationProfile."""

    observed_generation: int | None = Field(default=None, ge=0)
    """The `metadata.generation` last reconciled."""
    phase: ProfilePhase = ProfilePhase.PENDING
    """Summary of the conditions."""
    conditions: list[Condition] = Field(default_factory=list)
    """`Ready` and `Invalid` conditions."""
    config_map: str | None = None
    """Name of the ConfigMap holding the rendered profile (mounted by the sidecars)."""
    pods: int = Field(default=0, ge=0)
    """Pods currently running this profile's sidecar."""
    pods_missing_sidecar: int = Field(default=0, ge=0)
    """Pods that ask for this profile but started without the sidecar (webhook was unavailable)."""
    expires_at: dt.datetime | None = None
    """When the profile stops perturbing traffic (`durationS` after creation, or `until`)."""
    next_window: WindowStatus | None = None
    """The fault window open now, else the next one to open (refreshed by the operator every few
    seconds); absent when none will open again."""


class ScenarioPhase(StrEnum):
    """Where a LoadScenario run stands (follows its Job)."""

    PENDING = "Pending"
    """The Job is created but no worker runs yet."""
    RUNNING = "Running"
    """At least one worker is running."""
    SUCCEEDED = "Succeeded"
    """Every worker finished; the results are merged into `summary`."""
    FAILED = "Failed"
    """The Job failed (or the spec is invalid); see the conditions."""


class Percentiles(StrictModel):
    """Latency percentiles in milliseconds."""

    p50: float | None = Field(default=None, ge=0)
    """Median."""
    p95: float | None = Field(default=None, ge=0)
    """95th percentile."""
    p99: float | None = Field(default=None, ge=0)
    """99th percentile."""


class SloVerdict(StrictModel):
    """Whether one SLO held during the run."""

    name: str = Field(min_length=1)
    """The SLO, e.g. `ttftMs.p95 <= 800`."""
    met: bool
    """True when the run satisfied it."""
    actual: float | None = None
    """The measured value."""
    target: float | None = None
    """The threshold."""


class RunSummary(StrictModel):
    """The merged result of all workers of one run."""

    requests: int = Field(default=0, ge=0)
    """Requests sent."""
    errors: int = Field(default=0, ge=0)
    """Requests that failed."""
    achieved_rps: float = Field(default=0.0, ge=0)
    """Completed requests per second over the run."""
    error_rate: float = Field(default=0.0, ge=0, le=1)
    """errors / requests."""
    ttft_ms: Percentiles = Field(default_factory=Percentiles)
    """Time to first token."""
    itl_ms: Percentiles = Field(default_factory=Percentiles)
    """Inter-token latency."""
    e2e_ms: Percentiles = Field(default_factory=Percentiles)
    """End-to-end latency."""
    slos: list[SloVerdict] = Field(default_factory=list)
    """One verdict per SLO of the scenario."""


class RunRecord(StrictModel):
    """One past run of a (scheduled) LoadScenario."""

    job: str = Field(min_length=1)
    """Name of the Job of this run."""
    phase: ScenarioPhase
    """How the run ended (or stands)."""
    start_time: dt.datetime | None = None
    """When the Job was created."""
    completion_time: dt.datetime | None = None
    """When the run finished."""
    report_config_map: str | None = None
    """ConfigMap holding this run's `report.json`."""
    slo: Literal["Met", "Violated", "None"] | None = None
    """The SLO verdict of the run."""


class LoadScenarioStatus(StrictModel):
    """Status of a LoadScenario: the current (or last) run, its merged summary and the history."""

    observed_generation: int | None = Field(default=None, ge=0)
    """The `metadata.generation` last reconciled."""
    phase: ScenarioPhase = ScenarioPhase.PENDING
    """Phase of the current (or last) run."""
    conditions: list[Condition] = Field(default_factory=list)
    """`Invalid`, `Complete` and `Failed` conditions."""
    job: str | None = None
    """Name of the Job of the current (or last) run."""
    start_time: dt.datetime | None = None
    """When the current run's Job was created."""
    completion_time: dt.datetime | None = None
    """When the current run finished."""
    workers: int = Field(default=0, ge=0)
    """Workers of the run (the Job's completions)."""
    workers_succeeded: int = Field(default=0, ge=0)
    """Workers that finished successfully."""
    workers_failed: int = Field(default=0, ge=0)
    """Worker pods that failed."""
    summary: RunSummary | None = None
    """The merged result (set when the run succeeded)."""
    slo: Literal["Met", "Violated", "None"] | None = None
    """`Met` when every SLO held, `Violated` otherwise, `None` when the scenario has no SLO."""
    report_config_map: str | None = None
    """ConfigMap holding the full merged `report.json`."""
    last_schedule_time: dt.datetime | None = None
    """When a scheduled scenario last started a run."""
    history: list[RunRecord] = Field(default_factory=list)
    """Past runs, newest first, bounded by the operator setting `LLMSIM_OPERATOR_SCENARIO_HISTORY_LIMIT`."""
