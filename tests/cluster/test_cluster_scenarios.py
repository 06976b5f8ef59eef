"""LoadScenario against the real API server: the indexed Job of a run (parallelism, completions,
the workers' arguments, the API key from a Secret by reference, the owner reference, resource
limits), deletion, and a cron schedule that starts runs and keeps `historyLimit` of them.

There is no job controller here (running the workers is the next step: a local pod runner), so
the test plays its part: it marks a run's Job complete the way the job controller does."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from cluster_objects import RECONCILE_S
from kubeapi import CONFIGMAPS, JOBS, NAMESPACES, SCENARIOS, SECRETS, Kube
from operator_proc import OperatorProcess

from conftest import Operators
from llmsim_operator.resources import scenario as scenario_resources

KEY_VALUE = "sk-test-never-inline-7c1f"


def load_scenario(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "llmsim.io/v1alpha1",
        "kind": "LoadScenario",
        "metadata": {"name": name},
        "spec": {
            "target": {
                "url": "http://chat-gateway.team-a.svc:8080",
                "provider": "openai",
                "model": "gpt-4o-mini",
            },
            "durationS": 60,
            "pattern": {"type": "steady", "rps": 4},
            **spec,
        },
    }


def status_of(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    return kube.get(SCENARIOS, namespace, name).get("status") or {}


def job_of(kube: Kube, namespace: str, name: str, timeout_s: float = RECONCILE_S) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        job = status_of(kube, namespace, name).get("job")
        return kube.find(JOBS, namespace, job) if job else None

    return kube.wait(check, f"the Job of LoadScenario {namespace}/{name}", timeout_s)


def finish(kube: Kube, job: dict[str, Any]) -> None:
    """What the job controller writes when every index succeeded."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    stamp = now.isoformat().replace("+00:00", "Z")
    n = job["spec"]["completions"]
    conditions = [
        {"type": t, "status": "True", "reason": "CompletionsReached", "lastProbeTime": stamp, "lastTransitionTime": stamp}
        for t in ("SuccessCriteriaMet", "Complete")
    ]  # fmt: skip
    status = {
        "startTime": stamp,
        "completionTime": stamp,
        "succeeded": n,
        "completedIndexes": "0" if n == 1 else f"0-{n - 1}",
        "uncountedTerminatedPods": {},
        "ready": 0,
        "conditions": conditions,
    }
    kube.patch(JOBS, job["metadata"]["namespace"], job["metadata"]["name"], {"status": status}, sub="status")


@pytest.fixture()
def api_key(kube: Kube, namespace: str) -> str:
    kube.create(SECRETS, namespace, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "llm-key"},
                                     "stringData": {"token": KEY_VALUE}})  # fmt: skip
    return "llm-key"


def test_a_run_is_an_indexed_job_of_restricted_workers_with_the_key_from_its_secret(
    kube: Kube, operator: OperatorProcess, namespace: str, api_key: str
) -> None:
    created = kube.create(
        SCENARIOS,
        namespace,
        load_scenario("nightly", parallelism=3, apiKeySecret={"name": api_key, "key": "token"}),
    )
    job = job_of(kube, namespace, "nightly")
    assert job["metadata"]["name"] == "nightly-g1"
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed" and spec["parallelism"] == 3 and spec["completions"] == 3
    assert spec["backoffLimitPerIndex"] == int(operator.environment["LLMSIM_OPERATOR_JOB_BACKOFF_LIMIT"])
    (owner,) = job["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "LoadScenario", "nightly", created["metadata"]["uid"], True,
    )  # fmt: skip
    (worker,) = spec["template"]["spec"]["containers"]
    assert worker["args"] == scenario_resources.worker_args(3)
    assert worker["image"] == operator.environment["LLMSIM_OPERATOR_LOADGEN_IMAGE"]
    assert worker["resources"] == {
        "requests": {"cpu": "250m", "memory": "256Mi"},
        "limits": {"cpu": "2", "memory": "1Gi"},
    }
    key = next(e for e in worker["env"] if e["name"] == "LLMSIM_API_KEY")
    assert key["valueFrom"] == {"secretKeyRef": {"name": "llm-key", "key": "token"}}
    spec_cm = kube.get(CONFIGMAPS, namespace, "nightly-g1-spec")
    assert spec_cm["metadata"]["ownerReferences"][0]["uid"] == created["metadata"]["uid"]
    # The key itself is nowhere but in its Secret.
    for stored in (job, spec_cm, kube.get(SCENARIOS, namespace, "nightly")):
        assert KEY_VALUE not in json.dumps(stored)
    status = status_of(kube, namespace, "nightly")
    assert status["phase"] == "Pending" and status["workers"] == 3 and status["observedGeneration"] == 1


def test_deleting_a_scenario_deletes_its_job(kube: Kube, operator: OperatorProcess, namespace: str) -> None:
    kube.create(SCENARIOS, namespace, load_scenario("short"))
    job = job_of(kube, namespace, "short")
    kube.delete(SCENARIOS, namespace, "short")
    kube.wait_gone(SCENARIOS, namespace, "short", RECONCILE_S)
    kube.wait_gone(JOBS, namespace, job["metadata"]["name"], RECONCILE_S)
    kube.wait_gone(CONFIGMAPS, namespace, f"{job['metadata']['name']}-spec", RECONCILE_S)


SCHEDULE_TEST = "test_a_schedule_starts_runs_and_keeps_history_limit_of_them"


@pytest.fixture(scope="session", autouse=True)
def schedule_head_start(
    request: pytest.FixtureRequest, kube: Kube, operators: Operators
) -> Iterator[str | None]:
    """The every-minute scenario of the schedule test, created in a namespace of its own when this
    module's first test starts (with the shared replica running), if that test is selected. The
    test needs two minute boundaries (30 to 90 s of wall clock); it runs last (`run_last`), so
    they pass while the other tests run. The namespace is deleted at the end of the session."""
    if not any(item.name == SCHEDULE_TEST for item in request.session.items):
        yield None
        return
    namespace = f"schedule-{uuid.uuid4().hex[:8]}"
    kube.create(NAMESPACES, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    try:
        operators.running_shared()
        kube.create(SCENARIOS, namespace, load_scenario("every-minute", schedule="* * * * *", historyLimit=1))
        yield namespace
    finally:
        kube.delete(NAMESPACES, None, namespace)


@pytest.mark.run_last
@pytest.mark.timeout(240)  # two minute boundaries, on a busy machine, if nothing ran meanwhile
def test_a_schedule_starts_runs_and_keeps_history_limit_of_them(
    kube: Kube, operator: OperatorProcess, schedule_head_start: str | None
) -> None:
    assert schedule_head_start is not None
    namespace, scheduled = schedule_head_start, "every-minute"
    # The first run starts at the first minute boundary after the scenario was created, the second
    # at the next one (or at once, if that has passed while the other tests ran: a missed run is
    # started when an operator next looks). Run alone, this test waits for both: 30 to 90 s.
    first = job_of(kube, namespace, scheduled, timeout_s=90)
    assert (
        first["metadata"]["name"].startswith(f"{scheduled}-")
        and first["metadata"]["name"] != f"{scheduled}-g1"
    )
    finish(kube, first)
    # No job controller, no pods, no worker logs: the run ends Failed ("no worker result") and is recorded.
    kube.wait(
        lambda: len(status_of(kube, namespace, scheduled).get("history") or []) == 1,
        "run 1 recorded",
        RECONCILE_S,
    )
    (record,) = status_of(kube, namespace, scheduled)["history"]
    assert record["job"] == first["metadata"]["name"] and record["phase"] == "Failed"

    # The next minute starts the second run.
    second = kube.wait(
        lambda: (job := status_of(kube, namespace, scheduled).get("job")) != first["metadata"]["name"] and job,
        "run 2 started", 75,
    )  # fmt: skip
    runs = [j["metadata"]["name"] for j in kube.list(JOBS, namespace)]
    assert sorted(runs) == sorted([first["metadata"]["name"], second])
    finish(kube, kube.get(JOBS, namespace, second))
    # historyLimit 1: the second run's record replaces the first, whose Job and ConfigMaps go.
    kube.wait(lambda: [h["job"] for h in status_of(kube, namespace, scheduled).get("history") or []] == [second],
              "history pruned to the last run", RECONCILE_S)  # fmt: skip
    kube.wait_gone(JOBS, namespace, first["metadata"]["name"], RECONCILE_S)
    assert kube.find(CONFIGMAPS, namespace, f"{first['metadata']['name']}-spec") is None
    assert kube.find(JOBS, namespace, second) is not None


def test_what_the_crd_admits_but_the_model_rejects_ends_failed_and_invalid_with_the_field_named(
    kube: Kube, operator: OperatorProcess, namespace: str
) -> None:
    # Five cron fields pass the CRD's pattern; minute 61 does not exist.
    kube.create(SCENARIOS, namespace, load_scenario("odd-clock", schedule="61 * * * *"))

    def invalid() -> dict[str, Any] | None:
        status = status_of(kube, namespace, "odd-clock")
        return status if status.get("phase") == "Failed" else None

    status = kube.wait(invalid, "phase Failed", RECONCILE_S)
    condition = next(cond for cond in status["conditions"] if cond["type"] == "Invalid")
    assert condition["status"] == "True" and condition["message"].startswith("spec.schedule:")
    assert kube.list(JOBS, namespace) == []
