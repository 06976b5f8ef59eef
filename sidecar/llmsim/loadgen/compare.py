"""`llmsim report compare BASELINE CANDIDATE`: flag regressions beyond thresholds (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmsim.errors import LLMSimError
from llmsim.loadgen.report import SCHEMA_VERSION


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
class Row:
    metric: str
    baseline: float | None
    candidate: float | None
    change: str
    regressed: bool


LATENCY_KEYS = ("p50", "p95", "p99")


def _check_version(doc: dict[str, Any], name: str) -> None:
    version = doc.get("schema_version")
    if version != SCHEMA_VERSION:
        raise LLMSimError(f"{name}: report schema_version {version!r} is not {SCHEMA_VERSION}")


def compare(baseline: dict[str, Any], candidate: dict[str, Any], th: Thresholds) -> list[Row]:
    _check_version(baseline, "baseline")
    _check_version(candidate, "candidate")
    rows: list[Row] = []
    try:
        for metric in ("ttft_ms", "itl_ms", "e2e_ms", "tpot_ms"):
            for key in LATENCY_KEYS:
                a = baseline["latency"][metric][key]
                b = candidate["latency"][metric][key]
                if a is None or b is None:
                    if a is not None and b is None:
                        rows.append(Row(f"{metric} {key}", a, b, "no data", True))
                    continue
                grew = b - a
                pct = 100 * grew / a if a > 0 else (0.0 if grew == 0 else float("inf"))
                bad = grew > th.latency_min_ms and pct > th.latency_pct
                rows.append(Row(f"{metric} {key}", a, b, f"{pct:+.1f} %", bad))
        a_err, b_err = baseline["summary"]["error_rate"], candidate["summary"]["error_rate"]
        delta_pp = 100 * (b_err - a_err)
        rows.append(Row("error_rate", a_err, b_err, f"{delta_pp:+.2f} pp", delta_pp > th.error_rate_pp))
        for metric in ("achieved_rps", "output_tokens_per_s"):
            a, b = baseline["summary"][metric], candidate["summary"][metric]
            pct = 100 * (b - a) / a if a else 0.0
            rows.append(Row(metric, a, b, f"{pct:+.1f} %", -pct > th.throughput_pct))
        a_slo, b_slo = baseline["slo"]["passed"], candidate["slo"]["passed"]
        rows.append(
            Row(
                "slo passed",
                float(a_slo),
                float(b_slo),
                "" if a_slo == b_slo else "changed",
                a_slo and not b_slo,
            )
        )
    except (KeyError, TypeError) as exc:
        raise LLMSimError(f"a report lacks a field the comparison needs: {exc}") from None
    return rows
