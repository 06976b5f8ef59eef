"""What the pipeline reports about each finished request (for metrics, traces, sessions, events)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field


@dataclass
class RequestRecord:
    """One request as the simulator served it. Times are seconds since the request was admitted."""

    request_id: str
    provider: str
    operation: str
    path: str
    model: str = ""
    response_model: str = ""
    profile: str = ""
    mode: str = "simulate"
    stream: bool = False
    session_id: str | None = None
    status: int = 0
    outcome: str = "ok"
    """`ok`, `error` (an error answer), `fault` (an injected fault), `client_closed`, `internal_error`."""
    error_kind: str | None = None
    fault: str | None = None
    fault_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reasons: list[str] = field(default_factory=list)
    queue_s: float = 0.0
    planned_ttft_s: float | None = None
    ttft_s: float | None = None
    """Measured: when the first token-carrying frame was written."""
    token_times_s: list[float] = field(default_factory=list)
    """Measured write times of token-carrying frames (for ITL)."""
    e2e_s: float = 0.0
    started_at: float = 0.0
    """Unix time the request arrived."""
    headers: dict[str, str] = field(default_factory=dict)
    """Selected request headers (credentials never included), e.g. traceparent."""

    @property
    def itl_s(self) -> list[float]:
        t = self.token_times_s
        return [b - a for a, b in itertools.pairwise(t)]
