"""LoadScenario runs in-process against the kmock emulator, with the Job status simulated."""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

import yaml
from scenario_fixtures import SPEC, worker_document

from conftest import (
    CONFIGMAPS,
    JOBS,
    MERGE,
    NS,
    PODS,
    SCENARIOS,
    create,
    events_for,
    new_object,
    url,
    wait_for,
)
from llmsim.api.scenario import LoadScenarioSpec
from llmsim_operator import results

RUN = "nightly-g1"


def scenario(name: str = "nightly", spec: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    return new_object("LoadScenario", "llmsim.io/v1alpha1", name, copy.deepcopy(spec or SPEC), **meta)


def status_of(cluster: Any, name: str = "nightly") -> dict[str, Any]:
    out: dict[str, Any] = cluster.objects[SCENARIOS, NS, name].get("status", {})
    return out


async def patch_job_status(cluster: Any, name: str, status: dict[str, Any]) -> None:
    rsp = await cluster.patch(url(JOBS, name=name), json={"status": status}, headers=MERGE)
    assert rsp.status == 200, await rsp.text()


async def finished_worker(cluster: Any, run: str, index: int, document: dict[str, Any]) -> None:
    """A succeeded worker pod whose log carries its result (as `llmsim_operator.worker` prints it)."""
    pod = new_object(
        "Pod",
        "v1",
        f"{run}-{index}-abcde",
        {"containers": [{"name": "loadgen", "image": "llmsim"}]},
        labels={"llmsim.io/run": run, "llmsim.io/scenario": run.rsplit("-", 1)[0]},
    )
    pod["status"] = {"phase": "Succeeded"}
    await create(cluster, PODS, pod)
    log = f"worker {index}: done\n{results.encode(document)}\n"
    cluster[f"get {url(PODS, name=pod['metadata']['name'])}/log"] << log


async def test_a_scenario_runs_as_an_indexed_job_and_its_results_are_merged(
    cluster: Any, operator: Any
) -> None:
    body = scenario()
    await create(cluster, SCENARIOS, body)
    await wait_for(lambda: cluster.objects[JOBS, NS, RUN])
    await wait_for(lambda: status_of(cluster)["phase"] == "Pending")
    assert status_of(cluster)["job"] == RUN and status_of(cluster)["workers"] == 2

    job = cluster.objects[JOBS, NS, RUN]
    assert job["metadata"]["ownerReferences"][0]["uid"] == body["metadata"]["uid"]
    assert (
        job["spec"]["completionMode"] == "Indexed"
        and job["spec"]["completions"] == job["spec"]["parallelism"] == 2
    )
    [worker] = job["spec"]["template"]["spec"]["containers"]
    assert worker["command"] == ["python", "-m", "llmsim_operator.worker"]
    assert worker["args"][:7] == [
        "load",
        "--scenario",
        "/etc/llmsim/scenario/scenario.yaml",
        "--parallelism",
        "2",
        "--worker-index",
        "$(JOB_COMPLETION_INDEX)",
    ]
    spec_file = cluster.objects[CONFIGMAPS, NS, f"{RUN}-spec"]["data"]["scenario.yaml"]
    assert (
        LoadScenarioSpec.model_validate(yaml.safe_load(spec_file)).parallelism == 2
    )  # no operator-only fields

    await patch_job_status(cluster, RUN, {"active": 2, "ready": 2})
    await wait_for(lambda: status_of(cluster)["phase"] == "Running")

    await finished_worker(cluster, RUN, 0, worker_document(SPEC, 0, ttft_ms=100))
    await finished_worker(cluster, RUN, 1, worker_document(SPEC, 1, ttft_ms=300, failures=2))
    done = {"succeeded": 2, "active": 0, "conditions": [{"type": "Complete", "status": "True"}]}
    await patch_job_status(cluster, RUN, done)
    await wait_for(lambda: status_of(cluster)["phase"] == "Succeeded")

    st = status_of(cluster)
    assert st["workersSucceeded"] == 2 and st["completionTime"]
    summary = st["summary"]
    assert summary["requests"] == 20 and summary["errors"] == 2 and summary["errorRate"] == 0.1
    assert summary["ttftMs"]["p95"] == 300.0 and summary["ttftMs"]["p50"] < 120
    assert [s["name"] for s in summary["slos"]] == ["ttft_ms p95 < 800", "error_rate < 0.5"]
    assert st["slo"] == "Met"
    report = json.loads(cluster.objects[CONFIGMAPS, NS, st["reportConfigMap"]]["data"]["report.json"])
    assert report["run"]["workers"] == [0, 1] and report["run"]["complete"] is True
    assert [h["job"] for h in st["history"]] == [RUN] and st["history"][0]["slo"] == "Met"
    complete = next(c for c in st["conditions"] if c["type"] == "Complete")
    assert complete["status"] == "True"
    await wait_for(
        lambda: (
            {"RunStarted", "Running", "Succeeded"} <= {e["reason"] for e in events_for(cluster, "nightly")}
        )
    )


async def test_a_failed_job_is_failed_with_the_partial_results_merged(cluster: Any, operator: Any) -> None:
    spec = copy.deepcopy(SPEC) | {"slos": [{"metric": "ttft_ms", "percentile": 95, "threshold": 200}]}
    await create(cluster, SCENARIOS, scenario(spec=spec))
    await wait_for(lambda: cluster.objects[JOBS, NS, RUN])
    await finished_worker(cluster, RUN, 0, worker_document(spec, 0, ttft_ms=350))
    failed = {"succeeded": 1, "failed": 2, "conditions": [{"type": "Failed", "status": "True"}]}
    await patch_job_status(cluster, RUN, failed)
    await wait_for(lambda: status_of(cluster)["phase"] == "Failed")

    st = status_of(cluster)
    assert st["workersFailed"] == 2 and st["summary"]["requests"] == 10 and st["slo"] == "Violated"
    report = json.loads(cluster.objects[CONFIGMAPS, NS, st["reportConfigMap"]]["data"]["report.json"])
    assert report["run"]["complete"] is False and "worker(s) [1] are missing" in report["run"]["notes"][0]
    complete = next(c for c in st["conditions"] if c["type"] == "Complete")
    assert complete["reason"] == "JobFailed" and "1 worker(s)" in complete["message"]


async def test_an_invalid_scenario_fails_naming_the_field_and_starts_nothing(
    cluster: Any, operator: Any
) -> None:
    bad = copy.deepcopy(SPEC) | {"pattern": {"type": "steady"}, "schedule": "61 * * * *"}
    await create(cluster, SCENARIOS, scenario(spec=bad))
    await wait_for(lambda: status_of(cluster)["phase"] == "Failed")
    invalid = next(c for c in status_of(cluster)["conditions"] if c["type"] == "Invalid")
    assert invalid["status"] == "True" and "spec.pattern.steady.rps" in invalid["message"]
    assert not [r for r in cluster if r.action == cluster.action.CREATE and r.resource == JOBS]


async def test_a_spec_change_starts_a_new_run_and_history_is_bounded(cluster: Any, operator: Any) -> None:
    await create(cluster, SCENARIOS, scenario(spec=copy.deepcopy(SPEC) | {"historyLimit": 1}))
    await wait_for(lambda: cluster.objects[JOBS, NS, RUN])
    await finished_worker(cluster, RUN, 0, worker_document(SPEC, 0, ttft_ms=100))
    await finished_worker(cluster, RUN, 1, worker_document(SPEC, 1, ttft_ms=100))
    await patch_job_status(
        cluster, RUN, {"succeeded": 2, "conditions": [{"type": "Complete", "status": "True"}]}
    )
    await wait_for(lambda: status_of(cluster)["phase"] == "Succeeded")

    change = {"metadata": {"generation": 2}, "spec": {"durationS": 3}}
    rsp = await cluster.patch(url(SCENARIOS, name="nightly"), json=change, headers=MERGE)
    assert rsp.status == 200, await rsp.text()
    await wait_for(
        lambda: status_of(cluster)["job"] == "nightly-g2" and status_of(cluster)["phase"] == "Pending"
    )
    await patch_job_status(
        cluster, "nightly-g2", {"failed": 2, "conditions": [{"type": "Failed", "status": "True"}]}
    )
    await wait_for(lambda: status_of(cluster)["phase"] == "Failed")
    assert [h["job"] for h in status_of(cluster)["history"]] == ["nightly-g2"]
    await wait_for(lambda: cluster.objects[JOBS, NS, RUN].deleted)  # the trimmed run is gone
    assert cluster.objects[CONFIGMAPS, NS, f"{RUN}-report"].deleted


async def test_deleting_a_scenario_stops_its_running_job(cluster: Any, operator: Any) -> None:
    await create(cluster, SCENARIOS, scenario())
    await wait_for(lambda: cluster.objects[JOBS, NS, RUN])
    await patch_job_status(cluster, RUN, {"active": 2})
    await wait_for(lambda: status_of(cluster)["phase"] == "Running")
    rsp = await cluster.delete(url(SCENARIOS, name="nightly"))
    assert rsp.status == 200, await rsp.text()
    await wait_for(lambda: cluster.objects[SCENARIOS, NS, "nightly"].deleted)
    assert cluster.objects[JOBS, NS, RUN].deleted


async def test_a_scheduled_scenario_starts_a_run_when_due(cluster: Any, operator: Any) -> None:
    created = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = scenario(spec=copy.deepcopy(SPEC) | {"schedule": "* * * * *"}, creationTimestamp=created)
    await create(cluster, SCENARIOS, body)
    await wait_for(lambda: status_of(cluster).get("job"))
    st = status_of(cluster)
    due = dt.datetime.fromisoformat(st["lastScheduleTime"])
    assert dt.timedelta(0) <= dt.datetime.now(dt.UTC) - due < dt.timedelta(minutes=1)
    assert st["job"] == f"nightly-{due.strftime('%Y%m%d%H%M')}" and st["phase"] == "Pending"
    assert cluster.objects[JOBS, NS, st["job"]]["spec"]["parallelism"] == 2
    # Only one run per due time, however often the clock ticks.
    await wait_for(
        lambda: len([r for r in cluster if r.action == cluster.action.CREATE and r.resource == JOBS]) >= 1
    )
    jobs = {
        r.data["metadata"]["name"]
        for r in cluster
        if r.action == cluster.action.CREATE and r.resource == JOBS
    }
    assert jobs == {st["job"]}
