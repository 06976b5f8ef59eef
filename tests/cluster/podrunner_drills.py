"""What the drills share: applying examples/drills/ with kubectl, waiting for the webhook to know
a profile, finding the app's pod and reading the JSON lines its SDK loop prints."""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cluster_objects import RECONCILE_S, app_pod, ready, sidecars
from kubeapi import PODS, Kube
from podrunner_proc import REPO, PodNode

from llmsim_operator import constants as c

DRILLS = REPO / "examples" / "drills"
CHAT = "app.kubernetes.io/name=chat"


def apply(kube: Kube, namespace: str, target: Path, kustomize: bool = True) -> str:
    """`kubectl apply -k DIR` (or `-f FILE`) into `namespace`, as a user would."""
    result = kube.plane.kubectl("apply", "-k" if kustomize else "-f", str(target), "-n", namespace)
    return result.stdout


def apply_profile_first(kube: Kube, namespace: str, name: str = "drill") -> None:
    """The profile, then wait until the webhook injects with it (pods created before that are
    admitted without a sidecar: the order docs/drills.md tells users to keep)."""
    apply(kube, namespace, DRILLS / "base" / "profile.yaml", kustomize=False)
    ready(kube, namespace, name)
    probe = app_pod("probe", {c.PROFILE_ANNOTATION: name})
    kube.wait(
        lambda: sidecars(kube.create(PODS, namespace, probe, dry_run=True)),
        f"webhook injects {name}",
        RECONCILE_S,
    )


def running_pod(node: PodNode, namespace: str, selector: str = CHAT, timeout_s: float = 90) -> dict[str, Any]:
    """The one Ready pod matching `selector`."""

    def check() -> dict[str, Any] | None:
        pods = [
            p for p in node.kube.list(PODS, namespace, selector) if not p["metadata"].get("deletionTimestamp")
        ]
        for pod in pods:
            conditions = (pod.get("status") or {}).get("conditions") or []
            if any(x["type"] == "Ready" and x["status"] == "True" for x in conditions):
                return pod
        return None

    found: dict[str, Any] = node.kube.wait(check, f"a Ready pod {selector} in {namespace}", timeout_s)
    return found


def records(node: PodNode, namespace: str, pod: str) -> list[dict[str, Any]]:
    """The app's request records so far (one JSON line per request)."""
    out = []
    for line in node.logs(namespace, pod, "app").splitlines():
        if line.startswith("{"):
            doc = json.loads(line)
            if "n" in doc:
                out.append(doc)
    return out


def wait_records(node: PodNode, namespace: str, pod: str, count: int, timeout_s: float = 60,
                 where: Callable[[dict[str, Any]], bool] = lambda r: True) -> list[dict[str, Any]]:  # fmt: skip
    def check() -> list[dict[str, Any]] | None:
        found = [r for r in records(node, namespace, pod) if where(r)]
        return found if len(found) >= count else None

    result: list[dict[str, Any]] = node.kube.wait(check, f"{count} records from {namespace}/{pod}", timeout_s)
    return result


def timing(recs: list[dict[str, Any]]) -> tuple[float, float]:
    """Median TTFT and median mean-ITL (ms) of successful records."""
    ok = [r for r in recs if "error" not in r and r.get("ttft_ms") is not None]
    return statistics.median(r["ttft_ms"] for r in ok), statistics.median(
        r["itl_ms"] for r in ok if r["itl_ms"]
    )
