"""Per-request records and the mergeable partial result a worker writes (pure)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from llmsim.loadgen.histogram import LogHistogram
from llmsim.loadgen.wire import ErrorType
from llmsim.loadgen.workflow_stats import WorkflowStats

PARTIAL_KIND = "llmsim.partial"
PARTIAL_VERSION = 2
READABLE_PARTIAL_VERSIONS = (1, 2)
"""Version 1 partials lack concurrency, per-model and workflow data; they read as empty."""
LATENCY_METRICS = ("ttft_ms", "itl_ms", "e2e_ms", "tpot_ms")
MAX_SAMPLES = 2000
"""(prompt tokens, TTFT) points kept per worker for the scatter plot."""
MAX_EXAMPLES = 3
"""Distinct error messages kept per error type."""


@dataclass
class RequestRecord:
    """What one request measured. Times are seconds since the run's start on the loop clock."""

    index: int
    intended_s: float
    sent_s: float
    stream: bool
    prompt_tokens: int
    output_tokens: int = 0
    ttft_s: float | None = None
    """From the actual send time to the first output token (streams only)."""
    itl_s: list[float] = field(default_factory=list)
    """Gap before each content event after the first (one event per token with every provider)."""
    end_s: float | None = None
    """When the response finished (or failed)."""
    status: int | None = None
    error: ErrorType | None = None
    message: str = ""
    model: str = ""
    """The model of a `requests.models` mix ("" for the target's one model)."""

    @property
    def lag_s(self) -> float:
        return self.sent_s - self.intended_s

    @property
    def ok(self) -> bool:
        return self.error is None


def _hists() -> dict[str, LogHistogram]:
    return {name: LogHistogram() for name in LATENCY_METRICS}


@dataclass
class Stats:
    """Counts and histograms of a set of requests (the whole run or one window)."""

    requests: int = 0
    succeeded: int = 0
    failed: int = 0
    output_tokens: int = 0
    prompt_tokens: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    latency: dict[str, LogHistogram] = field(default_factory=_hists)
    """Measured from the actual send time."""
    intended: dict[str, LogHistogram] = field(default_factory=_hists)
    """Measured from the intended send time (TTFT and E2E include the schedule lag)."""

    def add(self, rec: RequestRecord) -> None:
        self.requests += 1
        self.prompt_tokens += rec.prompt_tokens
        self.output_tokens += rec.output_tokens
        if not rec.ok:
            self.failed += 1
            assert rec.error is not None
            self.errors[rec.error.value] = self.errors.get(rec.error.value, 0) + 1
            return
        self.succeeded += 1
        lag_ms = max(0.0, rec.lag_s) * 1000
        if rec.ttft_s is not None:
            self.latency["ttft_ms"].record(rec.ttft_s * 1000)
            self.intended["ttft_ms"].record(rec.ttft_s * 1000 + lag_ms)
        for gap in rec.itl_s:
            self.latency["itl_ms"].record(gap * 1000)
            self.intended["itl_ms"].record(gap * 1000)
        if rec.end_s is not None:
            e2e_ms = (rec.end_s - rec.sent_s) * 1000
            self.latency["e2e_ms"].record(e2e_ms)
            self.intended["e2e_ms"].record(e2e_ms + lag_ms)
            if rec.ttft_s is not None and rec.output_tokens > 1:
                tpot = (e2e_ms - rec.ttft_s * 1000) / (rec.output_tokens - 1)
                self.latency["tpot_ms"].record(tpot)
                self.intended["tpot_ms"].record(tpot)

    def merge(self, other: Stats) -> None:
        self.requests += other.requests
        self.succeeded += other.succeeded
        self.failed += other.failed
        self.output_tokens += other.output_tokens
        self.prompt_tokens += other.prompt_tokens
        for key, n in other.errors.items():
            self.errors[key] = self.errors.get(key, 0) + n
        for name in LATENCY_METRICS:
            self.latency[name].merge(other.latency[name])
            self.intended[name].merge(other.intended[name])

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "output_tokens": self.output_tokens,
            "prompt_tokens": self.prompt_tokens,
            "errors": dict(sorted(self.errors.items())),
            "latency": {k: h.to_dict() for k, h in self.latency.items()},
            "intended": {k: h.to_dict() for k, h in self.intended.items()},
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Stats:
        return cls(
            requests=int(doc["requests"]),
            succeeded=int(doc["succeeded"]),
            failed=int(doc["failed"]),
            output_tokens=int(doc["output_tokens"]),
            prompt_tokens=int(doc["prompt_tokens"]),
            errors={str(k): int(v) for k, v in dict(doc["errors"]).items()},
            latency={k: LogHistogram.from_dict(doc["latency"][k]) for k in LATENCY_METRICS},
            intended={k: LogHistogram.from_dict(doc["intended"][k]) for k in LATENCY_METRICS},
        )


@dataclass
class WindowStats:
    """One time window: requests by intended send time, plus sends by actual send time."""

    stats: Stats = field(default_factory=Stats)
    sent: int = 0
    """Requests actually sent during the window (achieved rate)."""
    busy_s: float = 0.0
    """Request-seconds in flight during the window (busy_s / window length = mean concurrency)."""

    def to_dict(self) -> dict[str, Any]:
        return {"sent": self.sent, "busy_s": self.busy_s, **self.stats.to_dict()}

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> WindowStats:
        return cls(stats=Stats.from_dict(doc), sent=int(doc["sent"]), busy_s=float(doc.get("busy_s", 0.0)))


@dataclass
class Partial:
    """Everything a worker measured; partials of several workers merge exactly."""

    window_s: float
    n_windows: int
    workers: list[int] = field(default_factory=list)
    parallelism: int = 1
    total: Stats = field(default_factory=Stats)
    lag_ms: LogHistogram = field(default_factory=LogHistogram)
    windows: list[WindowStats] = field(default_factory=list)
    samples: list[tuple[int, float]] = field(default_factory=list)
    """(prompt tokens, TTFT ms) of a sample of successful streamed requests."""
    examples: dict[str, list[str]] = field(default_factory=dict)
    """A few distinct messages per error type."""
    elapsed_s: float = 0.0
    """From the run start to the last completion."""
    scheduled: int = 0
    """Requests this worker's share of the schedule held (sent or not)."""
    notes: list[str] = field(default_factory=list)
    """Why the run is incomplete, and other remarks for the reader."""
    started_at: str = ""
    busy_s: float = 0.0
    """Request-seconds in flight over the whole run (mean concurrency = busy_s / elapsed_s)."""
    by_model: dict[str, Stats] = field(default_factory=dict)
    """Per model of a `requests.models` mix."""
    workflows: dict[str, WorkflowStats] = field(default_factory=dict)
    """Per workflow id, for workflow patterns."""
    _seen: int = 0

    def __post_init__(self) -> None:
        if not self.windows:
            self.windows = [WindowStats() for _ in range(self.n_windows)]

    def window_of(self, t_s: float) -> int:
        return min(self.n_windows - 1, max(0, math.floor(t_s / self.window_s)))

    def add(self, rec: RequestRecord, rng: np.random.Generator) -> None:
        self.total.add(rec)
        self.lag_ms.record(max(0.0, rec.lag_s) * 1000)
        self.windows[self.window_of(rec.intended_s)].stats.add(rec)
        self.windows[self.window_of(rec.sent_s)].sent += 1
        if rec.model:
            self.by_model.setdefault(rec.model, Stats()).add(rec)
        if rec.end_s is not None:
            self.elapsed_s = max(self.elapsed_s, rec.end_s)
            self._add_busy(rec.sent_s, rec.end_s)
        if rec.error is not None:
            seen = self.examples.setdefault(rec.error.value, [])
            if len(seen) < MAX_EXAMPLES and rec.message not in seen:
                seen.append(rec.message)
        elif rec.ttft_s is not None:
            self._seen += 1
            point = (rec.prompt_tokens, round(rec.ttft_s * 1000, 3))
            if len(self.samples) < MAX_SAMPLES:
                self.samples.append(point)
            else:
                j = int(rng.integers(0, self._seen))
                if j < MAX_SAMPLES:
                    self.samples[j] = point

    def _add_busy(self, start: float, end: float) -> None:
        """Time in flight, per window (time after the last window is left out: the drain)."""
        self.busy_s += max(0.0, end - start)
        first, last = self.window_of(start), self.window_of(end)
        for i in range(first, last + 1):
            lo = max(start, i * self.window_s)
            hi = min(end, (i + 1) * self.window_s)
            self.windows[i].busy_s += max(0.0, hi - lo)

    def workflow(self, workflow_id: str, turns: int) -> WorkflowStats:
        return self.workflows.setdefault(workflow_id, WorkflowStats.empty(turns))

    def merge(self, other: Partial) -> None:
        if (other.window_s, other.n_windows) != (self.window_s, self.n_windows):
            raise ValueError("partials have different time windows (were they run from the same scenario?)")
        overlap = set(self.workers) & set(other.workers)
        if overlap:
            raise ValueError(f"worker {sorted(overlap)[0]} appears in more than one partial")
        self.workers = sorted(self.workers + other.workers)
        self.total.merge(other.total)
        self.lag_ms.merge(other.lag_ms)
        for mine, theirs in zip(self.windows, other.windows, strict=True):
            mine.stats.merge(theirs.stats)
            mine.sent += theirs.sent
            mine.busy_s += theirs.busy_s
        self.busy_s += other.busy_s
        for model, stats in other.by_model.items():
            self.by_model.setdefault(model, Stats()).merge(stats)
        for wid, wf in other.workflows.items():
            if wid in self.workflows:
                self.workflows[wid].merge(wf)
            else:
                self.workflows[wid] = WorkflowStats.from_dict(wf.to_dict())
        self.samples = (self.samples + other.samples)[: MAX_SAMPLES * 4]
        for key, msgs in other.examples.items():
            seen = self.examples.setdefault(key, [])
            for msg in msgs:
                if len(seen) < MAX_EXAMPLES and msg not in seen:
                    seen.append(msg)
        self.elapsed_s = max(self.elapsed_s, other.elapsed_s)
        self.scheduled += other.scheduled
        self.notes += [n for n in other.notes if n not in self.notes]
        self.started_at = min(filter(None, [self.started_at, other.started_at]), default="")

    def to_dict(self) -> dict[str, Any]:
        return {
            "window_s": self.window_s,
            "n_windows": self.n_windows,
            "workers": self.workers,
            "parallelism": self.parallelism,
            "total": self.total.to_dict(),
            "lag_ms": self.lag_ms.to_dict(),
            "windows": [w.to_dict() for w in self.windows],
            "samples": [list(p) for p in self.samples],
            "examples": self.examples,
            "elapsed_s": self.elapsed_s,
            "scheduled": self.scheduled,
            "notes": self.notes,
            "started_at": self.started_at,
            "busy_s": self.busy_s,
            "by_model": {k: v.to_dict() for k, v in sorted(self.by_model.items())},
            "workflows": {k: v.to_dict() for k, v in sorted(self.workflows.items())},
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Partial:
        out = cls(
            window_s=float(doc["window_s"]),
            n_windows=int(doc["n_windows"]),
            workers=[int(w) for w in doc["workers"]],
            parallelism=int(doc["parallelism"]),
            total=Stats.from_dict(doc["total"]),
            lag_ms=LogHistogram.from_dict(doc["lag_ms"]),
            windows=[WindowStats.from_dict(w) for w in doc["windows"]],
            samples=[(int(p[0]), float(p[1])) for p in doc["samples"]],
            examples={str(k): [str(m) for m in v] for k, v in dict(doc["examples"]).items()},
            elapsed_s=float(doc["elapsed_s"]),
            scheduled=int(doc["scheduled"]),
            notes=[str(n) for n in doc["notes"]],
            started_at=str(doc.get("started_at", "")),
            busy_s=float(doc.get("busy_s", 0.0)),
            by_model={str(k): Stats.from_dict(v) for k, v in dict(doc.get("by_model", {})).items()},
            workflows={str(k): WorkflowStats.from_dict(v) for k, v in dict(doc.get("workflows", {})).items()},
        )
        if len(out.windows) != out.n_windows:
            raise ValueError("window count does not match n_windows")
        return out


def window_length(duration_s: float, window_s: float | None) -> tuple[float, int]:
    """(window length, number of windows) covering the run: about 30 windows of at least 1 s."""
    length = window_s if window_s is not None else max(1.0, duration_s / 30)
    return length, max(1, math.ceil(duration_s / length - 1e-9))
