"""SimulationProfile: validate, render into an owned ConfigMap, report status, keep counts."""

from __future__ import annotations

import datetime as dt
from typing import Any

import kopf
from pydantic import ValidationError

from llmsim import managed_fields, profiles
from llmsim.api.profile import SimulationProfileSpec
from llmsim.api.resources import KILL_SWITCH_ANNOTATION
from llmsim.api.status import ProfilePhase, SimulationProfileStatus
from llmsim.api.timestamps import parse_time
from llmsim.errors import ProfileError, describe_validation_error
from llmsim_operator import conditions, k8s, metrics
from llmsim_operator import constants as c
from llmsim_operator.handlers.common import (
    CA_NAMESPACES_KEY,
    PAUSED_NAMESPACES_KEY,
    ensure_ca_secret,
    ensure_sidecar_access,
    post,
    settings_of,
    status_dict,
    utcnow,
)
from llmsim_operator.resources import kill_switch, names
from llmsim_operator.resources import profile as profile_resources

_ATTR = {"expiresAt": "expires_at", "nextWindow": "next_window"}


def render_config_map(
    owner: Any, name: str, namespace: str, parsed: SimulationProfileSpec, created: dt.datetime,
    killed: str | None,
) -> dict[str, Any]:  # fmt: skip
    """Render and apply the profile's ConfigMap (the sidecars' fallback copy): `paused: true` while
    the kill switch holds the profile, so sidecars that only read the file pause too."""
    spec = parsed.model_copy(update={"paused": True}) if killed else parsed
    cm = profile_resources.config_map(name, namespace, spec, created)
    kopf.adopt(cm, owner=owner)
    k8s.apply_config_map(cm)
    return cm


def _absolute(parsed: SimulationProfileSpec, created: dt.datetime, source: str) -> SimulationProfileSpec:
    """What the sidecars run (windows and expiry made absolute); ProfileError when that no longer
    validates (e.g. a window moved past `until`)."""
    try:
        return profile_resources.absolute_spec(parsed, created)
    except ValidationError as exc:
        problems = describe_validation_error(exc, "spec")
        raise ProfileError(
            source, [f"{p} (once relative times count from the creation)" for p in problems]
        ) from None


def _window_doc(spec: SimulationProfileSpec, now: dt.datetime) -> dict[str, Any] | None:
    found = profile_resources.next_window(spec, now)
    return None if found is None else found.model_dump(mode="json", by_alias=True)


def _status(body: kopf.Body, **fields: Any) -> SimulationProfileStatus:
    current = dict(body.get("status") or {})
    base = {
        "pods": current.get("pods", 0),
        "podsMissingSidecar": current.get("podsMissingSidecar", 0),
        "configMap": current.get("configMap"),
    }
    base.update(fields)
    return SimulationProfileStatus.model_validate({k: v for k, v in base.items() if v is not None})


@kopf.on.resume(c.GROUP, c.VERSION, c.PROFILES, retries=10, backoff=5)
@kopf.on.create(c.GROUP, c.VERSION, c.PROFILES, retries=10, backoff=5)
@kopf.on.update(c.GROUP, c.VERSION, c.PROFILES, field="spec", retries=10, backoff=5)
def reconcile_profile(
    body: kopf.Body, spec: kopf.Spec, name: str, namespace: str | None, meta: kopf.Meta, memo: kopf.Memo,
    patch: kopf.Patch, **kwargs: Any,
) -> None:  # fmt: skip
    settings = settings_of(memo)
    namespace = namespace or ""
    now = utcnow()
    generation = meta.get("generation")
    previous_phase = (body.get("status") or {}).get("phase")
    old = conditions.parse((body.get("status") or {}).get("conditions"))
    created = parse_time(meta.get("creationTimestamp")) or now
    try:
        parsed = profiles.parse_spec(dict(spec), f"SimulationProfile {namespace}/{name}", prefix="spec")
        absolute = _absolute(parsed, created, f"SimulationProfile {namespace}/{name}")
    except ProfileError as exc:
        message = "; ".join(exc.problems)
        conds = conditions.set_condition(old, "Ready", "False", "InvalidSpec", message, now, generation)
        conds = conditions.set_condition(conds, "Invalid", "True", "InvalidSpec", message, now, generation)
        status = _status(
            body, phase=ProfilePhase.INVALID, observedGeneration=generation, conditions=conditions.dump(conds)
        )
        patch.status.update(status_dict(status))
        post(body, "Warning", "InvalidSpec", message)
        metrics.RECONCILES.labels("SimulationProfile", "invalid").inc()
        raise kopf.PermanentError(message) from None
    killed = kill_switch.killed_by(body)
    paused_namespaces: dict[str, str | None] = memo.get(PAUSED_NAMESPACES_KEY, {})
    if paused_namespaces.get(namespace) and not killed:  # created in a paused namespace
        killed = paused_namespaces[namespace]
        patch.metadata.annotations[KILL_SWITCH_ANNOTATION] = killed
    cm = render_config_map(body, name, namespace, parsed, created, killed)
    ensure_ca_secret(namespace, settings, now)
    ensure_sidecar_access(namespace)
    memo.get(CA_NAMESPACES_KEY, set()).add(namespace)
    message = f"rendered into ConfigMap {cm['metadata']['name']}"
    conds = conditions.set_condition(old, "Ready", "True", "Rendered", message, now, generation)
    conds = conditions.set_condition(conds, "Invalid", "False", "Valid", "", now, generation)
    expires = profile_resources.expiry(parsed, created)
    key = (namespace, name)
    status = _status(
        body,
        pods=len(list(kwargs["pods_by_profile"].get(key, []))),
        podsMissingSidecar=len(list(kwargs["pods_missing_sidecar"].get(key, []))),
        phase=ProfilePhase.READY,
        observedGeneration=generation,
        conditions=conditions.dump(conds),
        configMap=cm["metadata"]["name"],
        expiresAt=expires.isoformat() if expires else None,
        nextWindow=_window_doc(absolute, now),
    )
    cleared = {k: None for k in ("expiresAt", "nextWindow") if getattr(status, _ATTR[k]) is None}
    patch.status.update(status_dict(status) | cleared)  # None removes the field
    old_spec = dict(kwargs.get("old") or {})  # on.update(field="spec"): `old` is the old spec
    if previous_phase == ProfilePhase.READY.value and bool(old_spec.get("paused")) != parsed.paused:
        who = managed_fields.manager_of(body, "spec", "paused")
        action = "Paused" if parsed.paused else "Resumed"
        post(body, "Warning" if parsed.paused else "Normal", action,
             f"spec.paused set to {str(parsed.paused).lower()}" + (f" by {who}" if who else ""))  # fmt: skip
    if previous_phase != ProfilePhase.READY.value:
        post(body, "Normal", "Ready", message)
    else:
        post(body, "Normal", "Updated", message)
    metrics.RECONCILES.labels("SimulationProfile", "ready").inc()


@kopf.on.delete(c.GROUP, c.VERSION, c.PROFILES, retries=5, backoff=5)
def delete_profile(body: kopf.Body, name: str, namespace: str | None, **kwargs: Any) -> None:
    """Owner references remove the ConfigMap; pods still running the profile get a warning event."""
    pods_by_profile: kopf.Index[Any, Any] = kwargs["pods_by_profile"]
    running = sorted(str(p) for p in pods_by_profile.get((namespace, name), []))
    if running:
        shown = ", ".join(running[:5]) + (" …" if len(running) > 5 else "")
        post(
            body,
            "Warning",
            "DeletedWhileInUse",
            f"deleted while {len(running)} pod(s) run it ({shown}); their sidecars keep the last rendered "
            "profile until the pods are replaced, and new pods asking for it start without a sidecar",
        )
    k8s.delete_config_map(namespace or "", names.profile_config_map(name))


EXPIRY_POSTED_KEY = "llmsim_expiry_posted"
"""memo (per profile): the `expiresAt` whose Expired event was posted."""
WINDOW_REFRESH_S = 5.0
"""How often `status.nextWindow` is refreshed (and window open/close events posted)."""


@kopf.timer(c.GROUP, c.VERSION, c.PROFILES, interval=WINDOW_REFRESH_S, initial_delay=WINDOW_REFRESH_S)
def refresh_window(
    body: kopf.Body, spec: kopf.Spec, name: str, namespace: str | None, meta: kopf.Meta,
    patch: kopf.Patch, memo: kopf.Memo, **_: Any,
) -> None:  # fmt: skip
    """Keep `status.nextWindow` current; a window that opened or closed since the last look is an
    Event on the profile (WindowOpened / WindowClosed), and so is the expiry passing (Expired)."""
    status = dict(body.get("status") or {})
    if status.get("phase") != ProfilePhase.READY.value:
        return
    now = utcnow()
    expires = parse_time(status.get("expiresAt"))
    if expires is not None and expires <= now and memo.get(EXPIRY_POSTED_KEY) != status.get("expiresAt"):
        memo[EXPIRY_POSTED_KEY] = status.get("expiresAt")
        post(
            body,
            "Normal",
            "Expired",
            f"expired at {status.get('expiresAt')}: its sidecars pass everything through",
        )
    source = f"SimulationProfile {namespace}/{name}"
    try:
        parsed = profiles.parse_spec(dict(spec), source, prefix="spec")
        absolute = _absolute(parsed, parse_time(meta.get("creationTimestamp")) or now, source)
    except ProfileError:
        return  # the reconciler reports it
    window = _window_doc(absolute, now)
    before = status.get("nextWindow")
    if window == before:
        return
    patch.status["nextWindow"] = window
    for message, reason in profile_resources.window_events(before, window):
        post(body, "Normal", reason, message)
