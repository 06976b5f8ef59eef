"""Specs of the custom resources where they add operator-only fields to the file formats.

A SimulationProfile's `spec` is exactly a `SimulationProfileSpec`. A LoadScenario's `spec` is a
`LoadScenarioSpec` plus scheduling, which only the operator reads; the operator hands the
`LoadScenarioSpec` part (without these fields) to `llmsim load`.
"""

from __future__ import annotations

from pydantic import Field

from llmsim.api.scenario import LoadScenarioSpec

CRON_PATTERN = r"^\S+\s+\S+\s+\S+\s+\S+\s+\S+$"
"""Five whitespace-separated cron fields; the operator parses them fully."""


class LoadScenarioResourceSpec(LoadScenarioSpec):
    """A LoadScenario custom resource: a load test, optionally repeated on a cron schedule."""

    schedule: str | None = Field(default=None, pattern=CRON_PATTERN)
    """Cron schedule (`minute hour day-of-month month day-of-week`, UTC) for recurring runs; unset
    runs once. A run never starts while the previous one is still running."""
    history_limit: int = Field(default=3, ge=1, le=100)
    """How many finished runs (their Jobs and report ConfigMaps) a scheduled scenario keeps."""

    def load_spec(self) -> LoadScenarioSpec:
        """The part `llmsim load --scenario` reads."""
        return LoadScenarioSpec.model_validate(self.model_dump(exclude={"schedule", "history_limit"}))


OPERATOR_ONLY_FIELDS = frozenset({"schedule", "historyLimit"})
"""Keys of a LoadScenario `spec` that `llmsim load` does not know."""
