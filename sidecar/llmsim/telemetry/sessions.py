"""Sessions: named groups of requests (header `x-llmsim-session: ID`) with their own metrics.

A session is created with a profile (by name or inline) and labels; requests attributed to it
are aggregated into counts, RPS, TPS, error rates by type and TTFT/ITL/E2E percentiles.
The store is bounded: beyond `max_sessions` the oldest completed (else oldest) session is evicted.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import Field

from llmsim.api.base import StrictModel
from llmsim.api.profile import SimulationProfileSpec
from llmsim.telemetry import stats
from llmsim.telemetry.labels import CANCELLED, OK
from llmsim.telemetry.records import RequestRecord

SESSION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_SESSION_ID_RE = re.compile(SESSION_ID_PATTERN)
log = logging.getLogger("llmsim.sessions")

DEFAULT_MAX_SESSIONS = 200
DEFAULT_MAX_SAMPLES = 20_000


class LatencySummary(StrictModel):
    """Percentiles of one latency, in seconds."""

    count: int
    """Observations (for ITL: token gaps, not requests)."""
    mean: float
    p50: float
    p90: float
    p95: float
    p99: float
    max: float

    @classmethod
    def of(cls, summary: stats.Summary) -> LatencySummary:
        return cls(
            count=summary.count,
            mean=summary.mean,
            p50=summary.p50,
            p90=summary.p90,
            p95=summary.p95,
            p99=summary.p99,
            max=summary.max,
        )


class ErrorStat(StrictModel):
    """Requests that ended with one error type."""

    count: int
    rate: float
    """Share of the session's requests (0..1)."""


class SessionMetrics(StrictModel):
    """Metrics of one session, as measured on the serving side."""

    session_id: str
    profile: str | None
    """The profile name the session was created with (`inline` for an inline profile)."""
    labels: dict[str, str]
    state: str
    """`active` or `completed`."""
    created_at: float
    """Unix time the session was created."""
    duration_s: float
    """From the first request's admission to the last request's end (0 before two requests)."""
    requests: int
    """Finished requests."""
    active_requests: int
    """Requests started but not finished yet."""
    ok: int
    errors: int
    """Requests that ended with an error (cancelled ones are not errors)."""
    cancelled: int
    error_rate: float
    error_types: dict[str, ErrorStat]
    """Error outcome (error kind or injected fault type) -> count and rate."""
    faults_injected: dict[str, int]
    """Injected fault type -> count (also for stream faults that end with outcome `ok`)."""
    input_tokens: int
    output_tokens: int
    rps: float
    """Finished requests per second over `durationS`."""
    tps: float
    """Output tokens per second over `durationS`."""
    ttft_s: LatencySummary
    itl_s: LatencySummary
    e2e_s: LatencySummary = Field(alias="e2eS")


@dataclass
class SessionStats:
    """Aggregates of a session's requests (not thread-safe; the store locks)."""

    max_samples: int = DEFAULT_MAX_SAMPLES
    requests: int = 0
    active: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    input_tokens: int = 0
    output_tokens: int = 0
    first_start: float | None = None
    last_end: float | None = None
    ttft: stats.Reservoir = field(init=False)
    itl: stats.Reservoir = field(init=False)
    e2e: stats.Reservoir = field(init=False)

    def __post_init__(self) -> None:
        self.ttft = stats.Reservoir(self.max_samples, seed=1)
        self.itl = stats.Reservoir(self.max_samples, seed=2)
        self.e2e = stats.Reservoir(self.max_samples, seed=3)

    def record(self, rec: RequestRecord) -> None:
        self.requests += 1
        self.outcomes[rec.outcome] += 1
        if rec.fault:
            self.faults[rec.fault] += 1
        self.input_tokens += rec.input_tokens
        self.output_tokens += rec.output_tokens
        self.first_start = (
            rec.started_at if self.first_start is None else min(self.first_start, rec.started_at)
        )
        self.last_end = rec.ended_at if self.last_end is None else max(self.last_end, rec.ended_at)
        if rec.ttft_s is not None:
            self.ttft.add(rec.ttft_s)
        self.itl.extend(rec.itl_s)
        self.e2e.add(rec.e2e_s)

    @property
    def duration_s(self) -> float:
        if self.first_start is None or self.last_end is None:
            return 0.0
        return max(0.0, self.last_end - self.first_start)


@dataclass
class Session:
    id: str
    profile_name: str | None
    spec: SimulationProfileSpec | None
    """The session's profile (None: requests use whatever profile they select)."""
    labels: dict[str, str]
    created_at: float
    stats: SessionStats
    completed_at: float | None = None

    @property
    def state(self) -> str:
        return "active" if self.completed_at is None else "completed"

    def metrics(self) -> SessionMetrics:
        s = self.stats
        errors = {k: v for k, v in s.outcomes.items() if k not in (OK, CANCELLED)}
        n_errors = sum(errors.values())
        n = s.requests
        dur = s.duration_s
        return SessionMetrics(
            session_id=self.id,
            profile=self.profile_name,
            labels=dict(self.labels),
            state=self.state,
            created_at=self.created_at,
            duration_s=dur,
            requests=n,
            active_requests=s.active,
            ok=s.outcomes.get(OK, 0),
            errors=n_errors,
            cancelled=s.outcomes.get(CANCELLED, 0),
            error_rate=n_errors / n if n else 0.0,
            error_types={k: ErrorStat(count=v, rate=v / n) for k, v in sorted(errors.items())},
            faults_injected=dict(sorted(s.faults.items())),
            input_tokens=s.input_tokens,
            output_tokens=s.output_tokens,
            rps=n / dur if dur > 0 else 0.0,
            tps=s.output_tokens / dur if dur > 0 else 0.0,
            ttft_s=LatencySummary.of(stats.summarize(s.ttft.values, s.ttft.seen)),
            itl_s=LatencySummary.of(stats.summarize(s.itl.values, s.itl.seen)),
            e2e_s=LatencySummary.of(stats.summarize(s.e2e.values, s.e2e.seen)),
        )


class SessionError(ValueError):
    """A session could not be created (e.g. a bad or duplicate id)."""


class SessionStore:
    """Thread-safe, bounded map of session id -> Session."""

    def __init__(
        self,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        max_samples: int = DEFAULT_MAX_SAMPLES,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if max_sessions < 1:
            raise ValueError(f"max_sessions must be >= 1, got {max_sessions}")
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()
        self._max_sessions = max_sessions
        self._max_samples = max_samples
        self._wall = wall_clock
        self.evicted = 0

    def create(
        self,
        profile_name: str | None = None,
        spec: SimulationProfileSpec | None = None,
        labels: dict[str, str] | None = None,
        session_id: str | None = None,
    ) -> Session:
        sid = session_id or f"ses_{secrets.token_hex(8)}"
        if not _SESSION_ID_RE.match(sid):
            raise SessionError(f"id: {sid!r} must match {SESSION_ID_PATTERN}")
        session = Session(
            id=sid,
            profile_name=profile_name,
            spec=spec,
            labels=dict(labels or {}),
            created_at=self._wall(),
            stats=SessionStats(self._max_samples),
        )
        with self._lock:
            if sid in self._sessions:
                raise SessionError(f"id: a session named {sid!r} exists already")
            self._sessions[sid] = session
            self._evict()
        return session

    def _evict(self) -> None:
        while len(self._sessions) > self._max_sessions:
            victim = next((k for k, s in self._sessions.items() if s.completed_at is not None), None)
            if victim is None:
                victim = next(iter(self._sessions))
            del self._sessions[victim]
            self.evicted += 1

    def get(self, session_id: str) -> Session | None:
        with self._lock:
            return self._sessions.get(session_id)

    def ids(self) -> list[str]:
        with self._lock:
            return list(self._sessions)

    def started(self, session_id: str) -> bool:
        """Count a request as active in the session.

        An id nobody created yet starts a session implicitly (default profile, label
        `implicit=true`), so `x-llmsim-session: my-run` alone is enough to get
        `GET /v1/metrics/my-run`. False (and a warning) for ids that are not valid session ids.
        """
        with self._lock:
            session = self._sessions.get(session_id)
        if session is None:
            if not _SESSION_ID_RE.match(session_id):
                log.warning(
                    "ignoring x-llmsim-session %r: ids must match %s", session_id[:80], SESSION_ID_PATTERN
                )
                return False
            try:
                session = self.create(labels={"implicit": "true"}, session_id=session_id)
            except SessionError:  # created concurrently
                session = self.get(session_id)
                if session is None:
                    return False
        with self._lock:
            session.stats.active += 1
        return True

    def ended(self, session_id: str) -> None:
        """A request counted by `started` is over (its record may follow separately)."""
        with self._lock:
            session = self._sessions.get(session_id)
            if session is not None:
                session.stats.active = max(0, session.stats.active - 1)

    def record(self, session_id: str, rec: RequestRecord, was_started: bool = True) -> Session | None:
        """Add a finished request; returns the session (None for unknown ids)."""
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return None
            if was_started:
                session.stats.active = max(0, session.stats.active - 1)
            session.stats.record(rec)
            return session

    def metrics(self, session_id: str) -> SessionMetrics | None:
        with self._lock:
            session = self._sessions.get(session_id)
            return None if session is None else session.metrics()

    def complete(self, session_id: str) -> SessionMetrics | None:
        """Mark a session completed (idempotent); its metrics stay readable until evicted."""
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return None
            if session.completed_at is None:
                session.completed_at = self._wall()
            return session.metrics()

    def active_ids(self) -> list[str]:
        with self._lock:
            return [k for k, s in self._sessions.items() if s.completed_at is None]
