"""Arrival-rate curves and schedules: counts per window follow the intended curve."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import integrate

from llmsim.api.scenario import Chaos, Diurnal, Pattern, RampUp, Spike, Stage, Steady, Step, Wave
from llmsim.loadgen import patterns

DURATION = 60.0
WINDOW = 2.0
Z = 4.5
"""Allowed deviation in Poisson standard deviations (about 1e-5 two-sided per window)."""

PATTERNS: dict[str, Pattern] = {
    "steady": Steady(rps=40),
    "ramp_up": RampUp(start_rps=5, end_rps=80, ramp_duration_s=40),
    "spike": Spike(base_rps=10, peak_rps=120, at_s=20, width_s=6),
    "wave": Wave(mean_rps=40, amplitude_rps=30, period_s=20),
    "step": Step(
        stages=[Stage(duration_s=15, rps=10), Stage(duration_s=15, rps=60), Stage(duration_s=10, rps=30)]
    ),
    "diurnal": Diurnal(peak_rps=80, trough_rps=5),
    "chaos": Chaos(mean_rps=30, mean_segment_s=4),
}


def window_counts(times: np.ndarray) -> np.ndarray:
    return np.asarray(np.histogram(times, bins=np.arange(0.0, DURATION + WINDOW / 2, WINDOW))[0])


def expected_counts(pattern: Pattern, seed: int = 0) -> np.ndarray:
    edges = np.arange(0.0, DURATION + WINDOW / 2, WINDOW)
    return np.array(
        [patterns.expected_count(pattern, DURATION, a, b, seed) for a, b in itertools.pairwise(edges)]
    )


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_poisson_counts_per_window_follow_the_curve(name: str) -> None:
    pattern = PATTERNS[name]
    times = patterns.arrival_times(pattern, DURATION, np.random.default_rng(1234), "poisson", seed=5)
    observed = window_counts(times)
    expected = expected_counts(pattern, seed=5)
    bound = Z * np.sqrt(np.maximum(expected, 1.0)) + 1
    assert np.all(np.abs(observed - expected) <= bound), list(
        zip(observed, np.round(expected, 1), strict=False)
    )
    assert np.all(np.diff(times) >= 0) and times.min() >= 0 and times.max() < DURATION


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_constant_spacing_matches_the_curve_within_one_request(name: str) -> None:
    pattern = PATTERNS[name]
    times = patterns.arrival_times(pattern, DURATION, np.random.default_rng(0), "constant", seed=5)
    observed = window_counts(times)
    assert np.all(np.abs(observed - expected_counts(pattern, seed=5)) <= 1.01)


def test_a_wrong_curve_would_be_caught() -> None:
    # The check above must be able to fail: steady arrivals judged against the spike curve do not fit.
    times = patterns.arrival_times(Steady(rps=40), DURATION, np.random.default_rng(1), "poisson")
    expected = expected_counts(PATTERNS["spike"])
    bound = Z * np.sqrt(np.maximum(expected, 1.0)) + 1
    assert not np.all(np.abs(window_counts(times) - expected) <= bound)


def test_rates_at_known_points() -> None:
    t = np.array([0.0, 10.0, 20.0, 25.9, 26.0, 59.9, 60.0])
    assert list(patterns.rate(PATTERNS["spike"], t, DURATION)) == [10, 10, 120, 120, 10, 10, 0]
    ramp = patterns.rate(PATTERNS["ramp_up"], np.array([0.0, 20.0, 40.0, 50.0]), DURATION)
    assert ramp == pytest.approx([5, 42.5, 80, 80])
    step = patterns.rate(PATTERNS["step"], np.array([0.0, 14.9, 15.0, 35.0, 45.0]), DURATION)
    assert list(step) == [10, 10, 60, 30, 30]
    wave = patterns.rate(Wave(mean_rps=10, amplitude_rps=20, period_s=4), np.linspace(0, 8, 81), DURATION)
    assert wave.min() == 0 and wave.max() == pytest.approx(30)
    diurnal = PATTERNS["diurnal"]
    assert isinstance(diurnal, Diurnal)
    noon = patterns.rate(diurnal, np.array([DURATION * 11 / 24]), DURATION)[0]
    assert noon == pytest.approx(80)  # hour 11 has shape 1.0 in the default day


def test_chaos_is_reproducible_from_its_seed_and_varies_with_it() -> None:
    chaos = PATTERNS["chaos"]
    assert isinstance(chaos, Chaos)
    a = patterns.chaos_segments(chaos, DURATION, seed=1)
    b = patterns.chaos_segments(chaos, DURATION, seed=1)
    c = patterns.chaos_segments(chaos, DURATION, seed=2)
    assert np.array_equal(a.rates, b.rates) and np.array_equal(a.starts, b.starts)
    assert not (len(a.starts) == len(c.starts) and np.array_equal(a.starts, c.starts))
    levels = set(np.round(a.rates, 6))
    assert {30 * 4.0, 30 * 0.1, 30.0} <= levels  # bursts, lulls and normal stretches all occur


def test_same_seed_same_schedule() -> None:
    one = patterns.arrival_times(PATTERNS["wave"], DURATION, np.random.default_rng([7, 1]))
    two = patterns.arrival_times(PATTERNS["wave"], DURATION, np.random.default_rng([7, 1]))
    assert np.array_equal(one, two)


def test_worker_shares_partition_the_schedule() -> None:
    times = patterns.arrival_times(PATTERNS["steady"], 10.0, np.random.default_rng(3))
    shares = [patterns.worker_share(times, 4, i) for i in range(4)]
    joined = np.sort(np.concatenate(shares))
    assert np.array_equal(joined, np.arange(len(times)))
    assert max(len(s) for s in shares) - min(len(s) for s in shares) <= 1
    with pytest.raises(ValueError, match="outside"):
        patterns.worker_share(times, 4, 4)


def test_zero_rate_means_no_arrivals() -> None:
    assert len(patterns.arrival_times(Steady(rps=0), 5.0, np.random.default_rng(0))) == 0
    assert math.isclose(patterns.expected_count(Steady(rps=3), 10.0, 2.0, 4.0), 6.0)


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_expected_counts_are_the_integral_of_the_rate(name: str) -> None:
    # An independent integral (adaptive quadrature, told where the curve jumps) of the rate curve.
    pattern = PATTERNS[name]
    breaks: list[float] = []
    if isinstance(pattern, Spike):
        breaks = [pattern.at_s, pattern.at_s + pattern.width_s]
    elif isinstance(pattern, Step):
        breaks = list(itertools.accumulate(s.duration_s for s in pattern.stages))
    elif isinstance(pattern, Chaos):
        breaks = list(patterns.chaos_segments(pattern, DURATION, 5).starts)

    def r(t: float) -> float:
        return float(patterns.rate(pattern, np.array([t]), DURATION, 5)[0])

    for a, b in [(0.0, DURATION), (3.0, 21.0), (20.5, 26.5), (41.0, 59.0)]:
        points = [a, *sorted(p for p in breaks if a < p < b), b]
        want = sum(integrate.quad(r, lo, hi, limit=200)[0] for lo, hi in itertools.pairwise(points))
        assert patterns.expected_count(pattern, DURATION, a, b, 5) == pytest.approx(want, rel=2e-3, abs=0.05)
