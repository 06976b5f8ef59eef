"""The failover drill (examples/drills/failover, a shortened examples/failover): two provider
Services, the primary overloaded for 3 s of every 12 s, a gateway that fails over to the slower
secondary, and a LoadScenario through the gateway. The load's clients see no failed request
(error-rate SLO met in every window), the per-window median-TTFT verdicts show the outage windows
(and only those: the windows outside them pass, and so does the run as a whole), and the gateway's /stats (judged by
examples/failover/check_failover.py) show traffic on both providers and failures on the primary."""

from __future__ import annotations

import json
import sys
from typing import Any

from kubeapi import CONFIGMAPS, PODS, SCENARIOS, Kube
from operator_proc import OperatorProcess
from podrunner_drills import DRILLS, apply, running_pod
from podrunner_proc import REPO, PodNode

sys.path.insert(0, str(REPO / "examples" / "failover"))
import check_failover

NS = "llmsim-failover"
STATS = "import urllib.request; print(urllib.request.urlopen('http://llm-gateway/stats', timeout=5).read().decode())"


def test_failover_the_gateway_hides_the_primarys_outage_and_the_windows_show_it(
    kube: Kube, operator: OperatorProcess, pod_node: PodNode
) -> None:
    ns = pod_node.namespace(name=NS)
    apply(kube, ns, DRILLS / "failover")
    for name in ("provider-primary", "provider-secondary", "llm-gateway"):
        running_pod(pod_node, ns, f"app.kubernetes.io/name={name}")

    def finished() -> dict[str, Any] | None:
        status = kube.get(SCENARIOS, ns, "failover-drill").get("status") or {}
        if status.get("phase") == "Failed":
            raise AssertionError(f"the failover LoadScenario failed: {status}")
        return status if status.get("phase") in ("Succeeded", "Failed") and status.get("summary") else None

    status = kube.wait(finished, "the failover LoadScenario finished", 90)
    assert status["phase"] == "Succeeded", status
    summary = status["summary"]
    assert summary["requests"] > 0 and summary["errors"] == 0, summary  # the app saw no failed request
    report = json.loads(kube.get(CONFIGMAPS, ns, status["reportConfigMap"])["data"]["report.json"])
    objectives = {o["metric"]: o for o in report["slo"]["objectives"]}
    assert objectives["error_rate"]["windows_failed"] == []
    ttft = objectives["ttft_ms"]
    assert ttft["windows_failed"], ttft  # the outage shows: answers came from the slower secondary
    assert len(ttft["windows_failed"]) < ttft["windows_evaluated"], ttft  # ...only while it lasted
    assert status["slo"] == "Met"  # over the whole run the median answer still came from the primary
    kube.create(PODS, ns, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "stats"},
                           "spec": {"restartPolicy": "Never", "containers": [
                               {"name": "c", "image": "llmsim-drills/app:1", "command": ["python", "-c", STATS]}]}})  # fmt: skip
    pod_node.wait_pod(ns, "stats", "Succeeded", timeout_s=30)
    stats = json.loads(pod_node.logs(ns, "stats").strip().splitlines()[-1])
    assert check_failover.verdict(stats) == [], stats
