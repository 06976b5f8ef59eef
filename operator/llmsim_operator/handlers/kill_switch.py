"""The namespace kill switch: `llmsim.io/paused: "true"` on a Namespace pauses every
SimulationProfile in it within seconds; annotating every namespace is the global kill switch.

The operator marks each profile of a paused namespace with `llmsim.io/kill-switch` (the reason:
which namespace, and the field manager that set the annotation) and re-renders its ConfigMap with
`paused: true`; the sidecars watching the profile see the mark at once and pass everything
through. Unpausing removes the mark. The user's `spec` is never written (GitOps stays in charge
of it). Every change is an Event on the profile (`KillSwitchPaused`, `KillSwitchResumed`).
"""

from __future__ import annotations

from typing import Any

import kopf

from llmsim import profiles
from llmsim.api.resources import KILL_SWITCH_ANNOTATION
from llmsim.api.timestamps import parse_time
from llmsim.errors import ProfileError
from llmsim_operator import constants as c
from llmsim_operator import k8s
from llmsim_operator.handlers.common import PAUSED_NAMESPACES_KEY, post, settings_of, utcnow
from llmsim_operator.handlers.profiles import render_config_map
from llmsim_operator.resources import kill_switch


@kopf.on.event("v1", "namespaces")
def namespace_kill_switch(body: kopf.Body, name: str, memo: kopf.Memo, **_: Any) -> None:
    """Apply a namespace's `llmsim.io/paused` to its profiles when it changes (watch only: the
    operator never writes Namespaces)."""
    settings = settings_of(memo)
    if settings.watch_namespaces and name not in settings.watch_namespaces:
        return
    reason = kill_switch.reason(body)
    known: dict[str, str | None] = memo.setdefault(PAUSED_NAMESPACES_KEY, {})
    if name in known and known[name] == reason:
        return
    apply_to_profiles(name, reason)
    known[name] = reason


def apply_to_profiles(namespace: str, reason: str | None) -> int:
    """Mark (or unmark) every profile of `namespace`; the number changed."""
    changed = 0
    for body in k8s.list_custom(c.PROFILES, namespace):
        current = kill_switch.killed_by(body)
        if current == reason:
            continue
        meta = body.get("metadata") or {}
        k8s.annotate_custom(c.PROFILES, namespace, meta["name"], {KILL_SWITCH_ANNOTATION: reason})
        _rerender(body, namespace, reason)
        if reason:
            post(body, "Warning", "KillSwitchPaused", f"paused by the kill switch: {reason}")
        else:
            post(body, "Normal", "KillSwitchResumed", f"the kill switch was released ({current})")
        changed += 1
    return changed


def _rerender(body: dict[str, Any], namespace: str, reason: str | None) -> None:
    meta = body.get("metadata") or {}
    try:
        parsed = profiles.parse_spec(
            dict(body.get("spec") or {}), f"SimulationProfile {namespace}/{meta['name']}"
        )
    except ProfileError:
        return  # an invalid profile has no sidecars to pause (its last ConfigMap stays)
    created = parse_time(meta.get("creationTimestamp")) or utcnow()
    render_config_map(body, meta["name"], namespace, parsed, created, reason)
