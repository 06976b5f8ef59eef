"""Confidence intervals that `llmsim report compare` decides with (pure: math and the standard library).

* Percentiles: the distribution-free order-statistic method. For n samples the q-quantile's rank
  has a Binomial(n, q) spread, so the values at ranks nq ∓ z_c·√(nq(1−q)) bracket it; half their
  distance on the log scale over z_c is the standard error of log(quantile) (McKean & Schrader
  1984; Price & Bonett 2002 for ratios of medians). Two runs' errors combine as √(se₁² + se₂²).
  It reads only ranks, so it works on the mergeable log histograms, whose resolution (a bucket
  is γ = (1+a)/(1−a) wide) is added to the interval as a worst-case term.
* Error rates: Newcombe's hybrid score interval for the difference of two proportions (built from
  Wilson intervals; well-behaved at zero failures and small counts).
* Rates per window: a paired (same window grid) or Welch mean difference, with a Student t
  quantile from its Cornish–Fisher expansion.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

from llmsim.loadgen.histogram import MIN_VALUE, LogHistogram

RANK_Z = NormalDist().inv_cdf(0.975)
"""z of the rank bracket used to estimate a quantile's standard error (a 95 % rank interval)."""


def z_upper(p: float) -> float:
    """The standard normal quantile of 1 − p (p in (0, 1))."""
    return NormalDist().inv_cdf(1.0 - p)


def t_upper(p: float, df: float) -> float:
    """The Student t quantile of 1 − p with `df` degrees of freedom (Cornish–Fisher expansion in
    1/df around the normal quantile; within 0.1 % of the exact value for df ≥ 9 and p ≥ 1e-4)."""
    z = z_upper(p)
    if math.isinf(df):
        return z
    v = max(df, 1.0)
    z3, z5, z7, z9 = z**3, z**5, z**7, z**9
    return (
        z
        + (z3 + z) / (4 * v)
        + (5 * z5 + 16 * z3 + 3 * z) / (96 * v**2)
        + (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / (384 * v**3)
        + (79 * z9 + 776 * z7 + 1482 * z5 - 1920 * z3 - 945 * z) / (92160 * v**4)
    )


@dataclass(frozen=True)
class QuantileEstimate:
    value: float
    """The nearest-rank quantile (as `LogHistogram.quantile` reports it)."""
    log_se: float
    """Standard error of log(value)."""
    count: int


def rank_bracket(n: int, q: float, z: float = RANK_Z) -> tuple[int, int] | None:
    """1-based ranks (lo, hi) around the q-quantile of n samples, or None when n is too small
    for the bracket to fit inside 1..n (e.g. p99 needs n ≥ z²·q/(1−q) ≈ 380)."""
    if n <= 0 or not 0 < q < 1:
        return None
    centre = n * q
    spread = z * math.sqrt(n * q * (1 - q))
    lo, hi = math.floor(centre - spread), math.ceil(centre + spread)
    if lo < 1 or hi > n:
        return None
    return lo, hi


def min_samples_for(q: float, z: float = RANK_Z) -> int:
    """The smallest n whose rank bracket around the q-quantile fits (p50: 4, p95: 74, p99: 381)."""
    n = max(1, math.floor(z * z * q / (1 - q)))
    while rank_bracket(n, q, z) is None:
        n += 1
    return n


def quantile_estimate(
    hist: LogHistogram, q: float, effective_n: int | None = None
) -> QuantileEstimate | None:
    """The q-quantile of `hist` with the standard error of its log, or None without enough data.

    `effective_n` < count declares the samples correlated in clusters (ITL gaps within one
    stream): the standard error is scaled by √(count / effective_n), the design effect of
    perfectly correlated clusters (conservative)."""
    value = hist.quantile(q)
    bracket = rank_bracket(hist.count, q)
    if value is None or bracket is None:
        return None
    lo = max(hist.value_at_rank(bracket[0]), MIN_VALUE)
    hi = max(hist.value_at_rank(bracket[1]), MIN_VALUE)
    se = (math.log(hi) - math.log(lo)) / (2 * RANK_Z)
    if effective_n is not None and 0 < effective_n < hist.count:
        if rank_bracket(effective_n, q) is None:
            return None
        se *= math.sqrt(hist.count / effective_n)
    return QuantileEstimate(value, se, hist.count)


def resolution_log(accuracy: float) -> float:
    """Worst-case error of log(quantile ratio) from two histograms' bucketing: each reported value
    is within a relative `accuracy` of a real sample, so the ratio is off by at most this."""
    return -2 * math.log(1 - accuracy)


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float


def log_ratio_interval(a: QuantileEstimate, b: QuantileEstimate, z: float, accuracy: float) -> Interval:
    """Interval of log(b / a) whose ends are one-sided bounds at the level of `z`, widened by the
    histograms' resolution."""
    d = math.log(max(b.value, MIN_VALUE)) - math.log(max(a.value, MIN_VALUE))
    half = z * math.hypot(a.log_se, b.log_se) + resolution_log(accuracy)
    return Interval(d, d - half, d + half)


def wilson(successes: int, n: int, z: float) -> tuple[float, float]:
    """Wilson score interval of a proportion."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def proportion_difference(x_a: int, n_a: int, x_b: int, n_b: int, z: float) -> Interval:
    """Newcombe's hybrid score interval of p_b − p_a (method 10 of Newcombe 1998)."""
    p_a, p_b = x_a / n_a, x_b / n_b
    l_a, u_a = wilson(x_a, n_a, z)
    l_b, u_b = wilson(x_b, n_b, z)
    d = p_b - p_a
    low = d - math.sqrt((p_b - l_b) ** 2 + (u_a - p_a) ** 2)
    high = d + math.sqrt((u_b - p_b) ** 2 + (p_a - l_a) ** 2)
    return Interval(d, low, high)


def _mean_var(xs: list[float]) -> tuple[float, float]:
    n = len(xs)
    mean = sum(xs) / n
    var = sum((x - mean) ** 2 for x in xs) / (n - 1) if n > 1 else 0.0
    return mean, var


def mean_difference(a: list[float], b: list[float], p: float, paired: bool) -> Interval | None:
    """Interval of mean(b) − mean(a) whose ends are one-sided bounds at level 1 − p: paired
    differences when the two series share their grid, else Welch's unequal-variance interval."""
    if len(a) < 2 or len(b) < 2:
        return None
    if paired and len(a) == len(b):
        diffs = [y - x for x, y in zip(a, b, strict=True)]
        mean, var = _mean_var(diffs)
        se = math.sqrt(var / len(diffs))
        t = t_upper(p, len(diffs) - 1)
        return Interval(mean, mean - t * se, mean + t * se)
    mean_a, var_a = _mean_var(a)
    mean_b, var_b = _mean_var(b)
    va, vb = var_a / len(a), var_b / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        d = mean_b - mean_a
        return Interval(d, d, d)
    df = (va + vb) ** 2 / ((va**2 / (len(a) - 1)) + (vb**2 / (len(b) - 1)))
    t = t_upper(p, df)
    d = mean_b - mean_a
    return Interval(d, d - t * se, d + t * se)
