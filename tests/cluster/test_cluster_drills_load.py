"""The LoadScenario drill, end to end: `kubectl apply` of a LoadScenario whose target is the
chart's simulated provider Service (2 replicas); the operator creates the indexed Job, the real
job controller its 2 pods, the pod runner runs them (`llmsim load` through
`llmsim_operator.worker`), the operator reads their results through `pods/log` (the runner's
kubelet endpoint), merges them into the status and the report ConfigMap, and `kubectl get
loadscenario` shows achieved RPS, TTFT p95 and the SLO verdict."""

from __future__ import annotations

import json
from typing import Any

from chart_release import CHART, helm
from kubeapi import CONFIGMAPS, JOBS, PODS, SCENARIOS, Kube
from operator_proc import OperatorProcess
from podrunner_drills import DRILLS, apply
from podrunner_proc import PodNode

RPS, DURATION_S, TTFT_MS = 6.0, 10.0, 150.0


def provider_ready(kube: Kube, ns: str, replicas: int) -> None:
    rendered = helm(
        kube.plane, "template", "llmsim", str(CHART), "--namespace", ns,
        "--values", str(DRILLS / "loadscenario" / "values.yaml"), "--show-only", "templates/provider.yaml",
    ).stdout  # fmt: skip
    kube.plane.kubectl("apply", "-n", ns, "-f", "-", input_text=rendered)

    def ready_endpoints() -> int | None:
        slices = kube.list("discovery.k8s.io/v1/endpointslices", ns)
        n = sum(
            1 for s in slices for e in s.get("endpoints") or [] if (e.get("conditions") or {}).get("ready")
        )
        return n if n >= replicas else None

    kube.wait(ready_endpoints, "provider endpoints ready", 90)


def finished(kube: Kube, ns: str, name: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        status = kube.get(SCENARIOS, ns, name).get("status") or {}
        return status if status.get("phase") in ("Succeeded", "Failed") and status.get("summary") else None

    return kube.wait(check, f"LoadScenario {ns}/{name} finished", DURATION_S + 60)


def test_a_loadscenario_runs_its_indexed_workers_and_reports_in_kubectl_get(
    kube: Kube, operator: OperatorProcess, pod_node: PodNode
) -> None:
    ns = pod_node.namespace("load")
    provider_ready(kube, ns, 2)
    apply(kube, ns, DRILLS / "loadscenario" / "loadscenario.yaml", kustomize=False)
    status = finished(kube, ns, "provider-load")
    assert status["phase"] == "Succeeded", status
    assert status["workers"] == 2 and status["workersSucceeded"] == 2
    job = kube.get(JOBS, ns, status["job"])
    assert job["spec"]["completionMode"] == "Indexed" and job["spec"]["parallelism"] == 2
    workers = kube.list(PODS, ns, f"job-name={status['job']}")
    indexes = sorted(
        p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] for p in workers
    )
    assert indexes == ["0", "1"] and all(p["status"]["phase"] == "Succeeded" for p in workers)
    summary = status["summary"]
    expected = RPS * DURATION_S
    assert abs(summary["requests"] - expected) <= 3 * expected**0.5, summary  # Poisson-ish arrivals
    assert summary["errors"] == 0 and status["slo"] == "Met"
    assert TTFT_MS <= summary["ttftMs"]["p95"] <= 400
    report = kube.get(CONFIGMAPS, ns, status["reportConfigMap"])
    merged = json.loads(report["data"]["report.json"])
    assert merged and isinstance(merged, dict)
    table = kube.plane.kubectl("get", "loadscenario", "provider-load", "-n", ns).stdout
    header, row = table.strip().splitlines()
    cells = dict(zip(header.split(), row.split(), strict=False))
    assert cells["PHASE"] == "Succeeded" and cells["SLO"] == "Met"
    assert (
        float(cells["RPS"]) == summary["achievedRps"] and float(cells["TTFT-P95"]) == summary["ttftMs"]["p95"]
    )
