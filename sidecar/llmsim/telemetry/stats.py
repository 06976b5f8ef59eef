"""Small pure statistics helpers: a bounded sample reservoir and percentile summaries."""

from __future__ import annotations

import random
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

PERCENTILES = (50, 90, 95, 99)


@dataclass
class Reservoir:
    """Keeps every value up to `capacity`, then a uniform random sample of them (Vitter's algorithm R).

    Percentiles are exact until `capacity` values were added and unbiased estimates after
    (with 20 000 kept values the p99 estimate is within about ±0.15 percentile points).
    """

    capacity: int = 20_000
    seed: int = 0
    values: array[float] = field(default_factory=lambda: array("d"))
    """Kept values, 8 bytes each."""
    seen: int = 0
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.capacity < 1:
            raise ValueError(f"reservoir capacity must be >= 1, got {self.capacity}")
        self._rng = random.Random(self.seed)

    def add(self, value: float) -> None:
        self.seen += 1
        if len(self.values) < self.capacity:
            self.values.append(value)
            return
        slot = self._rng.randrange(self.seen)
        if slot < self.capacity:
            self.values[slot] = value

    def extend(self, values: Iterable[float]) -> None:
        for value in values:
            self.add(value)


@dataclass(frozen=True)
class Summary:
    """Count, mean and the standard percentiles of a sample (all zero when it is empty)."""

    count: int
    mean: float
    p50: float
    p90: float
    p95: float
    p99: float
    max: float


def summarize(values: Iterable[float], count: int | None = None) -> Summary:
    """Percentiles by linear interpolation (numpy's default); `count` overrides len(values)."""
    arr = np.fromiter(values, dtype=float)
    n = int(arr.size) if count is None else count
    if arr.size == 0:
        return Summary(n, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    p50, p90, p95, p99 = (float(x) for x in np.percentile(arr, PERCENTILES))
    return Summary(n, float(arr.mean()), p50, p90, p95, p99, float(arr.max()))
