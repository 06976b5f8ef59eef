"""Who last wrote a field of a Kubernetes object, from `metadata.managedFields` (server-side
apply's record). Pure; the operator and the sidecar name the writer in their audit trail."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def manager_of(obj: Mapping[str, Any], *path: str) -> str | None:
    """The field manager (`kubectl-patch`, `kubectl-annotate`, `llmsim`, `argocd-controller`, ...)
    whose entry owns the field at `path` (e.g. `spec`, `paused`), the latest one listed; None
    when no entry owns it."""
    found: str | None = None
    for entry in (obj.get("metadata") or {}).get("managedFields") or []:
        node: Any = entry.get("fieldsV1") or {}
        for key in path:
            node = node.get(f"f:{key}") if isinstance(node, Mapping) else None
            if node is None:
                break
        if node is not None:
            found = str(entry.get("manager") or "") or found
    return found
