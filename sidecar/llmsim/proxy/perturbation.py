"""Perturb mode's decision for one request: the fault and the latency added to the real answer.

The fault is the core's (`simulation.faults`), asked through the runtime's fault hooks exactly as
the simulator asks: the same seeded `unit(seed, key, attempt, rule)` draws, attempt counters,
windows and rate limiter, so the same seed gives the same fault whoever answers. On a route the
simulator knows, the request is parsed by its endpoint; on any other, it is keyed by its provider,
path and body (`faults.opaque_conversation_id`). A fault that replaces the answer is rendered by
the provider modules (the endpoint's `render_error`, else `providers.errors`), so it has the same
bytes as the simulator's; one that rides along is applied by the relay.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field

from llmsim.profiles import NamedProfile
from llmsim.providers import errors
from llmsim.providers.base import ApiError, BodyAnswer, HttpRequestFacts
from llmsim.proxy import perturb
from llmsim.proxy.exchange import Exchange
from llmsim.runtime import fault_hooks, intake, seeding
from llmsim.runtime.state import RuntimeState
from llmsim.simulation import faults, planner, safety
from llmsim.simulation.request import GenerationRequest


@dataclass(frozen=True)
class Perturbation:
    plan: perturb.PerturbPlan
    generation: GenerationRequest
    substitute: BodyAnswer | None = None
    """The answer instead of the upstream's (a status fault, a rate limit, a `timeout` stall)."""
    error: ApiError | None = None
    """The error `substitute` renders (None for a stall)."""
    headers: dict[str, str] = field(default_factory=dict)
    """Rate-limit headers for the forwarded answer."""


def facts_of(ex: Exchange) -> HttpRequestFacts:
    return intake.facts_of(ex.request, ex.body, ex.request_id)


def opaque_request(ex: Exchange, facts: HttpRequestFacts) -> GenerationRequest:
    """What the fault engine knows of a request the simulator cannot parse."""
    extra = {"sse": facts.query.get("alt", "").lower() == "sse"} if ex.info.provider == "gemini" else {}
    return intake.enrich(
        GenerationRequest(
            provider=ex.info.provider,
            operation="chat",
            model=ex.info.model or "",
            stream=ex.info.stream,
            extra=extra,
        ),
        facts,
    )


def render_error(ex: Exchange, error: ApiError, facts: HttpRequestFacts | None = None) -> BodyAnswer:
    """`error` as the simulator would answer it on this route (or as the provider does, off-route)."""
    if ex.endpoint is not None:
        return ex.endpoint.render_error(error, facts or facts_of(ex))
    return errors.error_answer(ex.info.provider, error, ex.request_id)


async def decide(runtime: RuntimeState, profile: NamedProfile, ex: Exchange) -> Perturbation:
    """The fault and the added latency for `ex`; ApiError for bad `x-llmsim-*` headers."""
    facts = facts_of(ex)
    seed_header = seeding.header_seed(facts)
    parsed: GenerationRequest | None = None
    if ex.endpoint is not None:
        try:
            parsed = intake.enrich(ex.endpoint.parse(facts), facts)
        except ApiError:
            parsed = None  # the real provider answers invalid requests itself; faults still apply
    gen = parsed or opaque_request(ex, facts)
    conversation = (
        None if parsed is not None else faults.opaque_conversation_id(gen.provider, ex.info.path, ex.body)
    )
    outcome = await fault_hooks.decide(
        runtime,
        profile,
        gen,
        asyncio.get_running_loop().time(),
        forced=intake.forced_fault(facts.headers),
        seed=seeding.fault_seed(runtime, profile.spec, seed_header),
        conversation=conversation,
    )
    rng = planner.new_rng(*seeding.rng_seed(runtime, profile.spec, facts, parsed, seed_header, ex.number))
    fault = outcome.fault
    if fault is not None and fault.fault in safety.SAFETY_FAULTS:
        fault = None  # a real answer cannot be made to refuse: it passes as it came (and is not counted)
    plan = perturb.plan_perturbation(profile.spec, rng, fault)
    if outcome.error is not None:
        answer = render_error(ex, outcome.error, facts)
        substitute = dataclasses.replace(answer, at_s=plan.added_ttft_s)  # the added TTFT still applies
        return Perturbation(plan, gen, substitute, outcome.error)
    if outcome.stall is not None:
        return Perturbation(plan, gen, outcome.stall)
    return Perturbation(plan, gen, headers=dict(outcome.headers))
