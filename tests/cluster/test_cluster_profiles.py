"""SimulationProfile lifecycle against the real API server, reconciled by `llmsim operator` running
with the chart's ServiceAccount: Ready with observedGeneration, the owned ConfigMap, Events, updates
re-rendered, deletion through kube-controller-manager's garbage collector, and namespaces that
finish terminating."""

from __future__ import annotations

from typing import Any

import yaml
from cluster_objects import RECONCILE_S, profile, ready
from kubeapi import CONFIGMAPS, NAMESPACES, PROFILES, SECRETS, Kube
from operator_proc import OperatorProcess

from llmsim_operator import constants as c


def rendered(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    cm = kube.get(CONFIGMAPS, namespace, f"llmsim-profile-{name}-cfg")
    doc: dict[str, Any] = yaml.safe_load(cm["data"][c.PROFILE_FILE])
    return doc


def test_a_profile_becomes_ready_with_an_owned_configmap_events_and_a_ca(
    kube: Kube, operator: OperatorProcess, namespace: str
) -> None:
    kube.create(
        PROFILES, namespace, profile("happy", seed=7, latency={"ttftMs": {"type": "constant", "value": 120}})
    )
    found = ready(kube, namespace, "happy")
    status = found["status"]
    assert status["configMap"] == "llmsim-profile-happy-cfg"
    conditions = {cond["type"]: cond for cond in status["conditions"]}
    assert conditions["Ready"]["status"] == "True" and conditions["Ready"]["observedGeneration"] == 1
    assert conditions["Invalid"]["status"] == "False"

    cm = kube.get(CONFIGMAPS, namespace, "llmsim-profile-happy-cfg")
    (owner,) = cm["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == (
        "SimulationProfile",
        "happy",
        found["metadata"]["uid"],
    )
    assert owner.get("controller") is True and owner.get("blockOwnerDeletion") is True
    doc = rendered(kube, namespace, "happy")
    assert doc["metadata"]["name"] == "happy" and doc["spec"]["seed"] == 7

    assert kube.find(SECRETS, namespace, "llmsim-ca") is not None  # the sidecars' CA
    kube.wait(
        lambda: any(
            e["reason"] == "Ready" and e["type"] == "Normal" for e in kube.events(namespace, "happy")
        ),
        "a Ready event",
    )


def test_an_update_is_re_rendered_at_the_new_generation(
    kube: Kube, operator: OperatorProcess, namespace: str
) -> None:
    kube.create(PROFILES, namespace, profile("tuned", seed=1))
    ready(kube, namespace, "tuned")
    kube.patch(PROFILES, namespace, "tuned", {"spec": {"seed": 2}})
    ready(kube, namespace, "tuned", generation=2)
    assert rendered(kube, namespace, "tuned")["spec"]["seed"] == 2
    kube.wait(
        lambda: any(e["reason"] == "Updated" for e in kube.events(namespace, "tuned")), "an Updated event"
    )


def test_what_the_crd_admits_but_the_model_rejects_ends_invalid_with_the_field_named(
    kube: Kube, operator: OperatorProcess, namespace: str
) -> None:
    # Fault rates that sum to more than 1: each is within the CRD's bounds, the model refuses the sum.
    kube.create(
        PROFILES, namespace, profile("too-faulty", faults={"rates": {"rate_limit": 0.7, "server_error": 0.6}})
    )

    def invalid() -> dict[str, Any] | None:
        status = kube.get(PROFILES, namespace, "too-faulty").get("status") or {}
        return status if status.get("phase") == "Invalid" else None

    status = kube.wait(invalid, "phase Invalid", RECONCILE_S)
    condition = next(cond for cond in status["conditions"] if cond["type"] == "Invalid")
    assert condition["status"] == "True" and condition["reason"] == "InvalidSpec"
    assert condition["message"].startswith("spec.faults: rates:")  # the field, then the problem
    assert kube.find(CONFIGMAPS, namespace, "llmsim-profile-too-faulty-cfg") is None
    kube.wait(
        lambda: any(e["reason"] == "InvalidSpec" for e in kube.events(namespace, "too-faulty")), "event"
    )


def test_deleting_a_profile_removes_its_configmap(
    kube: Kube, operator: OperatorProcess, namespace: str
) -> None:
    kube.create(PROFILES, namespace, profile("short-lived"))
    ready(kube, namespace, "short-lived")
    kube.delete(PROFILES, namespace, "short-lived")
    kube.wait_gone(PROFILES, namespace, "short-lived", RECONCILE_S)  # the finalizer was released
    kube.wait_gone(CONFIGMAPS, namespace, "llmsim-profile-short-lived-cfg", RECONCILE_S)


def test_the_garbage_collector_removes_the_configmap_of_a_profile_deleted_while_the_operator_is_down(
    kube: Kube, operators: Any, namespace: str
) -> None:
    """The owner reference alone: kube-controller-manager deletes the dependent ConfigMap."""
    shared = operators.running_shared()
    kube.create(PROFILES, namespace, profile("orphaned"))
    ready(kube, namespace, "orphaned")
    operators.stop_shared()
    # Without the operator nothing releases its finalizer: remove it as an administrator would.
    kube.patch(PROFILES, namespace, "orphaned", {"metadata": {"finalizers": None}})
    kube.delete(PROFILES, namespace, "orphaned")
    kube.wait_gone(PROFILES, namespace, "orphaned")
    kube.wait_gone(CONFIGMAPS, namespace, "llmsim-profile-orphaned-cfg", timeout_s=RECONCILE_S)
    assert not shared.running()


def test_a_namespace_with_profiles_finishes_terminating(
    kube: Kube, operator: OperatorProcess, new_namespace: Any
) -> None:
    namespace = new_namespace("doomed")
    kube.create(PROFILES, namespace, profile("p1"))
    ready(kube, namespace, "p1")
    kube.delete(NAMESPACES, None, namespace)
    kube.wait_gone(NAMESPACES, None, namespace, timeout_s=60)
