"""Perturbation of real provider traffic as pure functions: what perturb mode adds to one response,
and when each forwarded event is due.

In perturb mode the profile's `latency.ttftMs` is the delay *added* before the first byte, and
`latency.itlMs` the delay added to every event gap (use `{type: constant, value: 0}` to add none);
the `slow_stream` fault multiplies the upstream's own gaps by its factor. The fault itself is the
core's decision (`simulation.faults`, asked through `runtime.fault_hooks`): this module only turns
it into timing. Event deadlines are absolute (computed from the first event), so delays never
accumulate error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llmsim.api.faults import FaultType
from llmsim.api.profile import SimulationProfileSpec
from llmsim.simulation import faults, sampling
from llmsim.simulation.plan import FaultDecision

_GAP_SAMPLES = 256


@dataclass(frozen=True)
class PerturbPlan:
    """What perturb mode does to one forwarded response."""

    added_ttft_s: float
    gaps_s: tuple[float, ...]
    """Delays added to event gaps, used cyclically (event k > 0 gets `gaps_s[(k - 1) % len]`)."""
    slow_factor: float = 1.0
    fault: FaultDecision | None = None
    """The fault that rides along with the forwarded answer (`slow_stream`, a stream fault)."""

    @property
    def strikes(self) -> bool:
        """A stream fault (`disconnect`, `malformed_chunk`, `midstream_error`) alters the body."""
        return self.fault is not None and self.fault.fault in faults.STREAM_FAULTS

    @property
    def after_events(self) -> int:
        """How many events are forwarded before a stream fault strikes."""
        return self.fault.after_tokens if self.fault is not None else 0

    @property
    def is_noop(self) -> bool:
        """True when the response can be relayed byte for byte with no timing changes."""
        return (
            self.added_ttft_s == 0 and not any(self.gaps_s) and self.slow_factor == 1.0 and not self.strikes
        )

    def cumulative_gap(self, k: int) -> float:
        """Sum of the added gaps of events 1..k."""
        if k <= 0 or not self.gaps_s:
            return 0.0
        n = len(self.gaps_s)
        full, rest = divmod(k, n)
        return full * sum(self.gaps_s) + sum(self.gaps_s[:rest])

    def deadline(self, k: int, arrival_s: float, first_arrival_s: float) -> float:
        """When event k (arrived at `arrival_s`; event 0 at `first_arrival_s`) is due to be forwarded.

        Times are on the same monotonic clock. Never earlier than the event's own arrival, and never
        earlier than the deadline of an event before it.
        """
        target = (
            first_arrival_s
            + self.added_ttft_s
            + self.slow_factor * (arrival_s - first_arrival_s)
            + self.cumulative_gap(k)
        )
        return max(target, arrival_s)


def plan_perturbation(
    spec: SimulationProfileSpec, rng: np.random.Generator, fault: FaultDecision | None = None
) -> PerturbPlan:
    """Sample the added delays for one perturbed request that meets `fault` (or none)."""
    ttft = sampling.sample_one(spec.latency.ttft_ms, rng) / 1000.0
    gaps = tuple(float(x) / 1000.0 for x in sampling.sample(spec.latency.itl_ms, rng, _GAP_SAMPLES))
    factor = 1.0
    if fault is not None and fault.fault is FaultType.SLOW_STREAM:
        factor = float(fault.detail.get("factor", spec.faults.params.slow_stream_factor))
    return PerturbPlan(added_ttft_s=ttft, gaps_s=gaps if any(gaps) else (), slow_factor=factor, fault=fault)
