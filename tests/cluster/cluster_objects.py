"""Objects the cluster tests create, and the waits for what the operator makes of them."""

from __future__ import annotations

from typing import Any

from kubeapi import PROFILES, Kube

from llmsim_operator import constants as c

RECONCILE_S = 30.0
"""Upper bound for one reconciliation on a busy 2-core machine (typically well under 2 s)."""
INJECT = {c.NAMESPACE_INJECT_LABEL: c.NAMESPACE_INJECT_ENABLED}
"""The namespace label that opts every pod of a namespace in."""


def profile(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "llmsim.io/v1alpha1",
        "kind": "SimulationProfile",
        "metadata": {"name": name},
        "spec": {"provider": "openai", "mode": "simulate", **spec},
    }


def ready(kube: Kube, namespace: str, name: str, generation: int = 1) -> dict[str, Any]:
    """The profile once the operator reports it Ready at `generation`."""

    def check() -> dict[str, Any] | None:
        found = kube.get(PROFILES, namespace, name)
        status = found.get("status") or {}
        if status.get("phase") == "Ready" and status.get("observedGeneration") == generation:
            return found
        return None

    return kube.wait(
        check, f"SimulationProfile {namespace}/{name} Ready at generation {generation}", RECONCILE_S
    )


def app_pod(name: str, annotations: dict[str, str] | None = None, labels: dict[str, str] | None = None,
            env: list[dict[str, str]] | None = None) -> dict[str, Any]:  # fmt: skip
    container: dict[str, Any] = {"name": "app", "image": "python:3.12-slim", "command": ["sleep", "infinity"]}
    if env:
        container["env"] = env
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {"app": "chat"}, "annotations": annotations or {}},
        "spec": {"containers": [container]},
    }


def sidecars(pod: dict[str, Any]) -> list[dict[str, Any]]:
    """The llmsim-proxy containers of a pod (init or regular)."""
    spec = pod["spec"]
    return [
        ct for ct in (spec.get("initContainers") or []) + spec["containers"] if ct["name"] == c.SIDECAR_NAME
    ]
