"""Drills of the live-traffic safety mechanisms (the sidecar watching its own SimulationProfile
through the API, wall-clock fault windows), through the pod runner: a fault window with an absolute
`startAt` opens and closes on every replica at the same moment (within one request interval of the
app), and `paused: true` reaches the sidecar through its watch of the profile within a bound that
does not include the ConfigMap volume's sync (measured: a fraction of a second), as does deleting
the profile."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
from kubeapi import PODS, PROFILES, Kube
from operator_proc import OperatorProcess
from podrunner_drills import DRILLS, apply, apply_profile_first, records, running_pod, wait_records
from podrunner_proc import PodNode

UPSTREAM = "answered by the upstream provider"
SIMULATED = "simulated by the llmsim sidecar"
MEASURED: dict[str, Any] = {}


@pytest.fixture(scope="module", autouse=True)
def report() -> Any:
    yield
    print("\nsafety drill measurements:", MEASURED)


def rfc3339(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def two_chat_pods(kube: Kube, node: PodNode, ns: str) -> list[str]:
    kube.plane.kubectl("scale", "deployment/chat", "-n", ns, "--replicas=2")

    def ready() -> list[str] | None:
        pods = [p for p in kube.list(PODS, ns, "app.kubernetes.io/name=chat") if any(
            c["type"] == "Ready" and c["status"] == "True" for c in (p.get("status") or {}).get("conditions") or [])]  # fmt: skip
        return [p["metadata"]["name"] for p in pods] if len(pods) == 2 else None

    pods: list[str] = kube.wait(ready, "two chat pods Ready", 60)
    for pod in pods:
        wait_records(node, ns, pod, 1, where=lambda r: "error" not in r)
    return pods


def test_an_absolute_window_opens_and_closes_on_every_pod_at_the_same_moment(
    kube: Kube, operator: OperatorProcess, pod_node: PodNode
) -> None:
    ns = pod_node.namespace("window")
    apply_profile_first(kube, ns)
    apply(kube, ns, DRILLS / "base")
    running_pod(pod_node, ns)
    pods = two_chat_pods(kube, pod_node, ns)
    start = time.time() + 6.0
    window = {"fault": "server_error", "startAt": rfc3339(start), "durationS": 3, "probability": 1.0}
    kube.patch(PROFILES, ns, "drill", {"spec": {"faults": {"windows": [window]}}})
    end = start + 3.0
    opened, closed = {}, {}
    for pod in pods:
        after = wait_records(pod_node, ns, pod, 1, 30, where=lambda r: r["t"] >= end and "error" not in r)
        recs = [r for r in records(pod_node, ns, pod) if start - 2 <= r["t"] <= after[0]["t"]]
        failed = [r for r in recs if "error" in r]
        assert failed, recs
        assert all(start - 0.8 <= r["t"] < end for r in failed), failed  # only inside the window
        opened[pod] = failed[0]["t"] - start
        closed[pod] = after[0]["t"] - end
    MEASURED["window: first failure after startAt s"] = [round(v, 2) for v in opened.values()]
    MEASURED["window: first success after the end s"] = [round(v, 2) for v in closed.values()]
    assert all(v < 1.5 for v in opened.values()) and all(v < 1.5 for v in closed.values())


def test_the_kill_switch_reaches_the_sidecars_through_their_watch(
    kube: Kube, operator: OperatorProcess, pod_node: PodNode
) -> None:
    ns = pod_node.namespace("watch")
    apply_profile_first(kube, ns)
    apply(kube, ns, DRILLS / "overlays" / "kill-switch")
    pod = running_pod(pod_node, ns)["metadata"]["name"]
    running_pod(pod_node, ns, "app.kubernetes.io/name=upstream")
    wait_records(
        pod_node, ns, pod, 2, where=lambda r: bool(r.get("text")) and SIMULATED.startswith(r["text"])
    )
    flipped = time.time()
    kube.plane.kubectl(
        "patch", "simprofile", "drill", "-n", ns, "--type=merge", "-p", '{"spec":{"paused":true}}'
    )
    (first,) = wait_records(
        pod_node,
        ns,
        pod,
        1,
        30,
        where=lambda r: r["t"] >= flipped and UPSTREAM.startswith(r.get("text") or "-"),
    )[:1]
    MEASURED["kill switch (watch): paused -> passthrough s"] = round(first["t"] - flipped, 2)
    assert first["t"] - flipped < 2.5


def test_deleting_the_profile_stops_perturbation_on_the_running_pod(
    kube: Kube, operator: OperatorProcess, pod_node: PodNode
) -> None:
    ns = pod_node.namespace("delete")
    apply_profile_first(kube, ns)
    apply(kube, ns, DRILLS / "overlays" / "kill-switch")
    pod = running_pod(pod_node, ns)["metadata"]["name"]
    running_pod(pod_node, ns, "app.kubernetes.io/name=upstream")
    wait_records(
        pod_node, ns, pod, 2, where=lambda r: bool(r.get("text")) and SIMULATED.startswith(r["text"])
    )
    deleted = time.time()
    kube.plane.kubectl("delete", "simprofile", "drill", "-n", ns)
    (first,) = wait_records(
        pod_node,
        ns,
        pod,
        1,
        30,
        where=lambda r: r["t"] >= deleted and UPSTREAM.startswith(r.get("text") or "-"),
    )[:1]
    MEASURED["delete profile -> passthrough s"] = round(first["t"] - deleted, 2)
    later = wait_records(pod_node, ns, pod, 3, 30, where=lambda r: r["t"] >= first["t"])
    assert all(UPSTREAM.startswith(r.get("text") or "-") for r in later), later  # it stays passed through
    assert first["t"] - deleted < 5.0
