"""Mergeable log-bucket histograms (HDR-style) for latencies in milliseconds.

Bucket i holds values in (γ^(i-1), γ^i] with γ = (1 + a) / (1 - a) for relative accuracy a
(default 1 %): every quantile is reported within a relative error a of a true sample value.
Values at or below `MIN_VALUE` share bucket `ZERO_BUCKET`. Buckets are sparse integer counts,
so merging histograms (from several workers) is exact: counts add. Count, sum, min and max are
kept exactly alongside.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

DEFAULT_ACCURACY = 0.01
MIN_VALUE = 1e-3
"""Smallest distinguished value (1 µs when the unit is ms)."""
ZERO_BUCKET = -(1 << 20)


@dataclass
class LogHistogram:
    """A sparse log-bucket histogram."""

    accuracy: float = DEFAULT_ACCURACY
    counts: dict[int, int] = field(default_factory=dict)
    count: int = 0
    total: float = 0.0
    min: float = math.inf
    max: float = -math.inf

    def __post_init__(self) -> None:
        if not 0 < self.accuracy < 1:
            raise ValueError(f"accuracy must be in (0, 1), got {self.accuracy}")
        self._gamma = (1 + self.accuracy) / (1 - self.accuracy)
        self._log_gamma = math.log(self._gamma)

    @property
    def gamma(self) -> float:
        return self._gamma

    def bucket(self, value: float) -> int:
        """Index of the bucket holding `value`."""
        if value <= MIN_VALUE:
            return ZERO_BUCKET
        return math.ceil(math.log(value) / self._log_gamma)

    def representative(self, index: int) -> float:
        """The value reported for bucket `index` (relative error at most `accuracy` inside it)."""
        if index == ZERO_BUCKET:
            return 0.0
        return 2 * self._gamma**index / (self._gamma + 1)

    def record(self, value: float, n: int = 1) -> None:
        """Add `n` observations of `value` (negative values are clamped to 0)."""
        value = max(0.0, float(value))
        idx = self.bucket(value)
        self.counts[idx] = self.counts.get(idx, 0) + n
        self.count += n
        self.total += value * n
        self.min = min(self.min, value)
        self.max = max(self.max, value)

    def record_many(self, values: Iterable[float]) -> None:
        for value in values:
            self.record(value)

    def merge(self, other: LogHistogram) -> None:
        """Add `other`'s observations (exact)."""
        if other.accuracy != self.accuracy:
            raise ValueError(f"cannot merge histograms of accuracy {self.accuracy} and {other.accuracy}")
        for idx, n in other.counts.items():
            self.counts[idx] = self.counts.get(idx, 0) + n
        self.count += other.count
        self.total += other.total
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    def quantile(self, q: float) -> float | None:
        """The q-quantile (0 <= q <= 1), clamped to [min, max]; None when empty.

        Uses the nearest-rank definition: the smallest value with at least ceil(q * count)
        observations at or below it.
        """
        if self.count == 0:
            return None
        if q <= 0:
            return self.min
        if q >= 1:
            return self.max
        return self.value_at_rank(max(1, math.ceil(q * self.count)))

    def value_at_rank(self, rank: int) -> float:
        """The `rank`-th smallest observation (1-based, clamped to 1..count) at bucket resolution."""
        if self.count == 0:
            raise ValueError("an empty histogram has no ranks")
        rank = min(max(1, rank), self.count)
        seen = 0
        for idx in sorted(self.counts):
            seen += self.counts[idx]
            if seen >= rank:
                return min(self.max, max(self.min, self.representative(idx)))
        return self.max  # pragma: no cover - counts always sum to count

    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    def cdf_points(self) -> tuple[list[float], list[float]]:
        """(values, cumulative fractions) at each bucket, for plotting a CDF."""
        xs: list[float] = []
        ys: list[float] = []
        seen = 0
        for idx in sorted(self.counts):
            seen += self.counts[idx]
            xs.append(min(self.max, max(self.min, self.representative(idx))))
            ys.append(seen / self.count)
        return xs, ys

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly form (bucket indices as string keys)."""
        return {
            "accuracy": self.accuracy,
            "count": self.count,
            "sum": self.total,
            "min": self.min if self.count else None,
            "max": self.max if self.count else None,
            "buckets": {str(k): v for k, v in sorted(self.counts.items())},
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> LogHistogram:
        """Inverse of `to_dict`; raises ValueError on malformed input."""
        try:
            hist = cls(accuracy=float(doc["accuracy"]))
            hist.counts = {int(k): int(v) for k, v in dict(doc["buckets"]).items()}
            hist.count = int(doc["count"])
            hist.total = float(doc["sum"])
            hist.min = math.inf if doc["min"] is None else float(doc["min"])
            hist.max = -math.inf if doc["max"] is None else float(doc["max"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed histogram: {exc}") from None
        if sum(hist.counts.values()) != hist.count:
            raise ValueError("malformed histogram: bucket counts do not add up to count")
        return hist

    def summary(self, quantiles: Iterable[float] = (0.5, 0.9, 0.95, 0.99)) -> dict[str, float | None]:
        """`{"p50": .., "p90": .., "p95": .., "p99": .., "max": .., "mean": .., "count": n}`."""
        out: dict[str, float | None] = {f"p{q * 100:g}": _round(self.quantile(q)) for q in quantiles}
        out["max"] = _round(self.max) if self.count else None
        out["mean"] = _round(self.mean())
        out["count"] = self.count
        return out


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
