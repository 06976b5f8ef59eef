"""Anomaly detection: latency or error rate outside what the profile leads one to expect. Pure.

Expectations come from the profile:
* latency (simulate mode only; in perturb/passthrough the latency is the upstream's): a request's
  TTFT "exceeds" when it is above the profile's 99th-percentile TTFT (`ttftMs` quantile, times the
  capacity model's full-load slowdown, plus the prefill cost of its input tokens) times `slack`.
  One request in a hundred exceeds by design; an anomaly is when more than `latency_share` of the
  last `window` requests do.
* error rate: the share of errors among the last `window` requests, not counting deliberate
  faults (forced by header, fault windows, fail-first, which come in bursts on purpose), above
  the sum of the profile's fault `rates` by more than `z` binomial standard deviations plus
  `error_margin`.

A detector reports an anomaly once when it starts and again only after the condition has cleared.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from llmsim.api.profile import SimulationProfileSpec
from llmsim.simulation import sampling
from llmsim.telemetry.records import RequestRecord

DELIBERATE_REASONS = frozenset({"forced", "window", "fail_first"})
"""Fault reasons that are bursts on purpose and do not count against the expected error rate."""
NOT_ERRORS = frozenset({"ok", "cancelled"})


@dataclass(frozen=True)
class Expectations:
    """What a profile leads one to expect of its requests."""

    ttft_p99_s: float | None
    """99th percentile of TTFT before prefill cost (None: no latency expectation)."""
    prefill_s_per_token: float
    error_rate: float
    """Expected share of error answers from random fault injection."""

    @classmethod
    def of(cls, spec: SimulationProfileSpec) -> Expectations:
        lat = spec.latency
        p99 = sampling.quantile_of(lat.ttft_ms, 0.99) / 1000.0
        if lat.capacity is not None:
            p99 *= lat.capacity.ttft_slowdown
        return cls(
            ttft_p99_s=p99,
            prefill_s_per_token=lat.ttft_per_input_token_ms / 1000.0,
            error_rate=min(1.0, sum(spec.faults.rates.values())),
        )


@dataclass(frozen=True)
class Anomaly:
    """One detected anomaly (the payload of an `anomaly.detected` event)."""

    kind: str
    """`latency` or `error_rate`."""
    observed: float
    """Observed share of slow requests (latency) or of errors (error_rate), over `window` requests."""
    expected: float
    """The share one would expect from the profile."""
    threshold: float
    """The share above which the detector fires."""
    window: int
    detail: dict[str, float] = field(default_factory=dict)


@dataclass
class AnomalyDetector:
    expectations: Expectations
    window: int = 50
    min_requests: int = 20
    slack: float = 1.5
    latency_share: float = 0.1
    z: float = 4.0
    error_margin: float = 0.02
    _slow: deque[bool] = field(init=False)
    _errors: deque[bool] = field(init=False)
    _firing: set[str] = field(init=False, default_factory=set)
    _slow_count: int = field(init=False, default=0)
    _error_count: int = field(init=False, default=0)
    """How many True entries `_slow` and `_errors` hold (kept as they change: no sum per request)."""

    def __post_init__(self) -> None:
        if self.min_requests > self.window or self.window < 1:
            raise ValueError(f"need 1 <= min_requests ({self.min_requests}) <= window ({self.window})")
        self._slow = deque(maxlen=self.window)
        self._errors = deque(maxlen=self.window)

    def error_threshold(self, n: int) -> float:
        p = self.expectations.error_rate
        return p + self.z * math.sqrt(max(p * (1 - p), 1e-12) / n) + self.error_margin

    def observe(self, rec: RequestRecord) -> list[Anomaly]:
        """Add a finished request; return the anomalies that start with it."""
        found: list[Anomaly] = []
        exp = self.expectations
        if rec.mode == "simulate" and exp.ttft_p99_s is not None and rec.ttft_s is not None:
            limit = (exp.ttft_p99_s + exp.prefill_s_per_token * rec.input_tokens) * self.slack
            self._slow_count += _push(self._slow, rec.ttft_s > limit)
            n = len(self._slow)
            share = self._slow_count / n
            hit = n >= self.min_requests and share > self.latency_share
            if self._edge("latency", hit):
                found.append(Anomaly("latency", share, 0.01, self.latency_share, n, {"ttftLimitS": limit}))
        if rec.outcome != "cancelled" and rec.fault_reason not in DELIBERATE_REASONS:
            self._error_count += _push(self._errors, rec.outcome not in NOT_ERRORS)
            n = len(self._errors)
            share = self._error_count / n
            threshold = self.error_threshold(n)
            hit = n >= self.min_requests and share > threshold
            if self._edge("error_rate", hit):
                found.append(Anomaly("error_rate", share, exp.error_rate, threshold, n))
        return found

    def _edge(self, kind: str, hit: bool) -> bool:
        if hit and kind not in self._firing:
            self._firing.add(kind)
            return True
        if not hit:
            self._firing.discard(kind)
        return False


def _push(window: deque[bool], value: bool) -> int:
    """Append to a bounded window; the change in its count of True entries."""
    dropped = len(window) == window.maxlen and window[0]
    window.append(value)
    return int(value) - int(dropped)
