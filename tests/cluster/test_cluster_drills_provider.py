"""The simulated provider as a Kubernetes Service (chart values `provider.*`), through the pod
runner: two `llmsim serve` replicas behind one Service share one rate-limit bucket through a
Redis pod, so a burst from a client pod gets exactly the profile's requests-per-minute (plus
what refills during the burst) answered across both replicas, not twice that."""

from __future__ import annotations

import json
import math

from chart_release import CHART, helm
from kubeapi import PODS, Kube
from podrunner_drills import DRILLS, apply, running_pod
from podrunner_proc import PodNode

RPM = 20
BURST = 30
PROVIDER = "app.kubernetes.io/component=provider"

CLIENT = """
import json, os, time, urllib.request, urllib.error
body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}).encode()
codes = []
began = time.time()
for _ in range(int(os.environ["N"])):
    req = urllib.request.Request(os.environ["TARGET"] + "/v1/chat/completions", data=body,
                                 headers={"Content-Type": "application/json", "Authorization": "Bearer sk-drill",
                                          "Connection": "close"})
    try:
        with urllib.request.urlopen(req, timeout=10) as rsp:
            codes.append(rsp.status)
    except urllib.error.HTTPError as exc:
        codes.append(exc.code)
elapsed = time.time() - began
served = {}
for ip in os.environ["REPLICAS"].split(","):
    text = urllib.request.urlopen(f"http://{ip}:8080/metrics", timeout=5).read().decode()
    served[ip] = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("llmsim_requests_total{"))
print(json.dumps({"codes": codes, "elapsed": elapsed, "served": served}), flush=True)
"""


def render_provider(namespace: str, kube: Kube) -> str:
    """The chart's provider templates, rendered as GitOps tools do (`helm template`)."""
    return helm(
        kube.plane, "template", "llmsim", str(CHART), "--namespace", namespace,
        "--values", str(DRILLS / "provider" / "values.yaml"), "--show-only", "templates/provider.yaml",
    ).stdout  # fmt: skip


def test_two_provider_replicas_share_one_rate_limit_through_redis(kube: Kube, pod_node: PodNode) -> None:
    ns = pod_node.namespace("provider")
    apply(kube, ns, DRILLS / "provider" / "redis.yaml", kustomize=False)
    running_pod(pod_node, ns, "app.kubernetes.io/name=redis")
    kube.plane.kubectl("apply", "-n", ns, "-f", "-", input_text=render_provider(ns, kube))

    def two_ready() -> list[str] | None:
        pods = kube.list(PODS, ns, PROVIDER)
        ready = [
            p["status"]["podIP"]
            for p in pods
            if any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in (p.get("status") or {}).get("conditions") or []
            )
        ]
        return ready if len(ready) == 2 else None

    replicas = kube.wait(two_ready, "two provider replicas Ready", 90)
    # the Service's endpoints follow readiness (EndpointSlice controller), then the runner's proxy
    kube.wait(
        lambda: sum(len(e["addresses"]) for s in kube.list("discovery.k8s.io/v1/endpointslices", ns)
                    for e in s.get("endpoints") or [] if (e.get("conditions") or {}).get("ready")) >= 3 or None,
        "endpoints ready",
    )  # fmt: skip
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "burst"},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "c",
                    "image": "llmsim-drills/app:1",
                    "command": ["python", "-c", CLIENT],
                    "env": [
                        {"name": "TARGET", "value": "http://llmsim-provider"},
                        {"name": "N", "value": str(BURST)},
                        {"name": "REPLICAS", "value": ",".join(replicas)},
                    ],
                }
            ],
        },
    }
    kube.create(PODS, ns, pod)
    done = pod_node.wait_pod(ns, "burst", "Terminal", timeout_s=120)
    log = pod_node.logs(ns, "burst")
    assert done["status"]["phase"] == "Succeeded", log
    result = json.loads(log.strip().splitlines()[-1])
    ok = result["codes"].count(200)
    limited = result["codes"].count(429)
    refilled = math.ceil(result["elapsed"] * RPM / 60)
    assert ok + limited == BURST, result["codes"]
    assert RPM <= ok <= RPM + refilled, (ok, result["elapsed"])  # per-replica buckets would answer all 30
    assert all(n > 0 for n in result["served"].values()), result["served"]  # both replicas answered
    assert sum(result["served"].values()) == BURST
