"""Specs of the custom resources where they add operator-only fields to the file formats.

A SimulationProfile's `spec` is exactly a `SimulationProfileSpec`. A LoadScenario's `spec` is a
`LoadScenarioSpec` plus scheduling, which only the operator reads; the operator hands the
`LoadScenarioSpec` part (without these fields) to `llmsim load`.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from llmsim.api.base import StrictModel
from llmsim.api.faults import CRON_PATTERN
from llmsim.api.scenario import ApiKeySource, LoadScenarioSpec

NAMESPACE_PAUSED_ANNOTATION = "llmsim.io/paused"
"""On a Namespace, `"true"` pauses every SimulationProfile in it (the global kill switch: set it
on every namespace, e.g. `kubectl annotate namespaces --all llmsim.io/paused=true`)."""
KILL_SWITCH_ANNOTATION = "llmsim.io/kill-switch"
"""On a SimulationProfile, set by the operator (never by hand) while its namespace is paused; the
value says who paused it. Its sidecars treat the profile as `paused: true`."""

API_KEY_ENV = "LLMSIM_API_KEY"
"""The variable a LoadScenario's workers get their API key in, from `apiKeySecret`."""
API_KEY_IN_A_SECRET = (
    "target.apiKey: the workers of a LoadScenario have no such variable or file; "
    "give the key as apiKeySecret (a Secret name and key)"
)


class SecretKeyRef(StrictModel):
    """One key of a Secret in the resource's namespace."""

    name: str = Field(min_length=1, max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    """Name of the Secret."""
    key: str = Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")
    """The key within the Secret's data."""


class LoadScenarioResourceSpec(LoadScenarioSpec):
    """A LoadScenario custom resource: a load test, optionally repeated on a cron schedule."""

    schedule: str | None = Field(default=None, pattern=CRON_PATTERN)
    """Cron schedule (`minute hour day-of-month month day-of-week`, UTC) for recurring runs; unset
    runs once. A run never starts while the previous one is still running."""
    history_limit: int = Field(default=3, ge=1, le=100)
    """How many finished runs (their Jobs and report ConfigMaps) a scheduled scenario keeps."""
    api_key_secret: SecretKeyRef | None = None
    """The target's API key, from a Secret in the scenario's namespace: the workers get it in the
    environment variable `LLMSIM_API_KEY` through a `secretKeyRef`, so the key never appears in the
    spec, the workers' scenario file or a log. (`target.apiKey` names a variable or file of the
    machine running `llmsim load`; the workers' pods have neither, so a LoadScenario refuses it.)"""

    @model_validator(mode="after")
    def _key_from_a_secret(self) -> LoadScenarioResourceSpec:
        if self.target.api_key is not None:
            raise ValueError(API_KEY_IN_A_SECRET)
        return self

    def load_spec(self) -> LoadScenarioSpec:
        """The part `llmsim load --scenario` reads (with `apiKeySecret`, the key's variable)."""
        doc = self.model_dump(exclude={"schedule", "history_limit", "api_key_secret"})
        if self.api_key_secret is not None:
            doc["target"]["apiKey"] = ApiKeySource(env=API_KEY_ENV).model_dump()
        return LoadScenarioSpec.model_validate(doc)


OPERATOR_ONLY_FIELDS = frozenset({"schedule", "historyLimit", "apiKeySecret"})
"""Keys of a LoadScenario `spec` that `llmsim load` does not know."""
