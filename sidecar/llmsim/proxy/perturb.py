"""Perturbation of real provider traffic as pure functions: what to do to one response, and when
each forwarded chunk is due.

In perturb mode the profile's `latency.ttftMs` is the delay *added* before the first byte, and
`latency.itlMs` the delay added to every chunk gap (use `{type: constant, value: 0}` to add none);
the `slow_stream` fault multiplies the upstream's own gaps by `faults.params.slowStreamFactor`.
Chunk deadlines are absolute (computed from the first chunk), so delays never accumulate error.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from llmsim.api.faults import FaultSpec, FaultType
from llmsim.api.profile import SimulationProfileSpec
from llmsim.simulation import sampling

STATUS_FAULTS = frozenset(
    {
        FaultType.RATE_LIMIT,
        FaultType.QUOTA,
        FaultType.OVERLOADED,
        FaultType.SERVER_ERROR,
        FaultType.CONTEXT_LENGTH,
    }
)
"""Faults that replace the response with the provider's error; nothing goes upstream."""
STREAM_FAULTS = frozenset({FaultType.DISCONNECT, FaultType.MALFORMED_CHUNK, FaultType.MIDSTREAM_ERROR})
"""Faults that strike after `afterTokens` forwarded chunks."""
_GAP_SAMPLES = 256


@dataclass(frozen=True)
class PerturbPlan:
    """What perturb mode does to one response."""

    added_ttft_s: float
    gaps_s: tuple[float, ...]
    """Delays added to chunk gaps, used cyclically (chunk k > 0 gets `gaps_s[(k - 1) % len]`)."""
    slow_factor: float = 1.0
    fault: FaultType | None = None
    after_chunks: int = 0
    timeout_s: float = 0.0
    retry_after_s: float = 1.0

    @property
    def replaces_response(self) -> bool:
        return self.fault in STATUS_FAULTS or self.fault is FaultType.TIMEOUT

    @property
    def is_noop(self) -> bool:
        """True when the response can be relayed byte for byte with no timing changes."""
        return (
            self.added_ttft_s == 0
            and not any(self.gaps_s)
            and self.slow_factor == 1.0
            and self.fault in (None, FaultType.NONE)
        )

    def cumulative_gap(self, k: int) -> float:
        """Sum of the added gaps of chunks 1..k."""
        if k <= 0 or not self.gaps_s:
            return 0.0
        n = len(self.gaps_s)
        full, rest = divmod(k, n)
        return full * sum(self.gaps_s) + sum(self.gaps_s[:rest])

    def deadline(self, k: int, arrival_s: float, first_arrival_s: float) -> float:
        """When chunk k (arrived at `arrival_s`; chunk 0 at `first_arrival_s`) is due to be forwarded.

        Times are on the same monotonic clock. Never earlier than the chunk's own arrival.
        """
        target = (
            first_arrival_s
            + self.added_ttft_s
            + self.slow_factor * (arrival_s - first_arrival_s)
            + self.cumulative_gap(k)
        )
        return max(target, arrival_s)


def choose_fault(
    faults: FaultSpec,
    rng: np.random.Generator,
    *,
    forced: FaultType | None,
    since_activation_s: float,
) -> FaultType | None:
    """The fault for one request: a forced one, an open window's, or one drawn from `rates`."""
    if forced is not None:
        return None if forced is FaultType.NONE else forced
    for window in faults.windows:
        t = since_activation_s - window.start_s
        if t < 0:
            continue
        if window.every_s is not None:
            t %= window.every_s
        if t < window.duration_s and rng.uniform() < window.probability:
            return window.fault
    u = rng.uniform()
    for fault, p in faults.rates.items():
        if u < p:
            return fault
        u -= p
    return None


def plan_perturbation(
    spec: SimulationProfileSpec,
    rng: np.random.Generator,
    *,
    forced: FaultType | None = None,
    activated_at: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> PerturbPlan:
    """Sample the added delays and the fault for one perturbed request."""
    since = (now - activated_at).total_seconds() if now is not None and activated_at is not None else 0.0
    fault = choose_fault(spec.faults, rng, forced=forced, since_activation_s=since)
    params = spec.faults.params
    ttft = sampling.sample_one(spec.latency.ttft_ms, rng) / 1000.0
    gaps = tuple(float(x) / 1000.0 for x in sampling.sample(spec.latency.itl_ms, rng, _GAP_SAMPLES))
    return PerturbPlan(
        added_ttft_s=ttft,
        gaps_s=gaps if any(gaps) else (),
        slow_factor=params.slow_stream_factor if fault is FaultType.SLOW_STREAM else 1.0,
        fault=fault,
        after_chunks=params.after_tokens,
        timeout_s=params.timeout_s,
        retry_after_s=params.retry_after_s,
    )


class FrameSplitter:
    """Splits a byte stream into whole SSE events (blank-line separated) or NDJSON lines.

    Perturbation delays and counts *events*, not TCP reads, so a chunk is never cut in half.
    """

    def __init__(self, ndjson: bool) -> None:
        self._sep = b"\n" if ndjson else b"\n\n"
        self._buf = b""

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data.replace(b"\r\n", b"\n") if b"\r" in data else data
        out: list[bytes] = []
        while True:
            i = self._buf.find(self._sep)
            if i < 0:
                return out
            end = i + len(self._sep)
            out.append(self._buf[:end])
            self._buf = self._buf[end:]

    def flush(self) -> bytes:
        rest, self._buf = self._buf, b""
        return rest


class EventCounter:
    """Counts events completed by each read without copying the stream (passthrough measurement):
    a C-level `bytes.count` per read, with the last byte carried over so a separator split across
    two reads is still seen. `\r\n\r\n`-separated SSE is counted by its `\n\r\n` tail."""

    def __init__(self, ndjson: bool) -> None:
        self._sep = b"\n" if ndjson else b"\n\n"
        self._crlf = b"\n\r\n"
        self._tail = b""

    def feed(self, data: bytes) -> int:
        if not data:
            return 0
        joined = self._tail + data
        if len(self._sep) == 1:
            count = data.count(self._sep)
        else:
            count = joined.count(self._sep) + joined.count(self._crlf)
            count -= self._tail.count(self._sep) + self._tail.count(self._crlf)
        self._tail = joined[-2:]
        return count
