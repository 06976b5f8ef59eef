"""Probability distributions used for latencies (milliseconds) and token counts.

The unit is implied by the field that holds the distribution (`ttft_ms`, `itl_ms`, `output_tokens`).
Every distribution may be clamped with `min`/`max`; samples are never negative.
"""

from __future__ import annotations

import itertools
import math
from typing import Annotated, Literal

from pydantic import Field, model_validator

from llmsim.api.base import StrictModel


class _Clamped(StrictModel):
    min: float | None = Field(default=None, ge=0)
    """Lower clamp applied to every sample (default: 0)."""
    max: float | None = Field(default=None, gt=0)
    """Upper clamp applied to every sample (default: none)."""

    @model_validator(mode="after")
    def _min_below_max(self) -> _Clamped:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) must not exceed max ({self.max})")
        return self


class Constant(_Clamped):
    """Always the same value."""

    type: Literal["constant"] = "constant"
    value: float = Field(ge=0)
    """The value every sample takes."""


class Uniform(_Clamped):
    """Uniform between `low` and `high`."""

    type: Literal["uniform"] = "uniform"
    low: float = Field(ge=0)
    """Smallest value."""
    high: float = Field(ge=0)
    """Largest value."""

    @model_validator(mode="after")
    def _ordered(self) -> Uniform:
        if self.high < self.low:
            raise ValueError(f"high ({self.high}) must be >= low ({self.low})")
        return self


class Normal(_Clamped):
    """Normal (Gaussian), truncated at `min` (default 0)."""

    type: Literal["normal"] = "normal"
    mean: float = Field(ge=0)
    """Mean."""
    stddev: float = Field(ge=0)
    """Standard deviation."""


class LogNormal(_Clamped):
    """Log-normal given by its median and the standard deviation `sigma` of log(x).

    The usual shape of LLM latencies: a floor, a body and a long right tail.
    """

    type: Literal["lognormal"] = "lognormal"
    median: float = Field(gt=0)
    """Median (the 50th percentile); exp(mu) of the underlying normal."""
    sigma: float = Field(ge=0, le=5)
    """Standard deviation of log(x); 0.2 is tight, 1.0 is very heavy-tailed."""


class Gamma(_Clamped):
    """Gamma with `shape` k and `scale` theta (mean = k * theta)."""

    type: Literal["gamma"] = "gamma"
    shape: float = Field(gt=0)
    """Shape parameter k."""
    scale: float = Field(gt=0)
    """Scale parameter theta, in the field's unit."""


class Exponential(_Clamped):
    """Exponential with the given mean."""

    type: Literal["exponential"] = "exponential"
    mean: float = Field(gt=0)
    """Mean (1 / rate)."""


class Empirical(_Clamped):
    """A distribution given by observed percentiles, e.g. `{p50: 300, p90: 520, p99: 1100}`.

    Sampling uses a quantile function through the given points (monotone, log-linear between
    them, log-normal tails fitted to the outermost pairs), so the configured percentiles are
    reproduced exactly in expectation.
    """

    type: Literal["empirical"] = "empirical"
    percentiles: dict[str, float] = Field(min_length=2)
    """Percentile name (`p50`, `p90`, `p99.9`, ...) to value; values must not decrease."""

    @model_validator(mode="after")
    def _monotone(self) -> Empirical:
        points = self.points()
        for (q1, v1), (q2, v2) in itertools.pairwise(points):
            if v2 < v1:
                raise ValueError(
                    f"percentile values must not decrease: p{_fmt(q2 * 100)}={v2} < p{_fmt(q1 * 100)}={v1}"
                )
        if points[0][1] <= 0:
            raise ValueError("percentile values must be > 0")
        return self

    def points(self) -> list[tuple[float, float]]:
        """The percentiles as sorted (quantile in (0,1), value) pairs."""
        out: list[tuple[float, float]] = []
        for key, value in self.percentiles.items():
            q = parse_percentile(key)
            out.append((q, float(value)))
        out.sort()
        for (q1, _), (q2, _) in itertools.pairwise(out):
            if q1 == q2:
                raise ValueError(f"percentile p{_fmt(q1 * 100)} is given twice")
        return out


def _fmt(x: float) -> str:
    return f"{x:g}"


def parse_percentile(key: str) -> float:
    """`"p99.9"` -> 0.999. Raises ValueError naming the key on anything else."""
    text = key.strip().lower()
    if not text.startswith("p"):
        raise ValueError(f"percentile key {key!r} must look like 'p50' or 'p99.9'")
    try:
        pct = float(text[1:])
    except ValueError:
        raise ValueError(f"percentile key {key!r} must look like 'p50' or 'p99.9'") from None
    if not (0 < pct < 100) or math.isnan(pct):
        raise ValueError(f"percentile key {key!r} must be strictly between p0 and p100")
    return pct / 100.0


Distribution = Annotated[
    Constant | Uniform | Normal | LogNormal | Gamma | Exponential | Empirical,
    Field(discriminator="type"),
]
"""Any of the supported distributions, chosen by `type`."""
