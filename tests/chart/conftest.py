"""Fixtures of the chart tests: the chart rendered once per scenario (default values and every
ci/*.yaml), in one helm-sdkpy child process for the whole session."""

from __future__ import annotations

from typing import Any

import helmrender
import pytest
from chartcases import REFUSED, SCENARIOS, scenario_values
from manifests import OLDEST_KUBERNETES


@pytest.fixture(scope="session")
def batch() -> dict[str, Any]:
    jobs = [helmrender.Job(scenario_values(name)) for name in SCENARIOS]
    jobs.append(helmrender.Job({}, kube_version=OLDEST_KUBERNETES))
    jobs.append(helmrender.Job({}, namespace="platform-tools"))
    jobs.extend(REFUSED.values())
    result = helmrender.render_many(jobs)
    n = len(SCENARIOS)
    return {
        "lint": result.lint,
        "scenarios": dict(zip(SCENARIOS, result.results[:n], strict=True)),
        "oldest": result.results[n],
        "other-namespace": result.results[n + 1],
        "refused": dict(zip(REFUSED, result.results[n + 2 :], strict=True)),
    }


@pytest.fixture(scope="session")
def rendered(batch: dict[str, Any]) -> dict[str, helmrender.Rendered]:
    """Scenario name -> what the install created (fails the test if Helm refused the scenario)."""
    out: dict[str, helmrender.Rendered] = {}
    for name, result in batch["scenarios"].items():
        if isinstance(result, helmrender.HelmRenderError):
            pytest.fail(f"scenario {name}: Helm refused it: {result}")
        out[name] = result
    return out
