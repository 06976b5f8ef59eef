"""Where a request asks for its fault decision and has it applied.

`decide` runs before a capacity slot is taken, for the simulator's pipeline and for the proxy's
perturb mode alike: the pure fault engine (`simulation.faults.decide`: forced header, context
overflow, windows, fail-first, rates), then the stateful rate limiter (`runtime/ratelimit_store`).
Its outcome either replaces the response (an ApiError for status faults, a stall for `timeout`)
or rides along with the answer (`slow_stream`, stream faults), where `finish` applies it to a
rendered answer and the proxy's relay to a forwarded one (both through `providers.fault_render`).

An injected status fault is answered without touching the rate-limit buckets (the request never
reached the "model"); `x-llmsim-fault: none` switches off injected faults but not rate limits.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from llmsim.api.faults import FaultType
from llmsim.profiles import NamedProfile
from llmsim.providers import fault_render
from llmsim.providers.base import Answer, ApiError, BodyAnswer
from llmsim.runtime.state import RuntimeState
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


async def decide(
    state: RuntimeState,
    profile: NamedProfile,
    gen: GenerationRequest,
    now: float,
    *,
    forced: FaultType | None,
    seed: int,
    conversation: str | None = None,
) -> FaultOutcome:
    """Decide this request's fault. `now`: loop time (windows); `forced`: the parsed
    `x-llmsim-fault`; `seed`: `seeding.fault_seed`; `conversation`: the conversation identity of a
    request the simulator could not parse (default: the parsed request's, see `faults.request_key`)."""
    spec = profile.spec
    key = faults.request_key(spec.faults, gen, conversation)
    keyed = bool(spec.faults.windows or spec.faults.fail_first or spec.faults.rates)
    elapsed_s, attempt = await state.fault_clock(profile.name, key, now, needed=keyed)
    decision = faults.decide(
        spec,
        gen,
        elapsed_s=elapsed_s,
        attempt=attempt,
        forced=forced,
        seed=seed,
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
