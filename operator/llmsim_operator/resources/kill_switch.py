"""The namespace kill switch, pure: is a namespace paused, who paused it, what its profiles need."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmsim import managed_fields
from llmsim.api.resources import KILL_SWITCH_ANNOTATION, NAMESPACE_PAUSED_ANNOTATION

TRUE = frozenset({"true", "1", "yes", "on"})


def paused(namespace: Mapping[str, Any]) -> bool:
    """Whether the Namespace object carries `llmsim.io/paused: "true"`."""
    annotations = (namespace.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(NAMESPACE_PAUSED_ANNOTATION, "")).strip().lower() in TRUE


def manager_of(obj: Mapping[str, Any], annotation: str) -> str | None:
    """The field manager (`kubectl-annotate`, `llmsim`, ...) that last set `annotation`."""
    return managed_fields.manager_of(obj, "metadata", "annotations", annotation)


def reason(namespace: Mapping[str, Any]) -> str | None:
    """The kill-switch annotation value for the profiles of a paused namespace (None: not paused)."""
    if not paused(namespace):
        return None
    name = (namespace.get("metadata") or {}).get("name", "")
    who = manager_of(namespace, NAMESPACE_PAUSED_ANNOTATION)
    return f"namespace {name} {NAMESPACE_PAUSED_ANNOTATION}=true" + (f" (set by {who})" if who else "")


def killed_by(profile: Mapping[str, Any]) -> str | None:
    """Who paused this profile through the kill switch (its annotation), or None."""
    annotations = (profile.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(KILL_SWITCH_ANNOTATION)
    return str(value) if value else None
