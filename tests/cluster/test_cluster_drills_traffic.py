"""Chaos drills on the real control plane, through the pod runner: `kubectl apply -k
examples/drills/...`, the webhook injects the sidecar, the pod runner runs the pod (native
sidecar first, then the app), and the app's official SDK, pointed at the provider's public API,
gets the profile's simulated streams. Then the kill switch (`paused: true`) hands the traffic
back to the real (in-cluster) provider within a measured bound, and a latency edit reaches the
running sidecar without a restart. In perturb mode the same app gets the in-cluster provider's
own answers, later by the profile's added TTFT, some replaced by the profile's fault. An
absolute `until` ends the perturbation on every replica at the same moment.

Timing tolerances: the profile's TTFT and ITL are constants, so the only error is overhead
(SDK, proxy, TLS, a loaded 2-core machine): the median TTFT of the requests after the first must
lie in [TTFT, TTFT + TTFT_SLACK_MS] and the median ITL in [ITL - 2, ITL + ITL_SLACK_MS]."""

from __future__ import annotations

import time
from typing import Any

import pytest
from kubeapi import PODS, PROFILES, Kube
from operator_proc import OperatorProcess
from podrunner_drills import DRILLS, apply, apply_profile_first, records, running_pod, timing, wait_records
from podrunner_proc import PodNode

from llmsim_operator import constants as c

TTFT_MS, ITL_MS = 300.0, 20.0
TTFT_SLACK_MS, ITL_SLACK_MS = 150.0, 10.0
SIMULATED = "simulated by the llmsim sidecar"
UPSTREAM = "answered by the upstream provider"
MEASURED: dict[str, Any] = {}
"""Numbers the drills measured (printed at the end of the module, for the report)."""


@pytest.fixture(scope="module", autouse=True)
def report() -> Any:
    yield
    print("\ndrill measurements:", MEASURED)


class Drills:
    """The overlays deployed so far in this module, one namespace each: the drills that only
    change a profile reuse the pods another drill started (as a team would, drill after drill)."""

    def __init__(self, kube: Kube, node: PodNode) -> None:
        self.kube, self.node = kube, node
        self.deployed: dict[str, tuple[str, str]] = {}

    def __call__(self, overlay: str, *also: str) -> tuple[str, str]:
        """(namespace, chat pod) of `overlay`, applied after its profile; `also`: selectors of
        other pods of the overlay to wait for."""
        if overlay not in self.deployed:
            ns = self.node.namespace(overlay.rsplit("/", 1)[-1])
            apply_profile_first(self.kube, ns)
            apply(self.kube, ns, DRILLS / overlay)
            pod = running_pod(self.node, ns)
            for selector in also:
                running_pod(self.node, ns, selector)
            self.deployed[overlay] = (ns, pod["metadata"]["name"])
        return self.deployed[overlay]


@pytest.fixture(scope="module")
def drills(kube: Kube, pod_node: PodNode) -> Drills:
    return Drills(kube, pod_node)


def sidecar_names(pod: dict[str, Any]) -> list[str]:
    return [s["name"] for s in pod["status"].get("initContainerStatuses") or []]


@pytest.mark.parametrize(
    ("overlay", "capture"),
    [
        pytest.param("base", "proxy", id="openai-proxy"),
        pytest.param("overlays/base-url", "base-url", id="openai-base-url"),
        pytest.param("overlays/host-alias", "host-alias", id="openai-host-alias"),
        pytest.param("overlays/anthropic", "proxy", id="anthropic-proxy"),
    ],
)
def test_simulate_the_apps_sdk_gets_the_profiles_streams(
    kube: Kube, operator: OperatorProcess, pod_node: PodNode, drills: Drills, overlay: str, capture: str
) -> None:
    ns, name = drills(overlay)
    pod = kube.get(PODS, ns, name)
    assert pod["metadata"]["annotations"][c.INJECTED_ANNOTATION] == "drill"
    assert sidecar_names(pod) == [c.CA_INIT_NAME, c.SIDECAR_NAME]
    recs = wait_records(pod_node, ns, pod["metadata"]["name"], 6)
    assert [r for r in recs if "error" in r] == []
    assert all(SIMULATED.startswith(r["text"].strip()) and r["text"] for r in recs), recs[0]["text"]
    ttft, itl = timing(recs[1:])
    MEASURED[f"simulate {overlay}: TTFT error ms"] = round(ttft - TTFT_MS, 1)
    MEASURED[f"simulate {overlay}: ITL error ms"] = round(itl - ITL_MS, 2)
    assert TTFT_MS <= ttft <= TTFT_MS + TTFT_SLACK_MS, (capture, ttft)
    assert ITL_MS - 2 <= itl <= ITL_MS + ITL_SLACK_MS, (capture, itl)


def chat_against_upstream(drills: Drills) -> tuple[str, str]:
    """The base drill with the app calling the in-cluster provider (http://upstream/v1), which
    the profile intercepts (`interceptHosts`)."""
    return drills("overlays/kill-switch", "app.kubernetes.io/name=upstream")


def wait_text(
    pod_node: PodNode, ns: str, pod: str, text: str, after: float, timeout_s: float = 30
) -> dict[str, Any]:
    """The first record started after `after` (unix time) whose reply is `text`."""
    (first, *_) = wait_records(
        pod_node,
        ns,
        pod,
        1,
        timeout_s,
        where=lambda r: r["t"] >= after and "error" not in r and text.startswith(r["text"]),
    )
    return first


def test_kill_switch_pausing_the_profile_hands_traffic_back_within_a_bound(
    kube: Kube, operator: OperatorProcess, pod_node: PodNode, drills: Drills
) -> None:
    ns, pod = chat_against_upstream(drills)
    wait_records(pod_node, ns, pod, 2, where=lambda r: r.get("text") and SIMULATED.startswith(r["text"]))
    before = kube.get(PODS, ns, pod)
    flipped = time.time()
    kube.plane.kubectl(
        "patch", "simprofile", "drill", "-n", ns, "--type=merge", "-p", '{"spec":{"paused":true}}'
    )
    passed = wait_text(pod_node, ns, pod, UPSTREAM, flipped)
    pause_s = passed["t"] - flipped
    resumed_at = time.time()
    kube.plane.kubectl(
        "patch", "simprofile", "drill", "-n", ns, "--type=merge", "-p", '{"spec":{"paused":false}}'
    )
    back = wait_text(pod_node, ns, pod, SIMULATED, resumed_at)
    resume_s = back["t"] - resumed_at
    MEASURED["kill switch: paused -> passthrough s"] = round(pause_s, 2)
    MEASURED["kill switch: resumed -> simulated s"] = round(resume_s, 2)
    bound = 5.0 + pod_node.sync_period_s
    assert pause_s < bound and resume_s < bound, (pause_s, resume_s)
    # nothing failed meanwhile, and the pod was never restarted
    window = [r for r in records(pod_node, ns, pod) if flipped <= r["t"] <= back["t"]]
    assert window and [r for r in window if "error" in r] == []
    after = kube.get(PODS, ns, pod)
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    assert [s["restartCount"] for s in after["status"]["containerStatuses"]] == [0]


def test_hot_reload_a_latency_edit_changes_the_apps_ttft_without_a_restart(
    kube: Kube, operator: OperatorProcess, pod_node: PodNode, drills: Drills
) -> None:
    ns, name = drills("base")
    pod = kube.get(PODS, ns, name)
    wait_records(pod_node, ns, name, 3)
    edited = time.time()
    kube.patch(PROFILES, ns, "drill", {"spec": {"latency": {"ttftMs": {"type": "constant", "value": 700}}}})
    first = wait_records(
        pod_node, ns, name, 1, 30, where=lambda r: r["t"] >= edited and (r.get("ttft_ms") or 0) >= 650
    )[0]
    MEASURED["hot reload: edit -> new TTFT s"] = round(first["t"] - edited, 2)
    later = wait_records(pod_node, ns, name, 4, 30, where=lambda r: r["t"] >= first["t"])
    ttft, _ = timing(later)
    MEASURED["hot reload: TTFT error ms after the edit"] = round(ttft - 700, 1)
    assert 700 <= ttft <= 700 + TTFT_SLACK_MS
    assert first["t"] - edited < 5.0 + pod_node.sync_period_s
    after = kube.get(PODS, ns, name)
    assert after["metadata"]["uid"] == pod["metadata"]["uid"]
    statuses = after["status"]["containerStatuses"] + after["status"]["initContainerStatuses"]
    assert all(s["restartCount"] == 0 for s in statuses)


PERTURB = {
    "spec": {
        "mode": "perturb",
        "latency": {"ttftMs": {"type": "constant", "value": 250}, "itlMs": {"type": "constant", "value": 0}},
        "faults": {"rates": {"server_error": 0.4}},
    }
}


def test_perturb_the_real_providers_answers_arrive_later_and_some_fail(
    kube: Kube, operator: OperatorProcess, pod_node: PodNode, drills: Drills
) -> None:
    ns, pod = chat_against_upstream(drills)
    wait_records(
        pod_node, ns, pod, 1, where=lambda r: bool(r.get("text")) and SIMULATED.startswith(r["text"])
    )
    edited = time.time()
    kube.patch(PROFILES, ns, "drill", PERTURB)
    first = wait_text(pod_node, ns, pod, UPSTREAM, edited)
    recs = wait_records(pod_node, ns, pod, 12, 40, where=lambda r: r["t"] >= first["t"])
    answered = [r for r in recs if "error" not in r]
    failed = [r for r in recs if "error" in r]
    assert answered and all(UPSTREAM.startswith(r["text"]) for r in answered)  # the provider's own words
    assert failed and all("InternalServerError" in r["error"] for r in failed)  # the profile's fault
    ttft, _ = timing(answered)
    # the upstream's own TTFT (40 ms) plus the 250 ms the sidecar adds
    MEASURED["perturb: TTFT error ms (upstream 40 + added 250)"] = round(ttft - 290, 1)
    assert 290 <= ttft <= 290 + TTFT_SLACK_MS, ttft


def test_expiry_an_absolute_until_restores_passthrough_on_every_pod_at_the_same_moment(
    kube: Kube, operator: OperatorProcess, pod_node: PodNode, drills: Drills
) -> None:
    ns, _ = chat_against_upstream(drills)
    kube.patch(PROFILES, ns, "drill", {"spec": {"mode": "simulate", "latency": None, "faults": None}})
    kube.plane.kubectl("scale", "deployment/chat", "-n", ns, "--replicas=2")

    def two_pods() -> list[str] | None:
        pods = [p for p in kube.list(PODS, ns, "app.kubernetes.io/name=chat") if any(
            c["type"] == "Ready" and c["status"] == "True" for c in (p.get("status") or {}).get("conditions") or [])]  # fmt: skip
        return [p["metadata"]["name"] for p in pods] if len(pods) == 2 else None

    pods = kube.wait(two_pods, "two chat pods Ready", 60)
    for pod in pods:
        wait_records(
            pod_node, ns, pod, 1, where=lambda r: bool(r.get("text")) and SIMULATED.startswith(r["text"])
        )
    until = time.time() + 6.0
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(until)) + f".{int(until % 1 * 1000):03d}Z"
    kube.patch(PROFILES, ns, "drill", {"spec": {"until": stamp}})
    switched = {pod: wait_text(pod_node, ns, pod, UPSTREAM, until - 3.0, timeout_s=30)["t"] for pod in pods}
    for pod in pods:  # nothing passed through before the expiry, on either pod
        early = [r for r in records(pod_node, ns, pod) if until - 3.0 <= r["t"] < until - 0.05]
        assert early and all(SIMULATED.startswith(r.get("text") or "-") for r in early), early
    lags = [t - until for t in switched.values()]
    MEASURED["expiry: passthrough after until s (per pod)"] = [round(x, 2) for x in lags]
    # each pod's first request after the expiry passes through (a request every ~0.6 s)
    assert all(-0.05 <= lag < 1.5 for lag in lags), lags
    assert max(lags) - min(lags) < 1.5
