"""`llmsim report compare BASELINE CANDIDATE`: per-metric decisions that account for sample size
and histogram resolution (pure; the interval math is in `significance.py`).

A metric regressed when its change is *significant* (the one-sided confidence bound excludes no
change, with the family's false-alarm rate split over the tests by Bonferroni) *and* beyond the
user's threshold. Metrics with too few samples get "not enough data" instead of a verdict.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from llmsim.errors import LLMSimError
from llmsim.loadgen import significance
from llmsim.loadgen.histogram import LogHistogram
from llmsim.loadgen.report import SCHEMA_VERSION
from llmsim.loadgen.results import LATENCY_METRICS

READABLE_VERSIONS = (1, SCHEMA_VERSION)
"""Report schema versions compare reads (what it needs is the same in both)."""
PERCENTILES = (50, 95, 99)
MIN_WINDOWS = 10
"""Per-window rates need at least this many windows in each run."""


@dataclass(frozen=True)
class Thresholds:
    latency_pct: float = 10.0
    """A latency percentile regresses when it grows by more than this many percent ..."""
    latency_min_ms: float = 1.0
    """... and by more than this many milliseconds (ignores noise on tiny values)."""
    error_rate_pp: float = 1.0
    """The error rate regresses when it grows by more than this many percentage points."""
    throughput_pct: float = 10.0
    """Achieved request rate and output tokens/s regress when they drop by more than this many percent."""


@dataclass(frozen=True)
class Options:
    alpha: float = 0.05
    """Family-wise false-alarm rate: the chance that two runs of one system show any regression."""
    min_samples: int = 30
    """Fewer samples than this in either run: "not enough data" (requests for rates, values for
    latencies; ITL counts streams, not gaps)."""


class Verdict(StrEnum):
    REGRESSION = "regression"
    """Significantly worse and beyond the threshold: fails the comparison."""
    IMPROVEMENT = "improvement"
    """Significantly better and beyond the threshold."""
    WITHIN = "within threshold"
    """A significant change, but smaller than the threshold."""
    NO_CHANGE = "no significant change"
    NOT_ENOUGH = "not enough data"
    INFO = "info"
    """Shown, not tested (the SLO verdicts)."""


@dataclass(frozen=True)
class Row:
    metric: str
    baseline: float | None
    candidate: float | None
    verdict: Verdict
    change: float | None = None
    """Relative change in percent (latencies, rates) or the difference in percentage points (error rate)."""
    low: float | None = None
    high: float | None = None
    """Interval of `change`; each end is a one-sided bound at the per-test confidence level."""
    unit: str = "%"
    samples: tuple[int, int] = (0, 0)
    note: str = ""

    @property
    def regressed(self) -> bool:
        return self.verdict == Verdict.REGRESSION

    def to_dict(self) -> dict[str, Any]:
        def r(x: float | None) -> float | None:
            return None if x is None or not math.isfinite(x) else round(x, 4)

        return {
            "metric": self.metric,
            "baseline": r(self.baseline),
            "candidate": r(self.candidate),
            "change": r(self.change),
            "interval": None if self.low is None or self.high is None else [r(self.low), r(self.high)],
            "unit": self.unit,
            "samples": list(self.samples),
            "verdict": self.verdict.value,
            "note": self.note,
        }


@dataclass
class Comparison:
    rows: list[Row]
    alpha: float
    tests: int
    """Metrics with enough data that were tested (the Bonferroni divisor)."""
    thresholds: Thresholds = field(default_factory=Thresholds)

    @property
    def per_test_level(self) -> float:
        """Confidence of each one-sided bound: 1 − alpha / tests."""
        return 1 - self.alpha / max(1, self.tests)

    @property
    def regressions(self) -> list[Row]:
        return [r for r in self.rows if r.regressed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "tests": self.tests,
            "per_test_level": round(self.per_test_level, 6),
            "regressed": bool(self.regressions),
            "rows": [r.to_dict() for r in self.rows],
        }


# A planned test: everything known before the confidence level is fixed. `decide(z, p)` returns
# the row once the per-test level is known (z for normal-based, p for t-based intervals).
Decide = Callable[[float, float], Row]


def _latency_test(
    name: str, a: LogHistogram, b: LogHistogram, n_eff: tuple[int | None, int | None], q: float,
    th: Thresholds, opts: Options,
) -> Row | Decide | None:  # fmt: skip
    if a.count == 0 and b.count == 0:
        return None  # not measured in either run (e.g. TPOT without streams)
    qa, qb = a.quantile(q), b.quantile(q)
    n = (n_eff[0] or a.count, n_eff[1] or b.count)
    if min(n) < opts.min_samples:
        return Row(name, qa, qb, Verdict.NOT_ENOUGH, samples=n, note=f"fewer than {opts.min_samples} samples")
    est_a = significance.quantile_estimate(a, q, n_eff[0])
    est_b = significance.quantile_estimate(b, q, n_eff[1])
    if est_a is None or est_b is None:
        need = significance.min_samples_for(q)
        return Row(name, qa, qb, Verdict.NOT_ENOUGH, samples=n, note=f"p{q * 100:g} needs ≥ {need} samples")

    def decide(z: float, _p: float) -> Row:
        iv = significance.log_ratio_interval(est_a, est_b, z, max(a.accuracy, b.accuracy))
        change, low, high = (100 * math.expm1(x) for x in (iv.estimate, iv.low, iv.high))
        grew = est_b.value - est_a.value
        if iv.low > 0:
            big = change > th.latency_pct and grew > th.latency_min_ms
            verdict = Verdict.REGRESSION if big else Verdict.WITHIN
        elif iv.high < 0:
            big = -change > th.latency_pct and -grew > th.latency_min_ms
            verdict = Verdict.IMPROVEMENT if big else Verdict.WITHIN
        else:
            verdict = Verdict.NO_CHANGE
        return Row(name, est_a.value, est_b.value, verdict, change, low, high, "%", n)

    return decide


def _proportion_test(
    name: str, failed: tuple[int, int], total: tuple[int, int], th: Thresholds, opts: Options
) -> Row | Decide:
    """A failure share (requests, or conversations) that must not rise beyond `error_rate_pp`."""
    (xa, xb), (na, nb) = failed, total
    ra = xa / na if na else None
    rb = xb / nb if nb else None
    if min(na, nb) < opts.min_samples:
        return Row(name, ra, rb, Verdict.NOT_ENOUGH, unit="pp", samples=(na, nb),
                   note=f"fewer than {opts.min_samples} samples")  # fmt: skip

    def decide(z: float, _p: float) -> Row:
        iv = significance.proportion_difference(xa, na, xb, nb, z)
        change, low, high = 100 * iv.estimate, 100 * iv.low, 100 * iv.high
        if iv.low > 0:
            verdict = Verdict.REGRESSION if change > th.error_rate_pp else Verdict.WITHIN
        elif iv.high < 0:
            verdict = Verdict.IMPROVEMENT if -change > th.error_rate_pp else Verdict.WITHIN
        else:
            verdict = Verdict.NO_CHANGE
        return Row(name, ra, rb, verdict, change, low, high, "pp", (na, nb))

    return decide


def _workflow_tests(
    baseline: dict[str, Any], candidate: dict[str, Any], th: Thresholds, opts: Options
) -> list[Row | Decide]:
    """Conversation E2E p50/p95 and the share of failed conversations, per workflow in both runs."""
    wa, wb = baseline.get("workflows") or {}, candidate.get("workflows") or {}
    ha = (baseline.get("histograms") or {}).get("workflows") or {}
    hb = (candidate.get("histograms") or {}).get("workflows") or {}
    out: list[Row | Decide] = []
    for wid in sorted(set(wa) & set(wb)):
        if wid in ha and wid in hb:
            a, b = LogHistogram.from_dict(ha[wid]["e2e_ms"]), LogHistogram.from_dict(hb[wid]["e2e_ms"])
            for pct in (50, 95):
                test = _latency_test(f"workflow {wid} e2e_ms p{pct}", a, b, (None, None), pct / 100, th, opts)
                if test is not None:
                    out.append(test)
        finished = (wa[wid]["succeeded"] + wa[wid]["failed"], wb[wid]["succeeded"] + wb[wid]["failed"])
        failed = (wa[wid]["failed"], wb[wid]["failed"])
        out.append(_proportion_test(f"workflow {wid} failure rate", failed, finished, th, opts))
    return out


def _rate_test(
    name: str, baseline: dict[str, Any], candidate: dict[str, Any], th: Thresholds, opts: Options
) -> Row | Decide | None:
    wa = [float(w[name]) for w in baseline.get("windows", [])]
    wb = [float(w[name]) for w in candidate.get("windows", [])]
    a, b = baseline["summary"].get(name), candidate["summary"].get(name)
    if a is None or b is None:
        return None
    requests = (int(baseline["summary"]["requests"]), int(candidate["summary"]["requests"]))
    if min(requests) < opts.min_samples:
        return Row(
            name, a, b, Verdict.NOT_ENOUGH, samples=requests, note=f"fewer than {opts.min_samples} requests"
        )
    if min(len(wa), len(wb)) < MIN_WINDOWS or sum(wa) <= 0:
        return Row(name, a, b, Verdict.NOT_ENOUGH, samples=(len(wa), len(wb)),
                   note=f"needs ≥ {MIN_WINDOWS} windows with traffic in each run")  # fmt: skip
    paired = baseline["run"].get("window_s") == candidate["run"].get("window_s") and len(wa) == len(wb)
    mean_a = sum(wa) / len(wa)

    def decide(_z: float, p: float) -> Row:
        iv = significance.mean_difference(wa, wb, p, paired)
        assert iv is not None
        change, low, high = (100 * x / mean_a for x in (iv.estimate, iv.low, iv.high))
        if iv.high < 0:
            verdict = Verdict.REGRESSION if -change > th.throughput_pct else Verdict.WITHIN
        elif iv.low > 0:
            verdict = Verdict.IMPROVEMENT if change > th.throughput_pct else Verdict.WITHIN
        else:
            verdict = Verdict.NO_CHANGE
        note = "paired by window" if paired else "Welch over windows"
        return Row(name, a, b, verdict, change, low, high, "%", (len(wa), len(wb)), note)

    return decide


def _hists(doc: dict[str, Any]) -> dict[str, LogHistogram]:
    return {k: LogHistogram.from_dict(v) for k, v in doc["histograms"]["latency"].items()}


def _check_version(doc: dict[str, Any], name: str) -> None:
    version = doc.get("schema_version")
    if version not in READABLE_VERSIONS:
        readable = " or ".join(str(v) for v in READABLE_VERSIONS)
        raise LLMSimError(f"{name}: report schema_version {version!r} is not {readable}")


def compare(
    baseline: dict[str, Any],
    candidate: dict[str, Any],
    th: Thresholds | None = None,
    opts: Options | None = None,
) -> Comparison:
    """Compare two report.json documents."""
    th = th or Thresholds()
    opts = opts or Options()
    if not 0 < opts.alpha < 1:
        raise LLMSimError(f"--alpha must be between 0 and 1, got {opts.alpha:g}")
    _check_version(baseline, "baseline")
    _check_version(candidate, "candidate")
    planned: list[Row | Decide] = []
    try:
        ha, hb = _hists(baseline), _hists(candidate)
        streams = (ha["ttft_ms"].count or None, hb["ttft_ms"].count or None)
        for metric in LATENCY_METRICS:
            n_eff = streams if metric == "itl_ms" else (None, None)
            for pct in PERCENTILES:
                test = _latency_test(f"{metric} p{pct}", ha[metric], hb[metric], n_eff, pct / 100, th, opts)
                if test is not None:
                    planned.append(test)
        summaries = baseline["summary"], candidate["summary"]
        failed = (int(summaries[0]["failed"]), int(summaries[1]["failed"]))
        requests = (int(summaries[0]["requests"]), int(summaries[1]["requests"]))
        planned.append(_proportion_test("error_rate", failed, requests, th, opts))
        for name in ("achieved_rps", "output_tokens_per_s"):
            rate = _rate_test(name, baseline, candidate, th, opts)
            if rate is not None:
                planned.append(rate)
        planned.extend(_workflow_tests(baseline, candidate, th, opts))
        tests = sum(1 for t in planned if not isinstance(t, Row))
        p = opts.alpha / max(1, tests)
        z = significance.z_upper(p)
        rows = [t if isinstance(t, Row) else t(z, p) for t in planned]
        a_slo, b_slo = bool(baseline["slo"]["passed"]), bool(candidate["slo"]["passed"])
        word = {True: "pass", False: "fail"}
        rows.append(Row("slo", None, None, Verdict.INFO, unit="", note=f"{word[a_slo]} → {word[b_slo]}"))
    except (KeyError, TypeError, ValueError) as exc:
        raise LLMSimError(f"a report lacks a field the comparison needs: {exc}") from None
    return Comparison(rows, opts.alpha, tests, th)
