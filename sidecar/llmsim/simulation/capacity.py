"""The load model: how latency grows as concurrent streams approach capacity."""

from __future__ import annotations

from dataclasses import dataclass

from llmsim.api.profile import Capacity


@dataclass(frozen=True)
class Slowdown:
    ttft: float = 1.0
    itl: float = 1.0


def slowdown(capacity: Capacity | None, active: int) -> Slowdown:
    """Multipliers for a request admitted while `active` streams (itself included) run."""
    if capacity is None or active <= 1:
        return Slowdown()
    utilisation = min(1.0, active / capacity.max_concurrency)
    shape = utilisation**capacity.exponent
    return Slowdown(
        ttft=1.0 + (capacity.ttft_slowdown - 1.0) * shape,
        itl=1.0 + (capacity.itl_slowdown - 1.0) * shape,
    )
