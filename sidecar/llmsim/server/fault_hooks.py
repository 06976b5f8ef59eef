"""Where the pipeline asks for a fault decision and applies it.

`decide` runs before a capacity slot is taken: the pure fault engine
(`llmsim.simulation.faults.decide`: forced header, context overflow, windows, fail-first,
rates), then the stateful rate limiter (`server/ratelimit_store`). Its outcome either replaces
the response (an ApiError for status faults, a stall for `timeout`) or rides along with the plan
(`slow_stream`, stream faults) and is applied to the rendered answer by `finish`.

An injected status fault is answered without touching the rate-limit buckets (the request never
reached the "model"); `x-llmsim-fault: none` switches off injected faults but not rate limits.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from llmsim import headers
from llmsim.api.faults import FaultType
from llmsim.profiles import NamedProfile
from llmsim.providers import fault_render
from llmsim.providers.base import Answer, ApiError, BodyAnswer, ErrorKind, HttpRequestFacts
from llmsim.server.state import ServerState
from llmsim.simulation import faults, ratelimit
from llmsim.simulation.plan import FaultDecision
from llmsim.simulation.request import GenerationRequest


@dataclass(frozen=True)
class FaultOutcome:
    """What the fault engine and the rate limiter decided for one request."""

    fault: FaultDecision | None = None
    error: ApiError | None = None
    """Answer with this error instead (status faults, rate limited)."""
    stall: BodyAnswer | None = None
    """Answer with this stall instead (`timeout`)."""
    headers: dict[str, str] = field(default_factory=dict)
    """Rate-limit headers for the successful answer."""


def forced_fault(request_headers: Mapping[str, str]) -> FaultType | None:
    """The fault forced by `x-llmsim-fault`, or None; ApiError for unknown values."""
    try:
        return faults.parse_forced(request_headers.get(headers.FAULT))
    except ValueError as exc:
        raise ApiError(ErrorKind.INVALID_REQUEST, str(exc), param=headers.FAULT) from None


def _seed(state: ServerState, profile: NamedProfile, facts: HttpRequestFacts) -> int:
    try:
        return int(facts.headers[headers.SEED])
    except (KeyError, ValueError):  # absent (a malformed value was already rejected with a 400)
        return state.seed_for(profile.spec)


async def decide(
    state: ServerState, profile: NamedProfile, facts: HttpRequestFacts, gen: GenerationRequest, now: float
) -> FaultOutcome:
    """Decide this request's fault (`now`: loop time, for windows)."""
    spec = profile.spec
    key = faults.request_key(spec.faults, gen)
    decision = faults.decide(
        spec,
        gen,
        elapsed_s=state.elapsed_s(profile, now),
        attempt=state.attempts.next(f"{profile.name}|{key}"),
        forced=forced_fault(facts.headers),
        seed=_seed(state, profile, facts),
        key=key,
    )
    if decision is not None:
        error = fault_render.fault_error(decision, gen)
        stall = fault_render.stall_answer(decision)
        if error is not None or stall is not None:
            return FaultOutcome(decision, error=error, stall=stall)
    limits = spec.faults.rate_limits
    if limits is None:
        return FaultOutcome(decision)
    verdict = await state.rate_limiter.check(
        limits, ratelimit.bucket_key(limits, gen), ratelimit.request_cost(gen), namespace=profile.name
    )
    now_unix = time.time()
    if not verdict.allowed:
        limited = FaultDecision(FaultType.RATE_LIMIT, "rate_limit", retry_after_s=verdict.retry_after_s)
        error = fault_render.fault_error(limited, gen, verdict=verdict, now_unix=now_unix)
        return FaultOutcome(limited, error=error)
    return FaultOutcome(decision, headers=fault_render.ratelimit_headers(gen.provider, verdict, now_unix))


def finish(answer: Answer, outcome: FaultOutcome, gen: GenerationRequest) -> Answer:
    """Apply stream faults and rate-limit headers to the rendered answer."""
    return fault_render.with_headers(fault_render.apply(answer, outcome.fault, gen), outcome.headers)
