"""LoadScenario: run it as an indexed Job, follow the Job through the phases, merge the workers'
results into the status and a report ConfigMap, repeat on a cron schedule with bounded history."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

import kopf
from pydantic import ValidationError

from llmsim.api import cron
from llmsim.api.resources import LoadScenarioResourceSpec
from llmsim.api.status import LoadScenarioStatus, RunRecord, ScenarioPhase
from llmsim.api.timestamps import parse_time
from llmsim.errors import describe_validation_error
from llmsim_operator import conditions, k8s, metrics, results
from llmsim_operator import constants as c
from llmsim_operator.handlers.common import SCENARIOS_KEY, post, settings_of, status_dict, utcnow
from llmsim_operator.resources import names
from llmsim_operator.resources import scenario as scenario_resources
from llmsim_operator.settings import OperatorSettings

TERMINAL = (ScenarioPhase.SUCCEEDED.value, ScenarioPhase.FAILED.value)


class InvalidScenario(ValueError):
    """The spec does not validate; the message names the field."""


def parse_spec(spec: Any) -> LoadScenarioResourceSpec:
    try:
        parsed = LoadScenarioResourceSpec.model_validate(dict(spec))
    except ValidationError as exc:
        raise InvalidScenario("; ".join(describe_validation_error(exc, "spec"))) from None
    if parsed.schedule is not None:
        try:
            cron.parse(parsed.schedule)
        except cron.CronError as exc:
            raise InvalidScenario(f"spec.schedule: {exc}") from None
    return parsed


def start_run(
    owner: dict[str, Any], spec: LoadScenarioResourceSpec, token: str, settings: OperatorSettings
) -> str:
    """Create the run's spec ConfigMap and Job (both owned by the scenario); return the Job name."""
    name, namespace = owner["metadata"]["name"], owner["metadata"]["namespace"]
    run_name = names.run(name, token)
    cm = scenario_resources.spec_config_map(name, namespace, run_name, spec)
    job = scenario_resources.job(name, namespace, run_name, spec, settings)
    kopf.adopt([cm, job], owner=kopf.Body(cast(kopf.RawBody, owner)))
    k8s.apply_config_map(cm)
    if k8s.create_job(job):
        post(owner, "Normal", "RunStarted", f"started Job {run_name} with {spec.parallelism} worker(s)")
    return run_name


def _status(current: dict[str, Any], **fields: Any) -> dict[str, Any]:
    merged = {**current, **{k: v for k, v in fields.items() if v is not None}}
    return status_dict(LoadScenarioStatus.model_validate(merged))


@kopf.on.resume(c.GROUP, c.VERSION, c.SCENARIOS, retries=10, backoff=5)
@kopf.on.create(c.GROUP, c.VERSION, c.SCENARIOS, retries=10, backoff=5)
@kopf.on.update(c.GROUP, c.VERSION, c.SCENARIOS, field="spec", retries=10, backoff=5)
def reconcile_scenario(
    body: kopf.Body, spec: kopf.Spec, meta: kopf.Meta, memo: kopf.Memo, patch: kopf.Patch, **_: Any
) -> None:
    now = utcnow()
    generation = meta.get("generation")
    current = dict(body.get("status") or {})
    old = conditions.parse(current.get("conditions"))
    memo.get(SCENARIOS_KEY, set()).add((meta.get("namespace") or "", meta["name"]))
    try:
        parsed = parse_spec(spec)
    except InvalidScenario as exc:
        conds = conditions.set_condition(old, "Invalid", "True", "InvalidSpec", str(exc), now, generation)
        patch.status.update(
            _status(
                current,
                phase=ScenarioPhase.FAILED,
                observedGeneration=generation,
                conditions=conditions.dump(conds),
            )
        )
        post(body, "Warning", "InvalidSpec", str(exc))
        metrics.RECONCILES.labels("LoadScenario", "invalid").inc()
        raise kopf.PermanentError(str(exc)) from None
    valid = conditions.dump(conditions.set_condition(old, "Invalid", "False", "Valid", "", now, generation))
    if parsed.schedule is not None:
        # The scenario's daemon starts the runs when they are due.
        patch.status.update(_status(current, observedGeneration=generation, conditions=valid))
        return
    token = f"g{generation or 1}"
    run_name = names.run(meta["name"], token)
    if current.get("job") == run_name:  # resumed: the run for this generation exists already
        return
    owner = {"apiVersion": body["apiVersion"], "kind": body["kind"], "metadata": dict(meta)}
    start_run(owner, parsed, token, settings_of(memo))
    patch.status.update(
        _status(
            current,
            phase=ScenarioPhase.PENDING,
            observedGeneration=generation,
            conditions=valid,
            job=run_name,
            startTime=now.isoformat(),
            workers=parsed.parallelism,
            workersSucceeded=0,
            workersFailed=0,
        )
        | {"completionTime": None, "summary": None, "slo": None, "reportConfigMap": None}
    )
    metrics.RECONCILES.labels("LoadScenario", "started").inc()


def sync_run(
    namespace: str, scenario: str, job: dict[str, Any], settings: OperatorSettings, now: dt.datetime
) -> None:
    """Bring the scenario's status in line with its current Job (idempotent)."""
    owner = k8s.read_custom(c.SCENARIOS, namespace, scenario)
    if owner is None:
        return
    current = dict(owner.get("status") or {})
    job_name = job["metadata"]["name"]
    if current.get("job") != job_name:
        return
    if current.get("phase") in TERMINAL and current.get("completionTime"):
        return
    job_status = job.get("status") or {}
    phase = results.job_phase(job_status)
    update: dict[str, Any] = {
        "phase": phase.value,
        "workersSucceeded": int(job_status.get("succeeded") or 0),
        "workersFailed": int(job_status.get("failed") or 0),
    }
    if phase.value in TERMINAL:
        update.update(_finish(owner, job_name, phase, settings, now))
    if all(current.get(k) == v for k, v in update.items()):
        return
    k8s.patch_status(c.SCENARIOS, namespace, scenario, update)
    if update.get("phase") != current.get("phase"):
        kind = "Warning" if update["phase"] == ScenarioPhase.FAILED.value else "Normal"
        post(owner, kind, str(update["phase"]), f"Job {job_name} is {update['phase']}")


def _finish(
    owner: dict[str, Any], job_name: str, phase: ScenarioPhase, settings: OperatorSettings, now: dt.datetime
) -> dict[str, Any]:
    """Merge the workers' results, store the report, update summary and history."""
    namespace, scenario = owner["metadata"]["namespace"], owner["metadata"]["name"]
    current = dict(owner.get("status") or {})
    generation = owner["metadata"].get("generation")
    old = conditions.parse(current.get("conditions"))
    docs = results.collect(k8s.worker_logs(namespace, job_name))
    summary = None
    report_cm = None
    if docs:
        try:
            report = results.merge(docs)
        except (ValueError, KeyError, TypeError) as exc:
            old = conditions.set_condition(old, "Complete", "False", "MergeFailed", str(exc), now, generation)
        else:
            cm = scenario_resources.report_config_map(scenario, namespace, job_name, report)
            kopf.adopt(cm, owner=kopf.Body(cast(kopf.RawBody, owner)))
            k8s.apply_config_map(cm)
            report_cm = cm["metadata"]["name"]
            summary = results.summarise(report)
    if summary is None and phase is ScenarioPhase.SUCCEEDED:
        phase = ScenarioPhase.FAILED
        message = f"Job {job_name} succeeded but no worker result could be read from the worker logs"
        old = conditions.set_condition(old, "Complete", "False", "NoResults", message, now, generation)
    elif phase is ScenarioPhase.SUCCEEDED:
        old = conditions.set_condition(
            old, "Complete", "True", "Succeeded", f"Job {job_name} succeeded", now, generation
        )
    else:
        merged = f"; merged the results of {len(docs)} worker(s)" if docs else ""
        old = conditions.set_condition(
            old, "Complete", "False", "JobFailed", f"Job {job_name} failed{merged}", now, generation
        )
    verdict = results.slo_verdict(summary)
    record = RunRecord(
        job=job_name,
        phase=phase,
        start_time=parse_time(current.get("startTime")),
        completion_time=now,
        report_config_map=report_cm,
        slo=verdict if summary is not None else None,
    )
    history = [h for h in current.get("history") or [] if h.get("job") != job_name]
    history.insert(0, status_dict(record))
    limit = _history_limit(owner)
    for dropped in history[limit:]:
        k8s.delete_job(namespace, dropped["job"])
        k8s.delete_config_map(namespace, names.scenario_config_map(dropped["job"]))
        k8s.delete_config_map(namespace, names.report_config_map(dropped["job"]))
    metrics.RUNS.labels(phase.value).inc()
    return {
        "phase": phase.value,
        "completionTime": now.isoformat(),
        "summary": status_dict(summary) if summary is not None else None,
        "slo": verdict if summary is not None else None,
        "reportConfigMap": report_cm,
        "conditions": conditions.dump(old),
        "history": history[:limit],
    }


def _history_limit(owner: dict[str, Any]) -> int:
    try:
        return parse_spec(owner.get("spec") or {}).history_limit
    except InvalidScenario:
        return LoadScenarioResourceSpec.model_fields["history_limit"].default  # type: ignore[no-any-return]


@kopf.on.event(
    "batch", "v1", "jobs", labels={c.SCENARIO_LABEL: kopf.PRESENT, c.MANAGED_BY_LABEL: c.MANAGED_BY}
)
def follow_job(
    body: kopf.Body, namespace: str | None, labels: kopf.Labels, memo: kopf.Memo, type: str, **_: Any
) -> None:
    """The fast path: every change of a run's Job updates the scenario."""
    if type == "DELETED":
        return
    sync_run(namespace or "", labels[c.SCENARIO_LABEL], dict(body), settings_of(memo), utcnow())


def tick(namespace: str, name: str, settings: OperatorSettings, now: dt.datetime) -> None:
    """The slow path and the scheduler: re-read the current Job; start a scheduled run when due."""
    owner = k8s.read_custom(c.SCENARIOS, namespace, name)
    if owner is None or owner["metadata"].get("deletionTimestamp"):
        return
    current = dict(owner.get("status") or {})
    if current.get("job") and current.get("phase") not in TERMINAL:
        job = k8s.read_job(namespace, current["job"])
        if job is not None:
            sync_run(namespace, name, job, settings, now)
            return
    try:
        spec = parse_spec(owner.get("spec") or {})
    except InvalidScenario:
        return
    if spec.schedule is None:
        return
    since = (
        parse_time(current.get("lastScheduleTime"))
        or parse_time(owner["metadata"].get("creationTimestamp"))
        or now
    )
    due = cron.parse(spec.schedule).latest_due(since, now)
    if due is None:
        return
    fresh = k8s.read_custom(c.SCENARIOS, namespace, name)  # a run may have started meanwhile
    fresh_status = (fresh or {}).get("status") or {}
    if fresh is None or (fresh_status.get("phase") not in TERMINAL and fresh_status.get("job")):
        return
    run_name = start_run(owner, spec, due.strftime("%Y%m%d%H%M"), settings)
    k8s.patch_status(
        c.SCENARIOS,
        namespace,
        name,
        {
            "phase": ScenarioPhase.PENDING.value,
            "job": run_name,
            "lastScheduleTime": due.isoformat(),
            "startTime": now.isoformat(),
            "completionTime": None,
            "workers": spec.parallelism,
            "workersSucceeded": 0,
            "workersFailed": 0,
        },
    )


@kopf.on.delete(c.GROUP, c.VERSION, c.SCENARIOS, retries=5, backoff=5)
def delete_scenario(name: str, namespace: str | None, status: kopf.Status, memo: kopf.Memo, **_: Any) -> None:
    """Stop running Jobs (owner references then remove the rest)."""
    ns = namespace or ""
    memo.get(SCENARIOS_KEY, set()).discard((ns, name))
    jobs = {str(h.get("job")) for h in status.get("history") or [] if h.get("job")}
    if status.get("job"):
        jobs.add(str(status["job"]))
    for job in sorted(jobs):
        k8s.delete_job(ns, job)
        k8s.delete_config_map(ns, names.scenario_config_map(job))
        k8s.delete_config_map(ns, names.report_config_map(job))
