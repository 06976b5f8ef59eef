"""`llmsim report compare`: decisions that account for sample size and histogram resolution.

Pure and fast: the runs are synthetic histograms drawn from known distributions (synthetic.py), so
the false-alarm rate and the power are measured over many seeds in well under a second each.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from synthetic import histogram, run_report

from llmsim.cli.main import main
from llmsim.loadgen import compare, significance
from llmsim.loadgen.compare import Verdict

SEEDS = 200
ALPHA = compare.Options().alpha
# Bonferroni makes P(any false regression) <= alpha for each pair of runs, so over SEEDS independent
# pairs the false alarms are at most Binomial(SEEDS, alpha); this is its 1 - 1e-4 quantile (23).
FALSE_ALARM_BOUND = int(stats.binom.isf(1e-4, SEEDS, ALPHA))
NO_THRESHOLDS = compare.Thresholds(latency_pct=0, latency_min_ms=0, error_rate_pp=0, throughput_pct=0)


def same_schedule_pair(seed: int, n: int) -> tuple[dict[str, object], dict[str, object]]:
    """Two runs of one schedule (same sends per window) against the same system."""
    rng = np.random.default_rng([seed, n])
    counts = rng.poisson(n / 20, 20)
    return run_report(rng, n, window_counts=counts), run_report(rng, n, window_counts=counts)


def naive_regression(a: dict[str, object], b: dict[str, object]) -> bool:
    """The rule `compare` used before: any percentile that grew by more than 10 % and 1 ms."""
    for metric in ("ttft_ms", "itl_ms", "e2e_ms", "tpot_ms"):
        for key in ("p50", "p95", "p99"):
            x, y = a["latency"][metric][key], b["latency"][metric][key]  # type: ignore[index]
            if x and y and y - x > 1 and (y - x) / x > 0.10:
                return True
    return False


def test_two_runs_of_one_schedule_stay_within_the_false_alarm_rate() -> None:
    # The case: 78 requests per run. The old rule cried wolf in about half of the pairs.
    pairs = [same_schedule_pair(seed, 78) for seed in range(SEEDS)]
    alarms = sum(bool(compare.compare(a, b).regressions) for a, b in pairs)
    assert alarms <= FALSE_ALARM_BOUND, alarms
    assert sum(naive_regression(a, b) for a, b in pairs) > 3 * FALSE_ALARM_BOUND  # the test has teeth


@pytest.mark.parametrize("n", [78, 200, 1000])
def test_the_intervals_are_calibrated_without_any_threshold(n: int) -> None:
    # With every threshold at 0 a regression is "significant" alone: this checks the intervals
    # themselves, not the thresholds, keep the family-wise false-alarm rate below alpha.
    alarms = 0
    for seed in range(SEEDS):
        a, b = same_schedule_pair(seed, n)
        alarms += bool(compare.compare(a, b, NO_THRESHOLDS).regressions)
    assert alarms <= FALSE_ALARM_BOUND, (n, alarms)


def test_a_20_percent_ttft_regression_at_n_200_is_caught() -> None:
    caught = 0
    for seed in range(100):
        rng = np.random.default_rng([seed, 200, 7])
        base = run_report(rng, 200)
        slower = run_report(rng, 200, ttft_median_ms=300 * 1.2)
        result = compare.compare(base, slower)
        caught += any(r.metric.startswith("ttft_ms") for r in result.regressions)
    # Power from the normal approximation: log-median se 0.3·√(π/2)/√200 per run, one-sided
    # z(0.05/11) = 2.61, resolution 0.02: P(caught) ≈ 0.95 by p50 alone (measured 0.92 with the
    # rank-based se). 80 of 100 is 3 binomial standard deviations below 0.92.
    assert caught >= 80, caught


def test_the_regression_row_reports_effect_and_interval() -> None:
    rng = np.random.default_rng([3, 200, 7])
    base, slower = run_report(rng, 200), run_report(rng, 200, ttft_median_ms=360)
    result = compare.compare(base, slower)
    row = next(r for r in result.rows if r.metric == "ttft_ms p50")
    assert row.verdict == Verdict.REGRESSION and row.samples == (row.samples[0], row.samples[1])
    assert row.low is not None and row.high is not None and row.change is not None
    assert 0 < row.low < 20 < row.high and row.low < row.change < row.high
    assert result.rows[-1].metric == "slo" and result.rows[-1].verdict == Verdict.INFO
    p99 = next(r for r in result.rows if r.metric == "ttft_ms p99")
    need = significance.min_samples_for(0.99)
    assert p99.verdict == Verdict.NOT_ENOUGH and f"needs ≥ {need} samples" in p99.note
    assert 0.99 < result.per_test_level < 1 and result.tests == 11


def test_a_significant_change_inside_the_threshold_does_not_fail() -> None:
    rng = np.random.default_rng(11)
    base, slightly = run_report(rng, 5000), run_report(rng, 5000, ttft_median_ms=300 * 1.07)
    row = next(r for r in compare.compare(base, slightly).rows if r.metric == "ttft_ms p50")
    assert row.verdict == Verdict.WITHIN and row.low is not None and row.low > 0


def test_small_runs_get_not_enough_data_instead_of_a_verdict() -> None:
    rng = np.random.default_rng(5)
    a, b = run_report(rng, 12), run_report(rng, 12, ttft_median_ms=900, error_rate=0.5)
    rows = compare.compare(a, b).rows
    assert all(r.verdict in (Verdict.NOT_ENOUGH, Verdict.INFO) for r in rows), rows
    assert (
        "fewer than 30" in rows[0].note
        and "fewer than 30" in next(r for r in rows if r.metric == "error_rate").note
    )
    relaxed = compare.compare(a, b, opts=compare.Options(min_samples=5))
    assert any(r.verdict != Verdict.NOT_ENOUGH for r in relaxed.rows if r.metric == "error_rate")


def test_itl_counts_streams_not_gaps() -> None:
    # 40 streams of 200 gaps: 8,000 gap values, but only 40 independent streams.
    rng = np.random.default_rng(2)
    a, b = run_report(rng, 40, tokens=201), run_report(rng, 40, tokens=201)
    itl = next(
        r
        for r in compare.compare(a, b, opts=compare.Options(min_samples=50)).rows
        if r.metric == "itl_ms p50"
    )
    assert itl.verdict == Verdict.NOT_ENOUGH and itl.samples == (a["histograms"]["latency"]["ttft_ms"]["count"],
                                                                 b["histograms"]["latency"]["ttft_ms"]["count"])  # fmt: skip


def test_error_rate_and_throughput_regressions() -> None:
    rng = np.random.default_rng(4)
    counts = np.full(20, 10)
    base = run_report(rng, 200, error_rate=0.0, window_counts=counts)
    failing = run_report(rng, 200, error_rate=0.15, window_counts=counts)
    slower = run_report(rng, 200, error_rate=0.0, window_counts=(counts * 0.7).round())
    assert {r.metric for r in compare.compare(base, failing).regressions} == {
        "error_rate",
        "output_tokens_per_s",
    }
    assert "achieved_rps" in {r.metric for r in compare.compare(base, slower).regressions}


def test_quantile_standard_error_matches_theory() -> None:
    # Median of a lognormal: se(log median) = sigma·√(π/2)/√n.
    rng = np.random.default_rng(9)
    n, sigma = 4000, 0.5
    est = significance.quantile_estimate(histogram(rng.lognormal(3, sigma, n)), 0.5)
    assert est is not None
    expected = sigma * math.sqrt(math.pi / 2) / math.sqrt(n)
    assert est.log_se == pytest.approx(expected, rel=0.15)  # the rank bracket's own noise at n=4000
    need = significance.min_samples_for(0.99)  # about 1.96²·0.99/0.01 = 380
    assert 370 < need < 400
    assert significance.rank_bracket(need - 1, 0.99) is None and significance.rank_bracket(need, 0.99)


@pytest.mark.parametrize("df", [compare.MIN_WINDOWS - 1, 30, 200])
@pytest.mark.parametrize("p", [0.05, 0.005, 0.0005, 0.0001])
def test_t_quantiles_match_scipy(df: int, p: float) -> None:
    assert significance.t_upper(p, df) == pytest.approx(stats.t.isf(p, df), rel=0.001)


def test_newcombe_interval_matches_the_published_example() -> None:
    # Newcombe (1998), table II, example (a): 56/70 vs 48/80, 95 % interval of the difference
    # 0.0524 to 0.3339 (method 10).
    iv = significance.proportion_difference(48, 80, 56, 70, significance.z_upper(0.025))
    assert (round(iv.low, 4), round(iv.high, 4)) == (0.0524, 0.3339)


def test_compare_cli_prints_intervals_exits_on_regressions_and_writes_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng([3, 200, 7])
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(run_report(rng, 200)))
    b.write_text(json.dumps(run_report(rng, 200, ttft_median_ms=360)))
    assert main(["report", "compare", str(a), str(a)]) == 0
    out = capsys.readouterr().out
    assert "no regression" in out and "not enough data" in out
    assert main(["report", "compare", str(a), str(b), "--json", str(tmp_path / "cmp.json")]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION" in out and "ttft_ms p50" in out and "family false-alarm rate 5 %" in out
    doc = json.loads((tmp_path / "cmp.json").read_text())
    assert doc["regressed"] is True and doc["tests"] == 11
    assert main(["report", "compare", str(a), str(b), "--latency-pct", "150"]) == 0
    assert main(["report", "compare", str(a), str(b), "--min-samples", "500"]) == 0
    assert "not enough data" in capsys.readouterr().out
    (tmp_path / "bad.json").write_text("{")
    assert main(["report", "compare", str(a), str(tmp_path / "bad.json")]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    (tmp_path / "future.json").write_text(json.dumps({"schema_version": 99}))
    assert main(["report", "compare", str(a), str(tmp_path / "future.json")]) == 2
    assert "schema_version 99 is not 1 or 2" in capsys.readouterr().err
    assert main(["report", "compare", str(a), str(a), "--alpha", "2"]) == 2


def test_workflows_are_compared_by_conversation_latency_and_failure_rate() -> None:
    rng = np.random.default_rng(8)

    def with_workflow(doc: dict[str, object], median_ms: float, failed: int) -> dict[str, object]:
        e2e = histogram(rng.lognormal(math.log(median_ms), 0.2, 300 - failed))
        doc["workflows"] = {"chat": {"succeeded": 300 - failed, "failed": failed}}
        doc["histograms"]["workflows"] = {"chat": {"e2e_ms": e2e.to_dict()}}  # type: ignore[index]
        return doc

    base = with_workflow(run_report(rng, 300), 2000, 3)
    worse = with_workflow(run_report(rng, 300), 2600, 45)
    regressed = {r.metric for r in compare.compare(base, worse).regressions}
    assert {"workflow chat e2e_ms p50", "workflow chat failure rate"} <= regressed
    same = with_workflow(run_report(rng, 300), 2000, 3)
    assert not any(r.metric.startswith("workflow") for r in compare.compare(base, same).regressions)
