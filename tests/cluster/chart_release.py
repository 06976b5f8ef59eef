"""The llmsim chart installed into a test control plane with the built Helm v4 CLI, with the values
for an operator outside the cluster (`charts/llmsim/ci/local-control-plane-values.yaml`: the
webhook's `clientConfig.url` points at 127.0.0.1, whose certificate and caBundle the operator
provides). The Deployment is rendered and stored but never runs (there is no kubelet): the tests run
its container's command as a process, with its environment and its ServiceAccount's token."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controlplane import ControlPlane, User

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "llmsim"
LOCAL_VALUES = CHART / "ci" / "local-control-plane-values.yaml"
RELEASE = "llmsim"
NAMESPACE = "llmsim-system"


@dataclass(frozen=True)
class Release:
    plane: ControlPlane
    name: str
    namespace: str
    webhook_port: int

    @property
    def deployment(self) -> dict[str, Any]:
        found: dict[str, Any] = self.plane.request(
            "GET", f"/apis/apps/v1/namespaces/{self.namespace}/deployments/{self.name}"
        )
        return found

    def operator_env(self) -> dict[str, str]:
        """The operator container's environment as the kubelet would give it (fieldRefs resolved)."""
        deployment = self.deployment
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        env: dict[str, str] = {}
        for var in container.get("env") or []:
            if "valueFrom" not in var:  # the API server drops `value: ""`
                env[var["name"]] = var.get("value", "")
            elif var["valueFrom"].get("fieldRef", {}).get("fieldPath") == "metadata.namespace":
                env[var["name"]] = self.namespace
            else:
                raise AssertionError(f"cannot resolve {var} outside a pod")
        return env

    @property
    def service_account(self) -> str:
        return str(self.deployment["spec"]["template"]["spec"]["serviceAccountName"])

    def operator_credentials(self) -> User:
        """A kubeconfig with a TokenRequest token of the chart's ServiceAccount: exactly the
        permissions the chart grants its pods."""
        return self.plane.service_account_kubeconfig(self.namespace, self.service_account)

    def webhook_configuration(self) -> dict[str, Any]:
        name = self.operator_env()["LLMSIM_OPERATOR_WEBHOOK_CONFIGURATION"]
        found: dict[str, Any] = self.plane.request(
            "GET", f"/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/{name}"
        )
        return found


def helm(plane: ControlPlane, *args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    """The built helm CLI against `plane`, as its admin, with its state inside the control plane's
    directory (nothing written to the user's Helm configuration)."""
    home = plane.workdir / "helm"
    env = {
        **os.environ,
        "KUBECONFIG": str(plane.admin.kubeconfig),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }
    result = subprocess.run(
        [str(plane.bins.helm), *args], capture_output=True, text=True, env=env, timeout=timeout_s
    )
    if result.returncode != 0:
        raise RuntimeError(f"helm {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result


def install(
    plane: ControlPlane, webhook_port: int, release: str = RELEASE, namespace: str = NAMESPACE, **values: Any
) -> Release:
    """`helm install` of the chart with the local-control-plane values; `values` are `--set-json`
    overrides by dotted key. A release name containing "llmsim" names its Deployment."""
    overrides = {
        "webhook.url": f"https://127.0.0.1:{webhook_port}",
        "webhook.port": webhook_port,
        **values,
    }
    sets = [arg for key, value in overrides.items() for arg in ("--set-json", f"{key}={json.dumps(value)}")]
    helm(
        plane, "install", release, str(CHART), "--namespace", namespace, "--create-namespace",
        "--values", str(LOCAL_VALUES), *sets,
    )  # fmt: skip
    return Release(plane, release, namespace, webhook_port)


def uninstall(release: Release) -> None:
    helm(release.plane, "uninstall", release.name, "--namespace", release.namespace, "--wait")
