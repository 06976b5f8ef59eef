"""Small helpers shared by the handlers (no decorators here)."""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import kopf

from llmsim_operator import constants as c
from llmsim_operator import k8s, metrics
from llmsim_operator.resources import ca, sidecar_access
from llmsim_operator.settings import OperatorSettings

SETTINGS_KEY = "llmsim_settings"
REPORTED_KEY = "llmsim_reported_missing"
"""memo: uids of pods already flagged as missing the sidecar (a set shared by all handlers)."""
CA_NAMESPACES_KEY = "llmsim_ca_namespaces"
"""memo: namespaces whose CA Secret the housekeeping loop keeps fresh."""
SCENARIOS_KEY = "llmsim_scenarios"
"""memo: (namespace, name) of the LoadScenarios the housekeeping loop ticks."""
COUNTS_KEY = "llmsim_pod_counts"
"""memo: last (pods, podsMissingSidecar) written per (namespace, profile)."""
PROFILE_CACHE_KEY = "llmsim_profile_cache"
"""memo: the ProfileCache the webhook decides with (every replica has one; see profile_cache.py)."""
PEERING_MISSING_KEY = "llmsim_peering_missing"
"""memo: True while the peering object is missing (the housekeeping loop looks again and warns)."""
WRITE_ATTEMPTS = 5
"""Rounds of read, plan, conditional write before a Secret update gives up (kopf retries later)."""
ACCESS_KEY = "llmsim_sidecar_access"
"""memo: (namespace, service account) pairs already bound to the sidecars' Role."""
PAUSED_NAMESPACES_KEY = "llmsim_paused_namespaces"
"""memo: namespace -> the kill-switch reason while it is paused, None once seen unpaused."""
SHARED_KEYS = {
    REPORTED_KEY: set, CA_NAMESPACES_KEY: set, SCENARIOS_KEY: set, COUNTS_KEY: dict, ACCESS_KEY: set,
    PAUSED_NAMESPACES_KEY: dict,
}  # fmt: skip


def settings_of(memo: Any) -> OperatorSettings:
    """The operator settings stored in kopf's memo at start-up."""
    found = memo.get(SETTINGS_KEY) if hasattr(memo, "get") else None
    if isinstance(found, OperatorSettings):
        return found
    return OperatorSettings()


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def system_bundle() -> bytes:
    """The CA bundle of the operator's image, included in the apps' trust bundle."""
    candidates: list[str] = []
    try:
        import certifi

        candidates.append(certifi.where())
    except ImportError:  # pragma: no cover
        pass
    paths = ssl.get_default_verify_paths()
    candidates += [p for p in (paths.cafile, paths.openssl_cafile) if p]
    for candidate in candidates:
        path = Path(candidate)
        if path.is_file():
            return path.read_bytes()
    return b""


def ensure_ca_secret(namespace: str, settings: OperatorSettings, now: dt.datetime) -> bool:
    """Create or rotate the namespace's sidecar CA Secret; True when it was (re)written. A write
    that conflicts (another replica, during a failover) reads again rather than overwrite."""
    for _ in range(WRITE_ATTEMPTS):
        existing = k8s.read_secret(namespace, settings.ca_secret)
        body = ca.plan(
            existing,
            settings.ca_secret,
            namespace,
            now,
            settings.ca_days,
            dt.timedelta(days=settings.renew_before_days),
            system_bundle(),
        )
        if body is None:
            return False
        if k8s.write_secret(body, existing):
            metrics.CERT_ROTATIONS.labels("sidecar-ca").inc()
            return True
    raise kopf.TemporaryError(
        f"Secret {namespace}/{settings.ca_secret} kept changing while being written", delay=k8s.RETRY_DELAY_S
    )


def status_dict(model: Any) -> dict[str, Any]:
    out: dict[str, Any] = model.model_dump(mode="json", by_alias=True, exclude_none=True)
    return out


def post(body: Any, kind: str, reason: str, message: str) -> None:
    """A Kubernetes Event on `body` (best effort: events never fail a handler)."""
    try:
        if kind == "Warning":
            kopf.event(body, type="Warning", reason=reason, message=message)
        else:
            kopf.event(body, type="Normal", reason=reason, message=message)
    except Exception:  # an event that cannot be queued is not worth a retry
        pass


def ensure_sidecar_access(namespace: str, service_accounts: Iterable[str] = ()) -> None:
    """The namespace's admin-token Secret (created once), the sidecars' Role, and a RoleBinding of
    it that names at least `service_accounts` (subjects are only ever added)."""
    k8s.create_secret_if_missing(sidecar_access.admin_secret(namespace))
    k8s.apply_role(sidecar_access.role(namespace))
    for _ in range(WRITE_ATTEMPTS):
        existing = k8s.read_role_binding(namespace, c.SIDECAR_ACCESS_NAME)
        bound = sidecar_access.bound_service_accounts(existing, namespace)
        wanted = bound | set(service_accounts)
        if existing is not None and wanted == bound:
            return
        if k8s.write_role_binding(sidecar_access.role_binding(namespace, wanted), existing):
            return
    raise kopf.TemporaryError(
        f"RoleBinding {namespace}/{c.SIDECAR_ACCESS_NAME} kept changing while being written",
        delay=k8s.RETRY_DELAY_S,
    )
