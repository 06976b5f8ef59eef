"""Pure builders: the profile ConfigMap, the Job of a run, names, and the worker entry point."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from scenario_fixtures import SPEC, worker_document

from llmsim.api.resources import LoadScenarioResourceSpec
from llmsim.cli import main as cli
from llmsim.profiles import load_text, parse_spec
from llmsim_operator import results, worker
from llmsim_operator.resources import names, scenario
from llmsim_operator.resources import profile as profile_resources
from llmsim_operator.settings import OperatorSettings

CREATED = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


def test_the_rendered_profile_is_the_resolved_spec_with_an_absolute_expiry() -> None:
    spec = parse_spec({"mode": "perturb", "durationS": 600, "until": "2026-11-26T12:05:00Z"}, "test")
    cm = profile_resources.config_map("drill", "team-a", spec, CREATED)
    kubernetes_validate.validate(cm, "1.37.0", strict=True)
    loaded = load_text(cm["data"]["profile.yaml"], "cm", "other")
    assert loaded.name == "drill" and loaded.spec.mode == "perturb"
    assert loaded.spec.until == dt.datetime(2026, 11, 26, 12, 5, tzinfo=dt.UTC)  # the earlier of the two
    assert "extends" not in yaml.safe_load(cm["data"]["profile.yaml"])["spec"]
    later = parse_spec({"durationS": 60}, "test")
    assert profile_resources.expiry(later, CREATED) == CREATED + dt.timedelta(minutes=1)
    assert profile_resources.expiry(parse_spec({}, "test"), CREATED) is None


def test_relative_windows_are_rendered_absolute_from_the_creation_so_every_sidecar_agrees() -> None:
    spec = parse_spec(
        {
            "faults": {
                "windows": [
                    {"fault": "overloaded", "startS": 120, "durationS": 60, "everyS": 600},
                    {"fault": "timeout", "cron": "0 14 * * *", "durationS": 60, "timeZone": "Europe/Berlin"},
                ]
            }
        },
        "test",
    )
    cm = profile_resources.config_map("drill", "team-a", spec, CREATED)
    windows = load_text(cm["data"]["profile.yaml"], "cm", "other").spec.faults.windows
    assert windows[0].start_at == CREATED + dt.timedelta(minutes=2) and windows[0].start_s == 0
    assert windows[1] == spec.faults.windows[1]  # already on the wall clock
    absolute = profile_resources.absolute_spec(spec, CREATED)
    soon = profile_resources.next_window(absolute, CREATED)
    assert soon is not None and (soon.index, soon.open) == (0, False)
    assert soon.starts_at == CREATED + dt.timedelta(minutes=2)
    inside = profile_resources.next_window(absolute, CREATED + dt.timedelta(minutes=12, seconds=30))
    assert inside is not None and inside.open and inside.starts_at == CREATED + dt.timedelta(minutes=12)
    # 14:00 in Berlin on 26 November is 13:00Z; the periodic window is shut then, the cron one opens
    berlin = profile_resources.next_window(absolute, dt.datetime(2026, 11, 26, 12, 59, 30, tzinfo=dt.UTC))
    assert berlin is not None and berlin.index == 1
    assert berlin.starts_at == dt.datetime(2026, 11, 26, 13, 0, tzinfo=dt.UTC)


def test_window_transitions_between_two_status_values_are_audit_events() -> None:
    closed = {"index": 0, "fault": "overloaded", "startsAt": "A", "endsAt": "B", "open": False}
    opened = {**closed, "open": True}
    following = {**closed, "startsAt": "C", "endsAt": "D"}
    assert profile_resources.window_events(closed, opened) == [
        ("fault window 0 (overloaded) opened at A, until B", "WindowOpened")
    ]
    assert profile_resources.window_events(opened, following) == [
        ("fault window 0 (overloaded) closed at B", "WindowClosed")
    ]
    assert profile_resources.window_events(opened, None) == [
        ("fault window 0 (overloaded) closed at B", "WindowClosed")
    ]
    assert profile_resources.window_events(opened, opened) == []
    assert profile_resources.window_events(None, closed) == []


def test_names_fit_kubernetes_limits_and_stay_unique() -> None:
    long = "a-very-long-load-scenario-name-that-goes-on-and-on-and-on-forever"
    one, two = names.run(long, "202611261200"), names.run(long + "x", "202611261200")
    assert len(one) <= 63 and len(two) <= 63 and one != two and one.endswith("-202611261200")
    assert names.run("nightly", "g3") == "nightly-g3"


def test_the_job_is_a_valid_indexed_job_of_restricted_workers() -> None:
    spec = LoadScenarioResourceSpec.model_validate(SPEC)
    job = scenario.job(
        "nightly", "team-a", "nightly-g1", spec, OperatorSettings(loadgen_image="llmsim/sidecar:t")
    )
    kubernetes_validate.validate(job, "1.37.0", strict=True)
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["securityContext"]["runAsNonRoot"] is True
    assert job["spec"]["backoffLimitPerIndex"] == 1 and job["spec"]["activeDeadlineSeconds"] > spec.duration_s
    assert pod["automountServiceAccountToken"] is False  # the workers never call the API server


def test_the_api_key_reaches_the_workers_from_its_secret_by_reference_only() -> None:
    spec = LoadScenarioResourceSpec.model_validate(
        {**SPEC, "apiKeySecret": {"name": "llm-key", "key": "token"}}
    )
    job = scenario.job("nightly", "team-a", "nightly-g1", spec, OperatorSettings())
    kubernetes_validate.validate(job, "1.37.0", strict=True)
    (container,) = job["spec"]["template"]["spec"]["containers"]
    key = next(e for e in container["env"] if e["name"] == "LLMSIM_API_KEY")
    assert key == {
        "name": "LLMSIM_API_KEY",
        "valueFrom": {"secretKeyRef": {"name": "llm-key", "key": "token"}},
    }
    scenario_file = yaml.safe_load(
        scenario.spec_config_map("nightly", "team-a", "nightly-g1", spec)["data"]["scenario.yaml"]
    )
    assert (
        scenario_file["target"]["apiKey"] == {"env": "LLMSIM_API_KEY"} and "apiKeySecret" not in scenario_file
    )


def test_a_load_scenario_refuses_an_api_key_its_workers_cannot_have() -> None:
    with pytest.raises(ValueError, match=r"target.apiKey: .* give the key as apiKeySecret"):
        LoadScenarioResourceSpec.model_validate({**SPEC, "target": {"apiKey": {"env": "OPENAI_API_KEY"}}})


def test_the_worker_arguments_are_what_llmsim_load_accepts() -> None:
    args = [a.replace("$(JOB_COMPLETION_INDEX)", "1") for a in scenario.worker_args(4)]
    parsed = cli.build_parser().parse_args(args)
    assert parsed.command == "load" and parsed.parallelism == 4 and parsed.worker_index == 1
    assert parsed.scenario == Path("/etc/llmsim/scenario/scenario.yaml") and parsed.out == Path(
        scenario.OUT_DIR
    )


def test_a_large_report_is_stored_compressed() -> None:
    small = scenario.report_config_map("s", "ns", "s-g1", {"a": 1})
    assert json.loads(small["data"]["report.json"]) == {"a": 1}
    big = scenario.report_config_map("s", "ns", "s-g1", {"a": "x" * (scenario.MAX_PLAIN_REPORT + 1)})
    assert "data" not in big and "report.json.gz" in big["binaryData"]


def test_the_worker_prints_its_partial_as_one_marked_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = worker_document(SPEC, 1, ttft_ms=100)
    seen: list[list[str]] = []

    def fake_load(argv: list[str]) -> int:
        seen.append(argv)
        (tmp_path / "partial-1.json").write_text(json.dumps(doc))
        return 0

    monkeypatch.setattr(worker, "run_load", fake_load)
    args: list[Any] = ["--scenario", "s.yaml", "--worker-index", "1", "--out", str(tmp_path)]
    assert worker.main(args) == 0
    assert seen == [["load", *args]]
    assert results.decode(capsys.readouterr().out) == doc


def test_two_real_workers_against_the_simulator_merge_into_one_summary(
    sim_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The whole data path of a run, without Kubernetes: the Job's worker arguments, `llmsim load`
    against `llmsim serve`, the marked log lines, the operator's merge and summary."""
    spec = LoadScenarioResourceSpec.model_validate(
        {
            "target": {"url": sim_server.url, "provider": "openai", "model": "gpt-4o-mini"},
            "durationS": 1,
            "pattern": {"type": "steady", "rps": 20},
            "arrival": "constant",
            "parallelism": 2,
            "requests": {"maxTokens": {"type": "constant", "value": 8}},
            "slos": [{"metric": "error_rate", "threshold": 0.01}],
            "schedule": "0 * * * *",
        }
    )
    cm = scenario.spec_config_map("s", "ns", "s-g1", spec)
    spec_file = tmp_path / "scenario.yaml"
    spec_file.write_text(cm["data"]["scenario.yaml"])
    logs = []
    for index in (0, 1):
        out = tmp_path / f"out-{index}"
        args = [
            a.replace("$(JOB_COMPLETION_INDEX)", str(index))
            .replace("/etc/llmsim/scenario/scenario.yaml", str(spec_file))
            .replace(scenario.OUT_DIR, str(out))
            for a in scenario.worker_args(2)
        ]
        assert worker.main(args) == 0
        logs.append(capsys.readouterr().out)
    summary = results.summarise(results.merge(results.collect(logs)))
    assert summary.requests == 20 and summary.errors == 0
    assert summary.ttft_ms.p50 is not None and summary.e2e_ms.p95 is not None
    assert results.slo_verdict(summary) == "Met"
