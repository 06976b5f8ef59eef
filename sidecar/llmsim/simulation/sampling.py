"""Sampling from the profile's distributions with an injected numpy Generator."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

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

_STD_NORMAL = NormalDist()


def _raw(dist: Distribution, rng: np.random.Generator, n: int) -> np.ndarray:
    """`n` unclamped draws (the generator is used exactly the same way for every `n`)."""
    match dist:
        case Constant():
            return np.full(n, dist.value, dtype=float)
        case Uniform():
            return rng.uniform(dist.low, dist.high, n)
        case Normal():
            return rng.normal(dist.mean, dist.stddev, n)
        case LogNormal():
            return dist.median * np.exp(dist.sigma * rng.standard_normal(n))
        case Gamma():
            return rng.gamma(dist.shape, dist.scale, n)
        case Exponential():
            return rng.exponential(dist.mean, n)
        case Empirical():
            return EmpiricalQuantiles.of(dist).quantile(rng.uniform(0.0, 1.0, n))
    raise TypeError(f"not a distribution: {dist!r}")  # pragma: no cover - the match is exhaustive


def sample(dist: Distribution, rng: np.random.Generator, size: int | None = None) -> np.ndarray:
    """Draw `size` samples (a 1-d float array; size None -> one element), clamped to [min, max]."""
    raw = _raw(dist, rng, 1 if size is None else size)
    lo = 0.0 if dist.min is None else dist.min
    hi = math.inf if dist.max is None else dist.max
    # np.clip's value semantics, without its Python-level dispatch (a few microseconds per call)
    clamped: np.ndarray = np.minimum(np.maximum(raw, lo), hi)
    return clamped


def sample_one(dist: Distribution, rng: np.random.Generator) -> float:
    """One sample as a float (the same draw `sample(dist, rng, 1)` makes)."""
    value = dist.value if isinstance(dist, Constant) else float(_raw(dist, rng, 1)[0])
    lo = 0.0 if dist.min is None else dist.min
    hi = math.inf if dist.max is None else dist.max
    value = value if value > lo else lo  # the comparisons np.clip makes
    return float(value if value < hi else hi)


def mean_of(dist: Distribution) -> float:
    """The (unclamped) mean, for documentation and sanity checks."""
    match dist:
        case Constant():
            return dist.value
        case Uniform():
            return (dist.low + dist.high) / 2
        case Normal():
            return dist.mean
        case LogNormal():
            return dist.median * math.exp(dist.sigma**2 / 2)
        case Gamma():
            return dist.shape * dist.scale
        case Exponential():
            return dist.mean
        case Empirical():
            grid = np.linspace(0.0005, 0.9995, 1000)
            return float(np.mean(EmpiricalQuantiles.of(dist).quantile(grid)))


def quantile_of(dist: Distribution, q: float) -> float:
    """The q-quantile (0<q<1) of the clamped distribution; used to state expectations."""
    match dist:
        case Constant():
            value = dist.value
        case Uniform():
            value = dist.low + q * (dist.high - dist.low)
        case Normal():
            value = dist.mean + dist.stddev * _STD_NORMAL.inv_cdf(q)
        case LogNormal():
            value = dist.median * math.exp(dist.sigma * _STD_NORMAL.inv_cdf(q))
        case Gamma():
            # No closed form without scipy; a large fixed-seed sample is accurate enough for docs.
            value = float(np.quantile(np.random.default_rng(0).gamma(dist.shape, dist.scale, 200_000), q))
        case Exponential():
            value = -dist.mean * math.log1p(-q)
        case Empirical():
            value = float(EmpiricalQuantiles.of(dist).quantile(np.array([q]))[0])
    lo = 0.0 if dist.min is None else dist.min
    hi = math.inf if dist.max is None else dist.max
    return min(max(value, lo), hi)


class EmpiricalQuantiles:
    """Quantile function through given (q, value) points.

    Between points: linear in (z = Phi^-1(q), log value), i.e. a piecewise log-normal, so each
    given percentile is reproduced exactly. Beyond the outermost points: the log-normal through
    the two outermost points on that side.
    """

    _cache: dict[tuple[tuple[float, float], ...], EmpiricalQuantiles] = {}

    def __init__(self, points: list[tuple[float, float]]) -> None:
        self.z = np.array([_STD_NORMAL.inv_cdf(q) for q, _ in points])
        self.logv = np.log(np.array([max(v, 1e-12) for _, v in points]))

    @classmethod
    def of(cls, dist: Empirical) -> EmpiricalQuantiles:
        key = tuple(dist.points())
        found = cls._cache.get(key)
        if found is None:
            found = cls._cache[key] = cls(list(key))
        return found

    def quantile(self, u: np.ndarray) -> np.ndarray:
        u = np.clip(u, 1e-12, 1 - 1e-12)
        z = _fast_inv_cdf(u)
        zs, lv = self.z, self.logv
        out = np.interp(z, zs, lv)
        lo_slope = _slope(zs[0], lv[0], zs[1], lv[1])
        hi_slope = _slope(zs[-2], lv[-2], zs[-1], lv[-1])
        below, above = z < zs[0], z > zs[-1]
        out[below] = lv[0] + lo_slope * (z[below] - zs[0])
        out[above] = lv[-1] + hi_slope * (z[above] - zs[-1])
        result: np.ndarray = np.exp(out)
        return result


def _slope(z1: float, v1: float, z2: float, v2: float) -> float:
    return 0.0 if z2 == z1 else (v2 - v1) / (z2 - z1)


def _fast_inv_cdf(u: np.ndarray) -> np.ndarray:
    """Vectorised inverse standard-normal CDF (Acklam's rational approximation, rel. err < 1.2e-9)."""
    a = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02,
         1.383577518672690e02, -3.066479806614716e01, 2.506628277459239e00)  # fmt: skip
    b = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02,
         6.680131188771972e01, -1.328068155288572e01)  # fmt: skip
    c = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00,
         -2.549732539343734e00, 4.374664141464968e00, 2.938163982698783e00)  # fmt: skip
    d = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00)
    p_low = 0.02425
    x = np.empty_like(u)
    lo = u < p_low
    hi = u > 1 - p_low
    mid = ~(lo | hi)
    q = np.sqrt(-2 * np.log(u[lo]))
    x[lo] = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / (
        (((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1
    )
    q = u[mid] - 0.5
    r = q * q
    x[mid] = (
        (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5])
        * q
        / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
    )
    q = np.sqrt(-2 * np.log1p(-u[hi]))
    x[hi] = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / (
        (((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1
    )
    return x
