"""Recommendations fire on their evidence, cite it, and stay silent without it (pure)."""

from __future__ import annotations

from typing import Any

import numpy as np

from llmsim.api.scenario import ClosedLoop, LoadScenarioSpec, WorkflowRun
from llmsim.loadgen import patterns, recommendations, report
from llmsim.loadgen.results import Partial, RequestRecord, window_length
from llmsim.loadgen.wire import ErrorType


def build(
    spec_doc: dict[str, Any],
    n: int,
    ttft_at: Any = lambda t: 0.2,
    error_at: Any = lambda i, t: None,
    lag_at: Any = lambda t: 0.0005,
) -> dict[str, Any]:
    """A report of the pattern's constant-spaced schedule (about `n` requests); the callables
    shape latency, errors and lag over time."""
    spec = LoadScenarioSpec.model_validate(spec_doc)
    assert not isinstance(spec.pattern, ClosedLoop | WorkflowRun)
    window_s, count = window_length(spec.duration_s, spec.window_s)
    part = Partial(window_s=window_s, n_windows=count, workers=[0])
    rng = np.random.default_rng(0)
    times = patterns.arrival_times(spec.pattern, spec.duration_s, rng, "constant")
    assert abs(len(times) - n) <= 1, len(times)
    for i, t in enumerate(times.tolist()):
        lag = lag_at(t)
        err = error_at(i, t)
        ttft = ttft_at(t)
        part.add(RequestRecord(index=i, intended_s=t, sent_s=t + lag, stream=True, prompt_tokens=20,
                               output_tokens=0 if err else 10, ttft_s=None if err else ttft,
                               itl_s=[] if err else [0.01] * 9, end_s=t + lag + ttft + 0.09,
                               error=err, message=f"HTTP 429: {err}" if err else ""), rng)  # fmt: skip
    return report.build(spec, part)


CLEAN = {"durationS": 30, "windowS": 1, "pattern": {"type": "steady", "rps": 20}}


def rules(doc: dict[str, Any]) -> list[str]:
    return [r["rule"] for r in doc["recommendations"]]


def test_a_clean_steady_run_gets_no_recommendation() -> None:
    doc = build(CLEAN | {"slos": [{"metric": "ttft_ms", "percentile": 95, "threshold": 400}]}, 600)
    assert doc["recommendations"] == []


def test_a_saturation_knee_is_found_on_a_ramp_and_cites_its_numbers() -> None:
    ramp = CLEAN | {"pattern": {"type": "ramp_up", "startRps": 2, "endRps": 40}}
    # 2 -> 40 req/s over 30 s (630 requests); TTFT is flat until 15 s (21 req/s), then grows fast.
    doc = build(ramp, 630, ttft_at=lambda t: 0.2 if t < 15 else 0.2 * (1 + (t - 15) / 3))
    flat = build(ramp, 630)
    knees = [r for r in doc["recommendations"] if r["rule"] == "saturation_knee"]
    assert len(knees) == 1, doc["recommendations"]
    ev = knees[0]["evidence"]
    assert ev["baseline_ttft_p50_ms"] < 210 and ev["ttft_p50_at_knee_ms"] > 1.5 * ev["baseline_ttft_p50_ms"]
    assert f"{ev['knee_rps']:.3g} req/s" in knees[0]["message"]
    assert 20 <= ev["knee_rps"] <= 26  # the first window past 15 s whose TTFT exceeds 1.5x (300 ms)
    assert "saturation_knee" not in rules(flat)


def test_no_knee_without_a_range_of_rates() -> None:
    doc = build(CLEAN, 600, ttft_at=lambda t: 0.2 if t < 15 else 0.6)  # slower, but at one rate
    assert "saturation_knee" not in rules(doc)


def test_slo_at_risk_in_windows_and_thin_headroom() -> None:
    slo = {"slos": [{"metric": "ttft_ms", "percentile": 95, "threshold": 400}]}
    burst = build(CLEAN | slo, 600, ttft_at=lambda t: 0.6 if 10 <= t < 11 else 0.2)
    rec = next(r for r in burst["recommendations"] if r["rule"] == "slo_at_risk")
    assert rec["evidence"]["windows_failed"] == 1 and rec["evidence"]["windows_failed_at_s"] == [[10.0, 11.0]]
    assert "10–11 s" in rec["message"]
    thin = build(CLEAN | slo, 600, ttft_at=lambda t: 0.38)
    rec = next(r for r in thin["recommendations"] if r["rule"] == "slo_at_risk")
    assert rec["severity"] == "info" and rec["evidence"]["share_of_threshold"] > 0.9


def test_rate_limiting_dominating_errors_suggests_backoff() -> None:
    doc = build(CLEAN, 600, error_at=lambda i, t: ErrorType.RATE_LIMIT if t > 20 and i % 3 == 0 else None)
    rec = next(r for r in doc["recommendations"] if r["rule"] == "rate_limited")
    assert "retry-after" in rec["message"] and rec["evidence"]["rate_limited"] == doc["summary"]["failed"]
    assert rec["evidence"]["first_window_at_s"] == 20.0
    few = build(CLEAN, 600, error_at=lambda i, t: ErrorType.RATE_LIMIT if i == 5 else None)  # 1 of 600
    assert "rate_limited" not in rules(few)
    other = build(CLEAN, 600, error_at=lambda i, t: ErrorType.SERVER_ERROR if i % 10 == 0 else None)
    assert "rate_limited" not in rules(other) and "low_availability" in rules(other)


def test_coordinated_omission_blames_the_generator() -> None:
    doc = build(CLEAN, 600, lag_at=lambda t: 0.4 if t > 25 else 0.0005)
    rec = next(r for r in doc["recommendations"] if r["rule"] == "coordinated_omission")
    ev = rec["evidence"]
    assert (
        ev["schedule_lag_p99_ms"] > 10
        and ev["p99_from_intended_send_ms"] > 1.1 * ev["p99_from_actual_send_ms"]
    )
    assert "coordinated_omission" not in rules(build(CLEAN, 600))


def test_every_rule_cites_numbers() -> None:
    doc = build(CLEAN | {"slos": [{"metric": "ttft_ms", "percentile": 95, "threshold": 400}]}, 600,
                ttft_at=lambda t: 0.6 if 10 <= t < 11 else 0.2, lag_at=lambda t: 0.8 if t > 25 else 0.0,
                error_at=lambda i, t: ErrorType.TIMEOUT if i % 20 == 0 else None)  # fmt: skip
    assert {"slo_at_risk", "coordinated_omission", "timeouts", "low_availability"} <= set(rules(doc))
    for rec in doc["recommendations"]:
        assert rec["evidence"] and any(isinstance(v, int | float) for v in rec["evidence"].values()), rec
    assert [r["rule"] for r in recommendations.derive(doc)] == rules(doc)  # derived from the document alone
