"""Names of the objects the operator creates (DNS-1123, within Kubernetes' length limits)."""

from __future__ import annotations

import hashlib

_MAX = 63


def _fit(base: str, suffix: str, limit: int = _MAX) -> str:
    name = f"{base}-{suffix}"
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(base.encode()).hexdigest()[:6]
    keep = limit - len(suffix) - len(digest) - 2
    return f"{base[:keep].rstrip('-')}-{digest}-{suffix}"


def profile_config_map(profile: str) -> str:
    """ConfigMap holding a profile's rendered spec (`profile.yaml`)."""
    return _fit(f"llmsim-profile-{profile}", "cfg", 253)


def run(scenario: str, token: str) -> str:
    """Job of one run (a Job name must fit in a pod label value: 63 characters)."""
    return _fit(scenario, token)


def scenario_config_map(run_name: str) -> str:
    """ConfigMap holding the `llmsim load` spec of one run."""
    return f"{run_name}-spec"


def report_config_map(run_name: str) -> str:
    """ConfigMap holding one run's merged `report.json`."""
    return f"{run_name}-report"
