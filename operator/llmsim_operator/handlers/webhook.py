"""The sidecar injection webhooks (paths = handler ids, see constants.py and docs/operator.md).

They never block a pod: every failure is logged and answered with "allowed, unchanged". They decide
with the replica's own ProfileCache, not a kopf index: kopf's indexes stay empty on a replica that
peering keeps paused, and every replica answers the webhook.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from llmsim_operator import constants as c
from llmsim_operator import injection, metrics
from llmsim_operator.handlers.common import PROFILE_CACHE_KEY, settings_of
from llmsim_operator.profile_cache import ProfileCache

log = logging.getLogger("llmsim.operator.webhook")


async def _profiles(memo: Any, namespace: str) -> list[injection.ProfileInfo]:
    cache = memo.get(PROFILE_CACHE_KEY)
    if not isinstance(cache, ProfileCache):
        raise RuntimeError("the profile cache is not running (the operator's start-up did not finish)")
    return await cache.lookup(namespace)


async def _inject(body: Any, patch: kopf.Patch, warnings: list[str], memo: Any, opted_in: bool) -> None:
    try:
        pod = dict(body)
        namespace = str((pod.get("metadata") or {}).get("namespace") or "")
        settings = settings_of(memo)
        profiles = await _profiles(memo, namespace)
        decision = injection.decide(pod, namespace, opted_in, profiles, settings)
        warnings.extend(decision.warnings)
        if not decision.inject:
            metrics.INJECTIONS.labels("skipped").inc()
            log.debug(
                "not injecting %s/%s: %s", namespace, (pod.get("metadata") or {}).get("name"), decision.reason
            )
            return
        mutated = injection.mutate(pod, decision, settings)

        def replace(raw: Any) -> None:
            raw.clear()
            raw.update(mutated)

        patch.fns.append(replace)
        metrics.INJECTIONS.labels("injected").inc()
    except Exception as exc:  # never block a pod (failurePolicy: Ignore semantics)
        metrics.INJECTIONS.labels("error").inc()
        log.exception("injection failed; admitting the pod unchanged")
        warnings.append(f"llmsim: sidecar not injected ({type(exc).__name__})")


@kopf.on.mutate("v1", "pods", id=c.INJECT_NAMESPACE_WEBHOOK_ID, operations={"CREATE"})
async def inject_opted_in_namespace(
    body: kopf.Body,
    patch: kopf.Patch,
    warnings: list[str],
    memo: kopf.Memo,
    **_: Any,
) -> None:
    """Pods of namespaces labelled `llmsim.io/inject=enabled`."""
    await _inject(body, patch, warnings, memo, opted_in=True)


@kopf.on.mutate("v1", "pods", id=c.INJECT_POD_WEBHOOK_ID, operations={"CREATE"})
async def inject_annotated_pod(
    body: kopf.Body,
    patch: kopf.Patch,
    warnings: list[str],
    memo: kopf.Memo,
    **_: Any,
) -> None:
    """Pods elsewhere: only those annotated `llmsim.io/profile: NAME`."""
    await _inject(body, patch, warnings, memo, opted_in=False)
