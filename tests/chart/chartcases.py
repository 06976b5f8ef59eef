"""The chart's test scenarios and helpers shared by the chart tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import helmrender
import yaml

SCENARIOS = ["default", *sorted(p.name for p in (helmrender.CHART / "ci").glob("*.yaml"))]
"""`default` (no values) and the ci/ values files."""

REFUSED: dict[str, helmrender.Job] = {
    "kubernetes-1.28": helmrender.Job({}, kube_version="1.28"),
    "unknown-value": helmrender.Job({"operator": {"replica": 3}}),
    "bad-failure-policy": helmrender.Job({"webhook": {"failurePolicy": "Retry"}}),
    "egress-without-api-server": helmrender.Job(
        {"networkPolicy": {"enabled": True, "egress": {"enabled": True}}}
    ),
    "two-replicas-without-peering": helmrender.Job({"operator": {"peering": {"enabled": False}}}),
    "two-replicas-one-priority": helmrender.Job({"operator": {"peering": {"priority": 5}}}),
    "bad-namespace-name": helmrender.Job({"injection": {"namespaces": ["Team_A"]}}),
}
"""Installs Helm must refuse (kubeVersion constraint and values.schema.json)."""


def scenario_values(name: str) -> dict[str, Any]:
    return {} if name == "default" else helmrender.values_file(name)


def merged_values(name: str) -> dict[str, Any]:
    """values.yaml with the scenario's file merged over it (what the templates see)."""
    defaults = yaml.safe_load((helmrender.CHART / "values.yaml").read_text(encoding="utf-8"))
    return _merge(defaults, scenario_values(name))


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def operator_env(rendered: helmrender.Rendered) -> dict[str, str]:
    """The operator container's LLMSIM_OPERATOR_* variables (fieldRefs resolved as the kubelet would)."""
    deployment = rendered.one("Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env: dict[str, str] = {}
    for var in container["env"]:
        if not var["name"].startswith("LLMSIM_OPERATOR_"):
            continue
        if "value" in var:
            env[var["name"]] = var["value"]
        elif var.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.namespace":
            env[var["name"]] = deployment["metadata"]["namespace"]
        else:
            raise AssertionError(f"{var['name']}: unexpected valueFrom {var.get('valueFrom')}")
    return env


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Whether a Kubernetes LabelSelector matches `labels` (an absent selector matches everything)."""
    if not selector:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise ValueError(f"unknown selector operator {op}")
    return True


def called_webhooks(
    config: Mapping[str, Any], namespace_labels: Mapping[str, str], pod_labels: Mapping[str, str]
) -> list[str]:
    """Names of the webhooks of a MutatingWebhookConfiguration the API server calls for a pod CREATE."""
    return [
        hook["name"]
        for hook in config["webhooks"]
        if selects(hook.get("namespaceSelector"), namespace_labels)
        and selects(hook.get("objectSelector"), pod_labels)
    ]


def namespace_labels(name: str, **labels: str) -> dict[str, str]:
    """A namespace's labels, including the automatic kubernetes.io/metadata.name."""
    return {"kubernetes.io/metadata.name": name, **labels}
