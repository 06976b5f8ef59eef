"""SLO evaluation over the whole run and per time window (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmsim.api.scenario import Slo
from llmsim.loadgen.results import Stats


@dataclass(frozen=True)
class Verdict:
    value: float | None
    """The measured value (None: no data, e.g. no streamed request succeeded)."""
    passed: bool | None
    """None when there was no data to judge."""


def measure(slo: Slo, stats: Stats) -> float | None:
    """The value `slo` judges, measured on `stats`."""
    if slo.metric == "error_rate":
        return stats.failed / stats.requests if stats.requests else None
    hists = stats.intended if slo.from_intended_send else stats.latency
    assert slo.percentile is not None
    return hists[slo.metric].quantile(slo.percentile / 100)


def judge(slo: Slo, stats: Stats) -> Verdict:
    value = measure(slo, stats)
    if value is None:
        # No successful request at all: a latency objective cannot be met.
        if slo.metric != "error_rate" and stats.requests:
            return Verdict(None, False)
        return Verdict(None, None)
    return Verdict(value, value < slo.threshold)


def evaluate(slos: list[Slo], total: Stats, windows: list[Stats], window_s: float) -> dict[str, Any]:
    """The `slo` section of report.json."""
    objectives: list[dict[str, Any]] = []
    for slo in slos:
        overall = judge(slo, total)
        failed: list[int] = []
        evaluated = 0
        for i, win in enumerate(windows):
            verdict = judge(slo, win)
            if verdict.passed is None:
                continue
            evaluated += 1
            if not verdict.passed:
                failed.append(i)
        objectives.append(
            {
                "name": slo.label(),
                "metric": slo.metric,
                "percentile": slo.percentile,
                "threshold": slo.threshold,
                "from_intended_send": slo.from_intended_send,
                "value": None if overall.value is None else round(overall.value, 6),
                "passed": overall.passed,
                "windows_evaluated": evaluated,
                "windows_failed": failed,
                "windows_failed_at_s": [
                    [round(i * window_s, 3), round((i + 1) * window_s, 3)] for i in failed
                ],
            }
        )
    verdicts = [o["passed"] for o in objectives]
    return {
        "passed": all(v is True for v in verdicts),
        "windows_passed": all(not o["windows_failed"] for o in objectives),
        "objectives": objectives,
    }
