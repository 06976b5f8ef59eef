"""`POST /v1/simulate`: simulated responses with their timing, computed by the pure planner and
fault engine, without any wire format (see docs/telemetry.md)."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from typing import Any, cast

from aiohttp import web

from llmsim.api.distributions import Constant
from llmsim.errors import ProfileError
from llmsim.profiles import NamedProfile, deep_merge, dump_spec, parse_spec
from llmsim.server import control_models as cm
from llmsim.server.control import ControlError, parse_body, resolve_profile
from llmsim.simulation import faults, planner
from llmsim.simulation.plan import FaultDecision, ResponsePlan
from llmsim.simulation.request import GenerationRequest, Message, ToolChoice, ToolSpec
from llmsim.telemetry import stats
from llmsim.telemetry.sessions import LatencySummary


def _generation_request(req: cm.NeutralRequest) -> GenerationRequest:
    if req.tool_choice in ("auto", "none", "required"):
        choice = ToolChoice(mode=req.tool_choice)  # type: ignore[arg-type]
    else:
        choice = ToolChoice(mode="named", name=req.tool_choice)
    return GenerationRequest(
        provider=req.provider,
        operation=req.operation,
        model=req.model,
        messages=tuple(Message(m.role, m.content) for m in req.messages),
        max_tokens=req.max_tokens,
        stop=tuple(req.stop),
        stream=req.stream,
        n=req.n,
        tools=tuple(ToolSpec(t.name, t.description, t.parameters) for t in req.tools),
        tool_choice=choice,
        inputs=tuple(req.input),
        dimensions=req.dimensions,
    )


def _apply_overrides(profile: NamedProfile, overrides: dict[str, Any]) -> NamedProfile:
    if not overrides:
        return profile
    merged = deep_merge(dump_spec(profile.spec), overrides)
    try:
        spec = parse_spec(merged, "overrides")
    except ProfileError as exc:
        raise ControlError(
            400, "overrides: " + "; ".join(exc.problems), code="invalid_overrides", param="overrides"
        ) from None
    return NamedProfile(name=profile.name, spec=spec, source=f"{profile.source}+overrides")


def simulate_one(
    body: cm.Simulate, spec: Any, gen: GenerationRequest, seed: int, index: int, created: int
) -> cm.SimResult:
    """One simulated response and its timing. Pure (given its arguments)."""
    response_id = f"sim_{seed:x}_{index}"
    decided = faults.decide(
        spec,
        gen,
        elapsed_s=body.elapsed_s,
        now_unix=body.at.timestamp() if body.at is not None else float(created),
        attempt=0,
        forced=body.fault,
        seed=seed,
        key=f"sim:{index}",
    )
    if decided is not None and decided.fault in faults.REPLACING_FAULTS:
        stall = float(cast(float, decided.detail.get("stall_s", 0.0)))
        timing = cm.SimTiming(queue_s=0.0, ttft_s=None, e2e_s=stall, itl_s=[])
        usage = cm.SimUsage(
            input_tokens=planner.prompt_tokens(gen), output_tokens=0, total_tokens=planner.prompt_tokens(gen)
        )
        return cm.SimResult(
            index=index, response_id=response_id, model=spec.models.aliases.get(gen.model, gen.model),
            choices=[], usage=usage, fault=_sim_fault(decided), timing=timing,
        )  # fmt: skip
    rng = planner.new_rng(seed, index)
    plan = planner.plan_response(
        spec,
        gen,
        rng,
        response_id=response_id,
        created=created,
        active_streams=body.active_streams,
        fault=decided,
    )
    return _result(body, plan, index, decided)


def _us(seconds: float) -> float:
    """Seconds rounded to microseconds (keeps large answers compact)."""
    return round(seconds, 6)


def _sim_fault(decided: FaultDecision) -> cm.SimFault:
    return cm.SimFault(
        type=decided.fault.value,
        reason=decided.reason,
        after_tokens=decided.after_tokens,
        status_fault=decided.fault in faults.REPLACING_FAULTS,
    )


def _result(body: cm.Simulate, plan: ResponsePlan, index: int, decided: FaultDecision | None) -> cm.SimResult:
    offsets = list(plan.timing.token_offsets_s)
    cut = decided is not None and decided.fault in faults.STREAM_FAULTS
    if cut and decided is not None:
        offsets = offsets[: decided.after_tokens]
    ttft = offsets[0] if offsets else (plan.timing.ttft_s if plan.embeddings else None)
    e2e = offsets[-1] if offsets else plan.timing.ttft_s
    itl = [b - a for a, b in itertools.pairwise(offsets)]
    choices = []
    for c in plan.choices:
        choice = cm.SimChoice(index=c.index, finish_reason=c.finish_reason, output_tokens=c.output_tokens)
        if body.include_content:
            choice = choice.model_copy(
                update={
                    "text": c.text,
                    "tool_calls": [
                        cm.SimToolCall(id=t.id, name=t.name, arguments=t.arguments) for t in c.tool_calls
                    ],
                }
            )
        choices.append(choice)
    sent = min(plan.completion_tokens, len(offsets)) if cut else plan.completion_tokens
    usage = cm.SimUsage(
        input_tokens=plan.prompt_tokens, output_tokens=sent, total_tokens=plan.prompt_tokens + sent
    )
    return cm.SimResult(
        index=index,
        response_id=plan.response_id,
        model=plan.model,
        choices=choices,
        usage=usage,
        fault=_sim_fault(decided) if decided is not None else None,
        timing=cm.SimTiming(
            queue_s=_us(plan.timing.queue_s),
            ttft_s=None if ttft is None else _us(ttft),
            e2e_s=_us(e2e),
            itl_s=[_us(g) for g in itl],
        ),
    )


def _summary(results: list[cm.SimResult]) -> cm.SimSummary:
    ttft = [r.timing.ttft_s for r in results if r.timing.ttft_s is not None]
    itl = [g for r in results for g in r.timing.itl_s]
    counts: dict[str, int] = {}
    for r in results:
        if r.fault is not None:
            counts[r.fault.type] = counts.get(r.fault.type, 0) + 1
    return cm.SimSummary(
        ttft_s=LatencySummary.of(stats.summarize(ttft)),
        itl_s=LatencySummary.of(stats.summarize(itl)),
        e2e_s=LatencySummary.of(stats.summarize(r.timing.e2e_s for r in results)),
        output_tokens=LatencySummary.of(stats.summarize(float(r.usage.output_tokens) for r in results)),
        faults=dict(sorted(counts.items())),
    )


SIMULATED_TOKEN_BUDGET = 2_000_000
"""Most work one `POST /v1/simulate` may ask for: count x n x (the longest reply the profile and
max tokens allow + `_PER_REPLY_COST`), a few seconds of CPU here; more is a 400 naming `count`
(with the default profile, replies of up to 2048 tokens: about 960 responses a call)."""
_PER_REPLY_COST = 32
"""A reply's own cost (its result, timing and summary entries), in tokens' worth."""


def _longest_reply(spec: Any, gen: GenerationRequest) -> int:
    """The most output tokens one simulated reply can have."""
    limit = planner.output_limit(gen)
    dist = spec.latency.output_tokens
    bound = dist.value if isinstance(dist, Constant) else dist.max
    return limit if bound is None else max(1, min(limit, round(bound)))


async def simulate(request: web.Request) -> web.Response:
    body = await parse_body(request, cm.Simulate)
    profile = _apply_overrides(resolve_profile(request, body.profile), body.overrides)
    spec = profile.spec
    replies = body.count * body.request.n
    longest = _longest_reply(spec, _generation_request(body.request))
    if replies * (longest + _PER_REPLY_COST) > SIMULATED_TOKEN_BUDGET:
        raise ControlError(
            400,
            f"count: {body.count} responses x n {body.request.n} of up to {longest} tokens is more than one "
            f"call may simulate ({SIMULATED_TOKEN_BUDGET} tokens' worth, {_PER_REPLY_COST} per reply "
            "included); lower count, request.n or request.maxTokens",
            code="too_much_work",
            param="count",
        )
    seed = body.seed if body.seed is not None else spec.seed
    if seed is None:
        seed = int.from_bytes(os.urandom(4), "little")
    gen = _generation_request(body.request)
    created = int(time.time())
    started = asyncio.get_running_loop().time()
    # Thousands of responses (of up to 65,536 tokens each) take a while: in a worker thread, so
    # that streams and health checks stay on time (it releases the interpreter between steps).
    results = await asyncio.to_thread(
        lambda: [simulate_one(body, spec, gen, seed, index, created) for index in range(body.count)]
    )
    if body.realtime and results:
        wait_s = min(max(r.timing.e2e_s for r in results), cm.REALTIME_MAX_WAIT_S)
        await asyncio.sleep(max(0.0, started + wait_s - asyncio.get_running_loop().time()))
    answer = cm.SimulateResult(
        profile=profile.name,
        seed=seed,
        count=body.count,
        realtime=body.realtime,
        results=results,
        summary=_summary(results),
    )
    # Serialising thousands of results takes a while: off the loop, so that streams stay on time.
    text = await asyncio.to_thread(answer.model_dump_json)
    return web.json_response(text=text)
