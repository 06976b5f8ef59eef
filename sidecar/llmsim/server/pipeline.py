"""The request pipeline: HTTP request -> facts -> GenerationRequest -> fault/plan -> answer -> bytes.

Thin by design: every decision is made by pure functions (parsers, planner, fault engine,
renderers) and the runtime layer (intake, seeding, fault hooks, capacity); this module only puts
them in order, holds a capacity slot, sends the answer at its deadlines and reports the request's
record. It fails open: whatever goes wrong inside, the client gets a well-formed provider error,
never a hang or a bare traceback.
"""

from __future__ import annotations

import asyncio
import logging
import time
from fnmatch import fnmatchcase

from aiohttp import web

from llmsim import headers, streaming
from llmsim.api.faults import FaultType
from llmsim.api.profile import Mode, Provider
from llmsim.profiles import NamedProfile
from llmsim.providers import errors
from llmsim.providers.base import Answer, ApiError, Endpoint, ErrorKind, HttpRequestFacts
from llmsim.runtime import fault_hooks, intake, seeding
from llmsim.runtime.capacity_gate import QueueFull
from llmsim.runtime.state import STATE, RuntimeState
from llmsim.server import observability
from llmsim.simulation import embeddings, planner
from llmsim.simulation.plan import ResponsePlan
from llmsim.simulation.request import GenerationRequest
from llmsim.telemetry.facade import trace_carrier
from llmsim.telemetry.records import RecordBuilder

log = logging.getLogger("llmsim.server")


def _resolve_profile(state: RuntimeState, facts: HttpRequestFacts) -> NamedProfile:
    name = facts.headers.get(headers.PROFILE)
    try:
        return state.registry.get(name)
    except KeyError:
        raise ApiError(
            ErrorKind.INVALID_REQUEST,
            f"Unknown profile {name!r} in header '{headers.PROFILE}'; known: {', '.join(state.registry.names())} (and the built-in presets).",
            param=headers.PROFILE,
        ) from None


def _check_mode(facts: HttpRequestFacts) -> None:
    mode = intake.requested_mode(facts.headers)
    if mode is not None and mode is not Mode.SIMULATE:
        raise ApiError(
            ErrorKind.INVALID_REQUEST,
            f"'{headers.MODE}: {mode.value}' needs an upstream; `llmsim serve` only simulates (use `llmsim proxy` to perturb or pass through).",
            param=headers.MODE,
        )


def _check_provider(profile: NamedProfile, provider: str) -> None:
    wanted = profile.spec.provider
    if wanted is not Provider.ANY and wanted.value != provider:
        raise ApiError(
            ErrorKind.NOT_FOUND,
            f"Profile {profile.name!r} serves only the {wanted.value} API (spec.provider); this is a {provider} route.",
        )


def _check_model(profile: NamedProfile, gen: GenerationRequest) -> None:
    models = profile.spec.models
    if models.strict and not any(fnmatchcase(gen.model, pattern) for pattern in models.allow):
        raise ApiError(
            ErrorKind.NOT_FOUND,
            f"The model `{gen.model}` does not exist or you do not have access to it.",
            param="model",
        )


HEAVY_OUTPUT_VALUES = 256 * 1024
"""Answers with more embedding values than this are planned and rendered in a worker thread (the
largest OpenAI embeddings request, 2048 inputs of 1536 dimensions, took 3.6 s of CPU)."""


def _heavy_output(gen: GenerationRequest) -> bool:
    if gen.operation != "embeddings":
        return False
    return len(gen.inputs) * (gen.dimensions or embeddings.DEFAULT_DIMENSIONS) > HEAVY_OUTPUT_VALUES


class Pipeline:
    """Serves one endpoint; an instance is bound to each route."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    async def handle(self, request: web.Request) -> web.StreamResponse:
        state = request.app[STATE]
        record = RecordBuilder(
            intake.new_request_id(), self.endpoint.provider, self.endpoint.operation, started_at=time.time()
        )
        state.in_flight += 1
        try:
            return await self._handle(request, state, record)
        finally:
            state.in_flight -= 1

    async def _handle(
        self, request: web.Request, state: RuntimeState, record: RecordBuilder
    ) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        facts, early_error = await intake.read_facts(
            request, state.settings.max_body_bytes, record.request_id
        )
        start = loop.time()
        record.session_id = facts.headers.get(headers.SESSION)
        record.carrier = trace_carrier(facts.headers)
        try:
            if early_error is not None:
                raise early_error
            return await self._serve(request, state, facts, record, start)
        except ApiError as error:
            record.fail(error.kind.value, error.message)
            return await self._send(request, self.endpoint.render_error(error, facts), start, record)
        except (streaming.ClientGone, ConnectionError):  # the client left (e.g. before a whole body)
            record.cancel()
            return web.Response(status=499)
        except asyncio.CancelledError:
            record.cancel()
            raise
        except Exception:  # fail open: a provider-shaped 500, never a traceback
            log.exception("internal error while simulating %s %s", request.method, request.path)
            internal = errors.internal_error()
            record.internal_error(internal.message)
            return await self._send(request, self.endpoint.render_error(internal, facts), start, record)
        finally:
            record.e2e_s = loop.time() - start
            state.report(record.build())

    async def _serve(
        self,
        request: web.Request,
        state: RuntimeState,
        facts: HttpRequestFacts,
        record: RecordBuilder,
        start: float,
    ) -> web.StreamResponse:
        # large bodies off the event loop (a 30 MB prompt takes about a second to parse and count)
        gen = await state.parser.parse(self.endpoint, facts)
        record.model, record.stream = gen.model, gen.stream
        profile = observability.session_profile(request.app, facts.headers) or _resolve_profile(state, facts)
        record.profile = profile.name
        _check_mode(facts)
        _check_provider(profile, self.endpoint.provider)
        _check_model(profile, gen)
        try:
            fault_hooks.check_key(profile, facts, self.endpoint.provider)
        except ApiError:
            record.fault, record.fault_reason = FaultType.AUTHENTICATION.value, "require_key"
            raise
        seed_header = seeding.header_seed(facts)
        rng = planner.new_rng(
            *seeding.rng_seed(state, profile.spec, facts, gen, seed_header, state.next_request_number())
        )
        outcome = await fault_hooks.decide(
            state,
            profile,
            gen,
            start,
            forced=intake.forced_fault(facts.headers),
            seed=seeding.fault_seed(state, profile.spec, seed_header),
            advertise=True,
        )
        fault = outcome.fault
        if fault is not None:
            record.fault, record.fault_reason = fault.fault.value, fault.reason
        if outcome.error is not None:
            raise outcome.error
        if outcome.stall is not None:
            return await self._send(request, outcome.stall, start, record)
        try:
            async with state.gate(profile).slot() as (active, queue_s):
                cache = state.prompt_cache(profile).use(gen, profile.spec.prompt_caching,
                                                        seed=state.seed_for(profile.spec), now=start)  # fmt: skip

                def plan_and_render() -> tuple[ResponsePlan, Answer]:
                    plan = planner.plan_response(
                        profile.spec, gen, rng, response_id=facts.request_id, created=int(time.time()),
                        active_streams=active, queue_s=queue_s, fault=fault, cache=cache,
                    )  # fmt: skip
                    return plan, self.endpoint.render(plan, gen, facts)

                if _heavy_output(gen):  # e.g. 2048 embeddings: seconds of CPU, off the event loop
                    plan, rendered = await asyncio.get_running_loop().run_in_executor(None, plan_and_render)
                else:
                    plan, rendered = plan_and_render()
                record.response_model = plan.model
                record.input_tokens, record.output_tokens = plan.prompt_tokens, plan.completion_tokens
                record.finish_reasons = [c.finish_reason for c in plan.choices]
                answer = fault_hooks.finish(rendered, outcome, gen)
                return await self._send(request, answer, start, record)
        except QueueFull:
            record.fault, record.fault_reason = FaultType.OVERLOADED.value, "capacity"
            raise ApiError(ErrorKind.OVERLOADED, "The server is overloaded: the request queue is full. Please retry later.",
                           headers={"retry-after": "1"}) from None  # fmt: skip

    async def _send(
        self, request: web.Request, answer: Answer, start: float, record: RecordBuilder
    ) -> web.StreamResponse:
        record.status = answer.status

        def on_token(t: float) -> None:
            record.token(t - start)

        return await streaming.send(request, answer, start, on_token if answer.status == 200 else None)
