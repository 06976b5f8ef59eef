"""Synthetic report.json documents drawn from known distributions (fast: numpy-built histograms)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from llmsim.loadgen.histogram import LogHistogram
from llmsim.loadgen.report import SCHEMA_VERSION


def histogram(values: np.ndarray) -> LogHistogram:
    """A LogHistogram of `values`, built vectorised (same buckets as `LogHistogram.record`)."""
    hist = LogHistogram()
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return hist
    idx = np.ceil(np.log(values) / math.log(hist.gamma)).astype(np.int64)
    keys, counts = np.unique(idx, return_counts=True)
    hist.counts = {int(k): int(c) for k, c in zip(keys, counts, strict=True)}
    hist.count = int(values.size)
    hist.total = float(values.sum())
    hist.min, hist.max = float(values.min()), float(values.max())
    return hist


def run_report(
    rng: np.random.Generator,
    n: int,
    *,
    ttft_median_ms: float = 300.0,
    ttft_sigma: float = 0.3,
    itl_median_ms: float = 20.0,
    tokens: int = 32,
    error_rate: float = 0.02,
    window_counts: np.ndarray | None = None,
) -> dict[str, Any]:
    """One run of `n` requests; `window_counts` (requests sent per 1 s window) default to n/20 each."""
    failed = int(rng.binomial(n, error_rate))
    ok = n - failed
    ttft = rng.lognormal(math.log(ttft_median_ms), ttft_sigma, ok)
    gaps = rng.lognormal(math.log(itl_median_ms), 0.25, (ok, tokens - 1))
    e2e = ttft + gaps.sum(axis=1)
    tpot = (e2e - ttft) / (tokens - 1)
    hists = {
        "ttft_ms": histogram(ttft),
        "itl_ms": histogram(gaps.ravel()),
        "e2e_ms": histogram(e2e),
        "tpot_ms": histogram(tpot),
    }
    counts = window_counts if window_counts is not None else np.full(20, n / 20)
    windows = [
        {"achieved_rps": float(c), "output_tokens_per_s": float(c) * tokens * (1 - error_rate)}
        for c in counts
    ]
    return {
        "schema_version": SCHEMA_VERSION,
        "run": {"window_s": 1.0},
        "summary": {
            "requests": n,
            "failed": failed,
            "error_rate": failed / n,
            "achieved_rps": float(np.mean(counts)),
            "output_tokens_per_s": float(np.mean(counts)) * tokens * (1 - error_rate),
        },
        "latency": {k: h.summary((0.5, 0.9, 0.95, 0.99)) for k, h in hists.items()},
        "windows": windows,
        "slo": {"passed": True},
        "histograms": {"latency": {k: h.to_dict() for k, h in hists.items()}},
    }
