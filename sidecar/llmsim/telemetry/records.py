"""The one record of a finished request, and the builder that fills it while the request is served.

The simulator's pipeline and the proxy's data path each fill a `RecordBuilder` as they answer (ids,
model, fault, tokens as they are written, status, outcome) and hand `build()` to the runtime's
observers; telemetry (metrics, traces, sessions, anomalies, events) reads only `RequestRecord`.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field

from llmsim.api.faults import FaultType
from llmsim.simulation import faults
from llmsim.telemetry import labels


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
    """`ok`, `cancelled`, `internal_error`, an error kind, or the fault that broke an otherwise
    successful answer (see `labels.OUTCOMES`)."""
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
    """The message of the error the client got, if it got one."""
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


BREAKING_FAULTS = frozenset({*faults.STREAM_FAULTS, FaultType.TIMEOUT})
"""Faults that break an answer that had started as a success (its outcome is the fault's name)."""
_BREAKING = frozenset(f.value for f in BREAKING_FAULTS)


class RecordBuilder:
    """A request's record while it is served; `build()` returns the RequestRecord.

    Starts as a success; `fail`, `cancel` and `internal_error` say otherwise. `token(at_s)` is
    called with the time (seconds since admission) of every token-carrying write.
    """

    __slots__ = (
        "_error",
        "_message",
        "carrier",
        "e2e_s",
        "fault",
        "fault_reason",
        "finish_reasons",
        "input_tokens",
        "mode",
        "model",
        "operation",
        "output_tokens",
        "profile",
        "provider",
        "request_id",
        "response_model",
        "session_id",
        "started_at",
        "status",
        "stream",
        "token_times_s",
    )

    def __init__(
        self, request_id: str, provider: str, operation: str, *, started_at: float, mode: str = "simulate"
    ) -> None:
        self.request_id = request_id
        self.provider = provider
        self.operation = operation
        self.mode = mode
        self.started_at = started_at
        self.model = ""
        self.response_model = ""
        self.profile = ""
        self.stream = False
        self.session_id: str | None = None
        self.status = 0
        self.fault: str | None = None
        self.fault_reason: str | None = None
        self.input_tokens = 0
        self.output_tokens = 0
        self.finish_reasons: list[str] = []
        self.token_times_s: list[float] = []
        self.e2e_s = 0.0
        self.carrier: dict[str, str] = {}
        self._error: str | None = None
        self._message: str | None = None

    def token(self, at_s: float) -> None:
        self.token_times_s.append(at_s)

    def fail(self, kind: str | None, message: str | None = None) -> None:
        """The client got an error answer of this kind (an `ErrorKind` value)."""
        self._error = kind or self.fault or labels.ERROR
        self._message = message

    def cancel(self) -> None:
        """The client went away before the answer was complete."""
        self._error = labels.CANCELLED

    def internal_error(self, message: str) -> None:
        """llmsim failed to process the request (and answered with a provider-shaped 500)."""
        self._error = labels.INTERNAL_ERROR
        self._message = message

    @property
    def outcome(self) -> str:
        if self._error is not None:
            return self._error
        return self.fault if self.fault in _BREAKING and self.fault is not None else labels.OK

    def build(self) -> RequestRecord:
        outcome = self.outcome
        ok = outcome == labels.OK
        output = self.output_tokens if ok else min(self.output_tokens, len(self.token_times_s))
        # RequestRecord(**fields) without the frozen dataclass's per-field object.__setattr__ (a
        # plain dataclass: no __post_init__, no defaults computed at init; a test pins the equality)
        record = object.__new__(RequestRecord)
        record.__dict__.update(
            provider=self.provider,
            operation=self.operation,
            model=self.model,
            mode=self.mode,
            outcome=outcome,
            started_at=self.started_at,
            e2e_s=self.e2e_s,
            ttft_s=self.token_times_s[0] if self.token_times_s else None,
            token_times_s=tuple(self.token_times_s),
            input_tokens=self.input_tokens,
            output_tokens=output,
            fault=self.fault,
            fault_reason=self.fault_reason,
            error_message=self._message,
            status=self.status or None,
            session_id=self.session_id,
            profile=self.profile or None,
            response_model=self.response_model or None,
            finish_reasons=tuple(self.finish_reasons) if ok else (),
            request_id=self.request_id,
            stream=self.stream,
            carrier=dict(self.carrier),
        )
        return record
