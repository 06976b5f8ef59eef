"""Where the pipeline asks for a fault decision and applies it.

This default only honours the `x-llmsim-fault` header and the natural faults (context length,
capacity queue full); the fault engine (`llmsim.simulation.faults`) plugs in here.
"""

from __future__ import annotations

from llmsim.api.faults import FaultType
from llmsim.providers.base import ApiError, ErrorKind
from llmsim.simulation.plan import FaultDecision

FAULT_HEADER = "x-llmsim-fault"

STATUS_FAULTS: dict[FaultType, ErrorKind] = {
    FaultType.RATE_LIMIT: ErrorKind.RATE_LIMIT,
    FaultType.QUOTA: ErrorKind.QUOTA,
    FaultType.OVERLOADED: ErrorKind.OVERLOADED,
    FaultType.SERVER_ERROR: ErrorKind.SERVER_ERROR,
    FaultType.CONTEXT_LENGTH: ErrorKind.CONTEXT_LENGTH,
}
"""Faults that replace the whole response with an error status."""


def forced_fault(headers: dict[str, str]) -> FaultType | None:
    """The fault forced by `x-llmsim-fault`, or None; ApiError for unknown values."""
    raw = headers.get(FAULT_HEADER)
    if raw is None:
        return None
    try:
        return FaultType(raw.strip().lower())
    except ValueError:
        known = ", ".join(f.value for f in FaultType)
        raise ApiError(ErrorKind.INVALID_REQUEST, f"Invalid value for header '{FAULT_HEADER}': {raw!r}. Known faults: {known}.", param=FAULT_HEADER) from None


def decision_for(fault: FaultType, reason: str, after_tokens: int = 5, retry_after_s: float = 1.0) -> FaultDecision | None:
    if fault is FaultType.NONE:
        return None
    return FaultDecision(fault=fault, reason=reason, after_tokens=after_tokens, retry_after_s=retry_after_s)
