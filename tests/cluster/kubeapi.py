"""Small REST helpers the cluster tests use against the control plane (as its admin)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from controlplane import ApiError, ControlPlane
from managedproc import wait_for

PROFILES = "llmsim.io/v1alpha1/simulationprofiles"
SCENARIOS = "llmsim.io/v1alpha1/loadscenarios"
CONFIGMAPS = "v1/configmaps"
SECRETS = "v1/secrets"
PODS = "v1/pods"
EVENTS = "v1/events"
JOBS = "batch/v1/jobs"
NAMESPACES = "v1/namespaces"
WEBHOOKS = "admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


def path(resource: str, namespace: str | None = None, name: str | None = None, sub: str | None = None) -> str:
    """`group/version/plural` (core: `v1/plural`) to its REST path."""
    group_version, plural = resource.rsplit("/", 1)
    prefix = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
    scope = f"/namespaces/{namespace}" if namespace else ""
    return prefix + scope + f"/{plural}" + (f"/{name}" if name else "") + (f"/{sub}" if sub else "")


class Kube:
    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane

    def get(self, resource: str, namespace: str | None, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self.plane.request("GET", path(resource, namespace, name))
        return found

    def find(self, resource: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        try:
            return self.get(resource, namespace, name)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def list(self, resource: str, namespace: str | None = None, selector: str = "") -> list[dict[str, Any]]:
        query = f"?labelSelector={selector}" if selector else ""
        items: list[dict[str, Any]] = self.plane.request("GET", path(resource, namespace) + query)["items"]
        return items

    def create(
        self, resource: str, namespace: str | None, body: dict[str, Any], dry_run: bool = False
    ) -> dict[str, Any]:
        query = "?dryRun=All" if dry_run else ""
        created: dict[str, Any] = self.plane.request("POST", path(resource, namespace) + query, body)
        return created

    def patch(
        self, resource: str, namespace: str | None, name: str, body: Any, sub: str | None = None,
        content_type: str = MERGE,
    ) -> dict[str, Any]:  # fmt: skip
        patched: dict[str, Any] = self.plane.request(
            "PATCH", path(resource, namespace, name, sub), body, content_type=content_type
        )
        return patched

    def delete(self, resource: str, namespace: str | None, name: str, propagation: str | None = None) -> None:
        body = {"propagationPolicy": propagation} if propagation else None
        try:
            self.plane.request("DELETE", path(resource, namespace, name), body)
        except ApiError as exc:
            if exc.status != 404:
                raise

    def events(self, namespace: str, involved: str) -> list[dict[str, Any]]:
        return [e for e in self.list(EVENTS, namespace) if e["involvedObject"].get("name") == involved]

    def wait[T](self, check: Callable[[], T | None], what: str, timeout_s: float = 30.0) -> T:
        """Poll `check` (bounded); fails early when a control-plane process died."""
        return wait_for(check, timeout_s, what, interval_s=0.2, alive=self.plane.check_alive)

    def wait_gone(self, resource: str, namespace: str | None, name: str, timeout_s: float = 30.0) -> None:
        self.wait(
            lambda: self.find(resource, namespace, name) is None,
            f"{resource} {namespace}/{name} gone",
            timeout_s,
        )
