"""Worker results: carried in logs, merged exactly, summarised into the status; Job phases."""

from __future__ import annotations

import pytest
from scenario_fixtures import SPEC, worker_document

from llmsim.api.status import ScenarioPhase
from llmsim_operator import results


def test_a_result_survives_the_trip_through_a_log() -> None:
    doc = worker_document(SPEC, 0, ttft_ms=120)
    log = f"starting\n{results.encode(doc)}\nbye\n"
    assert results.decode(log) == doc
    assert results.decode("no marker here\n") is None
    assert results.decode(f"{results.MARKER}not-base64!\n") is None
    assert results.collect([log, "garbage", log]) == [doc, doc]


def test_partials_merge_into_one_report_with_exact_counts_and_the_slo_verdicts() -> None:
    docs = [worker_document(SPEC, 0, ttft_ms=100), worker_document(SPEC, 1, ttft_ms=900, failures=4)]
    report = results.merge(docs)
    summary = results.summarise(report)
    assert summary.requests == 20 and summary.errors == 4 and summary.error_rate == pytest.approx(0.2)
    assert summary.ttft_ms.p50 == pytest.approx(100, rel=0.02) and summary.ttft_ms.p95 == pytest.approx(
        900, rel=0.02
    )
    assert [(v.name, v.met) for v in summary.slos] == [
        ("ttft_ms p95 < 800", False),
        ("error_rate < 0.5", True),
    ]
    assert results.slo_verdict(summary) == "Violated"
    assert report["run"]["workers"] == [0, 1]


def test_a_missing_worker_is_noted_in_the_report() -> None:
    report = results.merge([worker_document(SPEC, 1, ttft_ms=100)])
    assert report["run"]["complete"] is False and "[0]" in report["run"]["notes"][0]


def test_a_full_report_of_a_single_worker_is_taken_as_it_is() -> None:
    full = {
        "summary": {"requests": 3, "failed": 0, "achieved_rps": 1.5},
        "latency": {},
        "slo": {"objectives": []},
    }
    assert results.merge([full]) is full
    summary = results.summarise(full)
    assert summary.requests == 3 and summary.achieved_rps == 1.5 and results.slo_verdict(summary) == "None"
    with pytest.raises(ValueError, match="no worker"):
        results.merge([])


@pytest.mark.parametrize(
    ("job_status", "phase"),
    [
        (None, ScenarioPhase.PENDING),
        ({"active": 0}, ScenarioPhase.PENDING),
        ({"active": 2}, ScenarioPhase.RUNNING),
        ({"succeeded": 1, "active": 1}, ScenarioPhase.RUNNING),
        ({"conditions": [{"type": "Complete", "status": "True"}]}, ScenarioPhase.SUCCEEDED),
        ({"conditions": [{"type": "SuccessCriteriaMet", "status": "True"}]}, ScenarioPhase.SUCCEEDED),
        ({"active": 1, "conditions": [{"type": "Failed", "status": "True"}]}, ScenarioPhase.FAILED),
        ({"active": 1, "conditions": [{"type": "Failed", "status": "False"}]}, ScenarioPhase.RUNNING),
    ],
)
def test_the_phase_follows_the_job(job_status: dict[str, object] | None, phase: ScenarioPhase) -> None:
    assert results.job_phase(job_status) is phase
