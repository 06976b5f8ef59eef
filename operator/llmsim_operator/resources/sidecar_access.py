"""Pure builders of what lets a sidecar act on its profile within seconds and be controlled only
by its owners: the namespace's read-only Role and RoleBinding (watch the SimulationProfiles, post
Events on them) and the admin-token Secret."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from llmsim_operator import constants as c

_LABELS = {c.MANAGED_BY_LABEL: c.MANAGED_BY}

RULES: list[dict[str, Any]] = [
    {"apiGroups": [c.GROUP], "resources": [c.PROFILES], "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
]
"""Read-only on profiles (the kill switch arrives by watch); Events for the audit trail of what
only the sidecar knows (its admin API, its fail-safe)."""


def role(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": c.SIDECAR_ACCESS_NAME, "namespace": namespace, "labels": dict(_LABELS)},
        "rules": [dict(r) for r in RULES],
    }


def subjects(namespace: str, service_accounts: Iterable[str]) -> list[dict[str, str]]:
    return [
        {"kind": "ServiceAccount", "name": sa, "namespace": namespace} for sa in sorted(set(service_accounts))
    ]


def role_binding(namespace: str, service_accounts: Iterable[str]) -> dict[str, Any]:
    """Binds the Role to the ServiceAccounts of the pods the operator injected in `namespace`."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": c.SIDECAR_ACCESS_NAME, "namespace": namespace, "labels": dict(_LABELS)},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": c.SIDECAR_ACCESS_NAME},
        "subjects": subjects(namespace, service_accounts),
    }


def bound_service_accounts(binding: Mapping[str, Any] | None, namespace: str) -> set[str]:
    """The ServiceAccounts of `namespace` an existing RoleBinding names."""
    if binding is None:
        return set()
    return {
        s["name"]
        for s in binding.get("subjects") or []
        if s.get("kind") == "ServiceAccount" and s.get("namespace", namespace) == namespace and s.get("name")
    }


def admin_secret(namespace: str, token: str | None = None) -> dict[str, Any]:
    """The admin-token Secret (256 random bits unless `token` is given)."""
    value = token if token is not None else secrets.token_urlsafe(32)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": c.ADMIN_SECRET, "namespace": namespace, "labels": dict(_LABELS)},
        "data": {c.ADMIN_TOKEN_KEY: base64.b64encode(value.encode()).decode()},
    }
