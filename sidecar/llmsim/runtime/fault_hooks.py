"""Where a request asks for its fault decision and has it applied.

`decide` runs before a capacity slot is taken, for the simulator's pipeline and for the proxy's
perturb mode alike: the pure fault engine (`simulation.faults.decide`: forced header, context
overflow, windows, fail-first, rates), then the stateful rate limiter (`runtime/ratelimit_store`).
Its outcome either replaces the response (an ApiError for status faults, a stall for `timeout`)
or rides along with the answer (`slow_stream`, stream faults), where `finish` applies it to a
rendered answer and the proxy's relay to a forwarded one (both through `providers.fault_render`).

An injected status fault is answered without touching the rate-limit buckets (the request never
reached the "model"); `x-llmsim-fault: none` switches off injected faults but not rate limits.

With `advertise` (the simulator; the proxy forwards the upstream's own headers), every answer
carries the provider's rate-limit headers: from the enforced buckets when `rateLimits` is set,
else from the default tier's never-rejecting buckets (`simulation/rate_tiers.py`). Errors read
the buckets without charging them.
"""

from __future__ import annotations

import dataclasses
import re
import time
from dataclasses import dataclass, field

from llmsim import headers
from llmsim.api.faults import FaultType
from llmsim.profiles import NamedProfile
from llmsim.providers import catalog, fault_render
from llmsim.providers.base import Answer, ApiError, BodyAnswer, HttpRequestFacts
from llmsim.runtime.state import RuntimeState
from llmsim.simulation import faults, planner, rate_tiers, ratelimit
from llmsim.simulation.plan import FaultDecision
from llmsim.simulation.request import GenerationRequest


@dataclass(frozen=True)
class FaultOutcome:
    """What the fault engine and the rate limiter decided for one request."""

    fault: FaultDecision | None = None
    error: ApiError | None = None
    """Answer with this error instead (status faults, rate limited)."""
    stall: BodyAnswer | None = None
    """Answer with this instead: `timeout`'s stall, Gemini's blocked prompt (`prompt_filter`)."""
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
    advertise: bool = False,
) -> FaultOutcome:
    """Decide this request's fault. `now`: loop time (windows); `forced`: the parsed
    `x-llmsim-fault`; `seed`: `seeding.fault_seed`; `conversation`: the conversation identity of a
    request the simulator could not parse (default: the parsed request's, see `faults.request_key`);
    `advertise`: put rate-limit headers on every answer (see the module docstring)."""
    spec = profile.spec
    key = faults.request_key(spec.faults, gen, conversation)
    keyed = bool(spec.faults.windows or spec.faults.fail_first or spec.faults.rates)
    elapsed_s, attempt = await state.fault_clock(profile.name, key, now, needed=keyed)
    decision = faults.decide(
        spec,
        gen,
        elapsed_s=elapsed_s,
        now_unix=state.wall_clock(),
        attempt=attempt,
        forced=forced,
        seed=seed,
        key=key,
    )
    if decision is not None:
        error = fault_render.fault_error(decision, gen)
        stall = fault_render.substitute_answer(decision, gen)
        if error is not None and advertise:
            error = dataclasses.replace(
                error, headers={**_read_headers(state, profile, gen), **error.headers}
            )
        if error is not None or stall is not None:
            return FaultOutcome(decision, error=error, stall=stall)
    limits = spec.faults.rate_limits
    if limits is None:
        return FaultOutcome(
            decision, headers=_advertised(state, profile, gen, charge=True) if advertise else {}
        )
    verdict = await state.rate_limiter.check(
        limits, ratelimit.bucket_key(limits, gen), ratelimit.request_cost(gen), namespace=profile.name
    )
    now_unix = time.time()
    if not verdict.allowed:
        limited = FaultDecision(FaultType.RATE_LIMIT, "rate_limit", retry_after_s=verdict.retry_after_s)
        error = fault_render.fault_error(limited, gen, verdict=verdict, now_unix=now_unix)
        return FaultOutcome(limited, error=error)
    return FaultOutcome(decision, headers=fault_render.ratelimit_headers(gen.provider, verdict, now_unix))


def _read_headers(state: RuntimeState, profile: NamedProfile, gen: GenerationRequest) -> dict[str, str]:
    """Rate-limit headers for an error answer: the buckets' state, charging nothing."""
    limits = profile.spec.faults.rate_limits
    if limits is None:
        return _advertised(state, profile, gen, charge=False)
    verdict = state.rate_limiter.peek(limits, ratelimit.bucket_key(limits, gen), namespace=profile.name)
    return {} if verdict is None else fault_render.ratelimit_headers(gen.provider, verdict, time.time())


def _advertised(
    state: RuntimeState, profile: NamedProfile, gen: GenerationRequest, *, charge: bool
) -> dict[str, str]:
    """The default tier's headers (`rate_tiers`), from buckets keyed by profile, API key and model."""
    tier = rate_tiers.advertised(gen.provider, profile.spec.faults.rate_limit_headers)
    if tier is None:
        return {}
    limiter = state.rate_limiter
    bucket = f"{profile.name}|{gen.provider}|key={gen.api_key_id or '-'}|model={gen.model}"
    main_limits = rate_tiers.main_buckets(gen.provider, tier)
    output_limits = rate_tiers.output_buckets(tier)
    if output_limits is None:
        verdict = limiter.advertise(bucket, main_limits, ratelimit.request_cost(gen), charge=charge)
        return fault_render.ratelimit_headers(gen.provider, verdict, time.time())
    verdict = limiter.advertise(bucket, main_limits, planner.prompt_tokens(gen), charge=charge)
    output = limiter.advertise(bucket + "|output", output_limits, max(0, gen.max_tokens or 0), charge=charge)
    return fault_render.ratelimit_headers(gen.provider, verdict, time.time(), output=output)


def check_key(profile: NamedProfile, facts: HttpRequestFacts, provider: str) -> None:
    """`faults.requireKey`: raise the provider's 401 unless the request's API key matches."""
    required = profile.spec.faults.require_key
    if required is None:
        return
    key = _credential(facts)
    if key is None or re.fullmatch(required.pattern, key) is None:
        raise fault_render.key_error(provider, missing=key is None)


def _credential(facts: HttpRequestFacts) -> str | None:
    """The API key the request carries (header, then Gemini's `key=`), without `Bearer `."""
    for name in headers.CREDENTIALS:
        value = facts.headers.get(name)
        if value:
            return value.removeprefix("Bearer ").strip()
    return facts.query.get(catalog.CREDENTIAL_QUERY) or None


def finish(answer: Answer, outcome: FaultOutcome, gen: GenerationRequest) -> Answer:
    """Apply stream faults and rate-limit headers to the rendered answer."""
    return fault_render.with_headers(fault_render.apply(answer, outcome.fault, gen), outcome.headers)
