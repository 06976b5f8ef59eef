"""Pods: which run which profile, and which asked for the sidecar but started without it
(`failurePolicy: Ignore` admits pods while the webhook is down)."""

from __future__ import annotations

from typing import Any

import kopf

from llmsim_operator import constants as c
from llmsim_operator import k8s, metrics
from llmsim_operator.handlers.common import (
    ACCESS_KEY,
    COUNTS_KEY,
    REPORTED_KEY,
    ensure_sidecar_access,
    post,
    settings_of,
)

_FINISHED = ("Succeeded", "Failed")


def _alive(status: Any) -> bool:
    return (status or {}).get("phase") not in _FINISHED


def _has_sidecar(spec: Any) -> bool:
    containers = list((spec or {}).get("initContainers") or []) + list((spec or {}).get("containers") or [])
    return any(ct.get("name") == c.SIDECAR_NAME for ct in containers)


def missing_sidecar(
    annotations: kopf.Annotations,
    spec: kopf.Spec,
    status: kopf.Status,
    namespace: str | None,
    memo: Any,
    **_: Any,
) -> bool:
    """An opted-in (annotated) pod that runs without the sidecar."""
    if str(annotations.get(c.INJECT_ANNOTATION, "")).lower() == "false":
        return False
    if not settings_of(memo).may_inject(namespace or ""):
        return False
    return _alive(status) and not _has_sidecar(spec)


def running_sidecar(spec: kopf.Spec, status: kopf.Status, **_: Any) -> bool:
    return _alive(status) and _has_sidecar(spec)


@kopf.index("v1", "pods", annotations={c.INJECTED_ANNOTATION: kopf.PRESENT}, when=running_sidecar)
def pods_by_profile(
    name: str, namespace: str | None, annotations: kopf.Annotations, **_: Any
) -> dict[Any, Any]:
    return {(namespace, annotations[c.INJECTED_ANNOTATION]): name}


@kopf.index("v1", "pods", annotations={c.PROFILE_ANNOTATION: kopf.PRESENT}, when=missing_sidecar)
def pods_missing_sidecar(
    name: str, namespace: str | None, annotations: kopf.Annotations, **_: Any
) -> dict[Any, Any]:
    return {(namespace, annotations[c.PROFILE_ANNOTATION]): name}


@kopf.on.event("v1", "pods", annotations={c.PROFILE_ANNOTATION: kopf.PRESENT}, when=missing_sidecar)
def flag_missing_sidecar(
    body: kopf.Body, uid: str, annotations: kopf.Annotations, memo: kopf.Memo, **_: Any
) -> None:
    """One warning Event per pod that should have the sidecar but does not."""
    reported = memo.setdefault(REPORTED_KEY, set())
    if uid in reported or len(reported) > 100_000:
        return
    reported.add(uid)
    post(
        body,
        "Warning",
        "SidecarMissing",
        f"asks for SimulationProfile {annotations[c.PROFILE_ANNOTATION]!r} but runs without the sidecar "
        "(the injection webhook was unavailable when it was created); recreate the pod to inject it",
    )


def _recount(namespace: str, profile_names: set[str], memo: Any, kwargs: dict[str, Any]) -> None:
    """Write `status.pods` / `status.podsMissingSidecar` of the affected profiles when they change."""
    counts_cache: dict[tuple[str, str], tuple[int, int]] = memo.get(COUNTS_KEY, {})
    for profile in sorted(profile_names):
        key = (namespace, profile)
        counts = (
            len(list(kwargs["pods_by_profile"].get(key, []))),
            len(list(kwargs["pods_missing_sidecar"].get(key, []))),
        )
        if counts_cache.get(key) == counts:
            continue
        k8s.patch_status(c.PROFILES, namespace, profile, {"pods": counts[0], "podsMissingSidecar": counts[1]})
        metrics.PODS_MISSING_SIDECAR.labels(namespace, profile).set(counts[1])
        counts_cache[key] = counts


@kopf.on.event("v1", "pods", annotations={c.INJECTED_ANNOTATION: kopf.PRESENT})
def recount_injected(
    annotations: kopf.Annotations, namespace: str | None, memo: kopf.Memo, **kwargs: Any
) -> None:
    """Pods running a profile's sidecar came or went."""
    _recount(namespace or "", {annotations[c.INJECTED_ANNOTATION]}, memo, kwargs)


@kopf.on.event("v1", "pods", annotations={c.PROFILE_ANNOTATION: kopf.PRESENT})
def recount_requested(
    annotations: kopf.Annotations, namespace: str | None, memo: kopf.Memo, **kwargs: Any
) -> None:
    """Pods asking for a profile came or went (with or without the sidecar)."""
    _recount(namespace or "", {annotations[c.PROFILE_ANNOTATION]}, memo, kwargs)


@kopf.on.event("v1", "pods", annotations={c.INJECTED_ANNOTATION: kopf.PRESENT}, when=running_sidecar)
def grant_sidecar_access(spec: kopf.Spec, namespace: str | None, memo: kopf.Memo, **_: Any) -> None:
    """Bind the pod's ServiceAccount to the namespace's sidecar Role (read its profile, post Events),
    so that its sidecar can watch the profile. Once per (namespace, ServiceAccount)."""
    account = str(spec.get("serviceAccountName") or "default")
    done = memo.setdefault(ACCESS_KEY, set())
    key = (namespace or "", account)
    if key in done:
        return
    ensure_sidecar_access(namespace or "", {account})
    done.add(key)
