"""What telemetry knows about one finished request (shared by metrics, traces, sessions, events)."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RequestRecord:
    """A finished request as measured on the serving side.

    Times: `started_at` is Unix time (seconds) of admission; the other times are seconds since
    admission, measured on a monotonic clock.
    """

    provider: str
    operation: str
    model: str
    mode: str
    outcome: str
    """`ok`, `cancelled`, `error`, an error kind or a fault type (see `labels.OUTCOMES`)."""
    started_at: float
    e2e_s: float
    ttft_s: float | None = None
    """Time to the first output token; None when no token was sent."""
    token_times_s: tuple[float, ...] = ()
    """When each token-carrying write happened (the first is the TTFT)."""
    input_tokens: int = 0
    output_tokens: int = 0
    fault: str | None = None
    """The injected fault type, if one was injected."""
    fault_reason: str | None = None
    """Why it was injected (`forced`, `window`, `rate`, `fail_first`, `capacity`, ...)."""
    error_message: str | None = None
    status: int | None = None
    """HTTP status sent to the client."""
    session_id: str | None = None
    profile: str | None = None
    response_model: str | None = None
    finish_reasons: tuple[str, ...] = ()
    request_id: str | None = None
    stream: bool = False
    carrier: Mapping[str, str] = field(default_factory=dict)
    """Incoming trace-context headers (`traceparent`, `tracestate`, `baggage`), lower-case keys."""

    @property
    def itl_s(self) -> tuple[float, ...]:
        t = self.token_times_s
        return tuple(b - a for a, b in itertools.pairwise(t))

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    @property
    def ended_at(self) -> float:
        return self.started_at + self.e2e_s
