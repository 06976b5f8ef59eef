"""The kopf peering object the replicas meet in.

Under peering (the default, and what the chart runs), kopf keeps every watch paused until it has
seen the peering object, and says so only at DEBUG level ("peering CRD is missing", "Keep-alive
... not found"). An operator started without it would look alive and reconcile nothing, so the
operator checks for it and tells the user, at WARNING, what to do.
"""

from __future__ import annotations

from llmsim_operator import k8s
from llmsim_operator.settings import OperatorSettings

KOPF_GROUP = "kopf.dev"
KOPF_VERSION = "v1"


def _kind(settings: OperatorSettings) -> tuple[str, str]:
    """(plural, kind) of the peering resource: namespaced when the operator watches namespaces."""
    return (
        ("kopfpeerings", "KopfPeering")
        if settings.watch_namespaces
        else ("clusterkopfpeerings", "ClusterKopfPeering")
    )


def missing(settings: OperatorSettings) -> list[str]:
    """What is missing for peering under LLMSIM_OPERATOR_PEERING (empty: nothing; always empty
    standalone)."""
    if settings.standalone:
        return []
    plural, kind = _kind(settings)
    if not k8s.crd_exists(f"{plural}.{KOPF_GROUP}"):
        return [f"the CustomResourceDefinition {plural}.{KOPF_GROUP}"]
    scopes: list[str | None] = list(settings.watch_namespaces) or [None]
    return [
        f"{kind} {settings.peering!r}" + (f" in namespace {ns}" if ns else "")
        for ns in scopes
        if not k8s.custom_object_exists(KOPF_GROUP, KOPF_VERSION, plural, settings.peering, ns)
    ]


def advice(settings: OperatorSettings, absent: list[str]) -> str:
    """The WARNING for `absent` (from `missing`): what happens and the two ways out."""
    _, kind = _kind(settings)
    where = "" if not settings.watch_namespaces else " -n NAMESPACE"
    return (
        f"peering {settings.peering!r}: {', '.join(absent)} does not exist, so this operator waits for "
        "its peers and reconciles nothing (the webhook still answers). Either create it (the Helm chart "
        f"does, with operator.peering.create=true; by hand: `kubectl apply{where} -f charts/llmsim/crds/"
        f"kopf-peering.yaml` for the CRDs, then a {kind} named {settings.peering!r}), or run a single "
        "replica without peering: `llmsim operator --standalone` or LLMSIM_OPERATOR_STANDALONE=true."
    )
