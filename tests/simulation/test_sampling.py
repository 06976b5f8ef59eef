"""Sampling reproduces the configured distributions (KS tests, percentile tests with binomial bounds)."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest
from scipy import stats

from llmsim.api.distributions import (
    Constant,
    Distribution,
    Empirical,
    Exponential,
    Gamma,
    LogNormal,
    Normal,
    Uniform,
)
from llmsim.simulation import sampling

N = 5000
ALPHA = 0.001  # false-alarm rate per test; seeds are fixed, so results are stable anyway


@pytest.mark.parametrize(
    ("dist", "cdf"),
    [
        (Uniform(low=10, high=30), stats.uniform(loc=10, scale=20).cdf),
        (Normal(mean=200, stddev=20), stats.norm(loc=200, scale=20).cdf),
        (LogNormal(median=300, sigma=0.4), stats.lognorm(s=0.4, scale=300).cdf),
        (Gamma(shape=2.5, scale=8), stats.gamma(a=2.5, scale=8).cdf),
        (Exponential(mean=50), stats.expon(scale=50).cdf),
    ],
    ids=["uniform", "normal", "lognormal", "gamma", "exponential"],
)
def test_samples_follow_the_configured_distribution(dist: Distribution, cdf: object) -> None:
    samples = sampling.sample(dist, np.random.default_rng(1234), N)
    result = stats.kstest(samples, cdf)
    assert result.pvalue > ALPHA, f"KS rejects {dist.type}: D={result.statistic:.4f}, p={result.pvalue:.2e}"


def test_a_ks_test_would_notice_the_wrong_distribution() -> None:
    """Guard against a vacuous KS check: a lognormal is not accepted as the wrong lognormal."""
    samples = sampling.sample(LogNormal(median=300, sigma=0.4), np.random.default_rng(1234), N)
    assert stats.kstest(samples, stats.lognorm(s=0.4, scale=320).cdf).pvalue < ALPHA


def test_constant_is_constant_and_clamps_apply() -> None:
    rng = np.random.default_rng(0)
    assert set(sampling.sample(Constant(value=7), rng, 100)) == {7.0}
    clamped = sampling.sample(Normal(mean=10, stddev=50, min=5, max=20), rng, 2000)
    assert clamped.min() >= 5 and clamped.max() <= 20
    assert (sampling.sample(Normal(mean=0, stddev=5), rng, 2000) >= 0).all(), "latencies are never negative"


def _order_statistic_bounds(q: float, n: int, confidence: float = 0.999) -> tuple[int, int]:
    """Ranks (0-based) that bracket the true q-quantile with the given confidence (normal approx. of the binomial)."""
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    half = z * math.sqrt(n * q * (1 - q))
    return max(0, math.floor(n * q - half)), min(n - 1, math.ceil(n * q + half))


@pytest.mark.parametrize(
    "percentiles",
    [
        {"p50": 300, "p90": 520, "p99": 1100},
        {"p10": 50, "p50": 80, "p95": 400, "p99.9": 2000},
        {"p50": 20, "p99": 21},
    ],
)
def test_empirical_profiles_reproduce_their_percentiles(percentiles: dict[str, float]) -> None:
    dist = Empirical(percentiles=percentiles)
    samples = np.sort(sampling.sample(dist, np.random.default_rng(99), 20_000))
    for q, value in dist.points():
        lo, hi = _order_statistic_bounds(q, len(samples))
        assert samples[lo] <= value <= samples[hi], (
            f"p{q * 100:g}={value} outside [{samples[lo]:.2f}, {samples[hi]:.2f}]"
        )


def test_empirical_quantile_function_passes_exactly_through_the_points() -> None:
    dist = Empirical(percentiles={"p50": 300, "p90": 520, "p99": 1100})
    for q, value in dist.points():
        assert sampling.quantile_of(dist, q) == pytest.approx(value, rel=1e-6)


def test_same_seed_same_samples() -> None:
    dist = LogNormal(median=100, sigma=0.5)
    a = sampling.sample(dist, np.random.default_rng(5), 50)
    b = sampling.sample(dist, np.random.default_rng(5), 50)
    assert (a == b).all()


@pytest.mark.parametrize(
    "dist",
    [
        Uniform(low=1, high=3),
        Normal(mean=5, stddev=1),
        LogNormal(median=5, sigma=0.3),
        Exponential(mean=4),
        Gamma(shape=2, scale=2),
    ],
)
def test_means_match_the_closed_forms(dist: Distribution) -> None:
    samples = sampling.sample(dist, np.random.default_rng(3), 20_000)
    stderr = samples.std() / math.sqrt(len(samples))
    assert abs(samples.mean() - sampling.mean_of(dist)) < 5 * stderr
