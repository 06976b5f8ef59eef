"""The request pipeline: HTTP request -> facts -> GenerationRequest -> fault/plan -> answer -> bytes.

Thin by design: every decision is made by pure functions (parsers, planner, fault engine,
renderers); this module only reads the request, holds a capacity slot, sends the answer at its
deadlines and reports a RequestRecord. It fails open: whatever goes wrong inside, the client
gets a well-formed provider error, never a hang or a bare traceback.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import time
import uuid
import zlib
from collections.abc import Mapping
from fnmatch import fnmatchcase

from aiohttp import web

from llmsim import headers, streaming
from llmsim.api.faults import FaultType
from llmsim.api.profile import Mode, Provider
from llmsim.profiles import NamedProfile
from llmsim.providers.base import Answer, ApiError, Endpoint, ErrorKind, HttpRequestFacts
from llmsim.server import fault_hooks, observability
from llmsim.server.capacity_gate import QueueFull
from llmsim.server.records import RequestRecord
from llmsim.server.state import ServerState
from llmsim.simulation import planner
from llmsim.simulation.request import GenerationRequest

log = logging.getLogger("llmsim.server")

STATE: web.AppKey[ServerState] = web.AppKey("llmsim_state", ServerState)

KEPT_HEADERS = ("traceparent", "tracestate", "user-agent", "x-stainless-retry-count", "anthropic-version")


def new_request_id() -> str:
    return uuid.uuid4().hex[:24]


def api_key_id(request_headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """A short non-reversible fingerprint of the caller's credential (never the credential)."""
    for name in headers.CREDENTIALS:
        value = request_headers.get(name)
        if value:
            return hashlib.sha256(value.removeprefix("Bearer ").encode()).hexdigest()[:12]
    key = query.get("key")
    return hashlib.sha256(key.encode()).hexdigest()[:12] if key else None


async def read_facts(
    request: web.Request, state: ServerState, request_id: str
) -> tuple[HttpRequestFacts, ApiError | None]:
    """Read the body within the size limit; an oversize body becomes a TOO_LARGE error."""
    lowered = {k.lower(): v for k, v in request.headers.items()}
    query = dict(request.query)
    limit = state.settings.max_body_bytes
    error: ApiError | None = None
    body = b""
    if request.content_length is not None and request.content_length > limit:
        error = ApiError(
            ErrorKind.TOO_LARGE,
            f"Request body too large: {request.content_length} bytes; the limit is {limit} bytes.",
        )
    else:
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.content.iter_chunked(1 << 16):
            size += len(chunk)
            if size > limit:
                error = ApiError(ErrorKind.TOO_LARGE, f"Request body too large: more than {limit} bytes.")
                break
            chunks.append(chunk)
        body = b"".join(chunks)
    facts = HttpRequestFacts(
        request.method, request.path, dict(request.match_info), query, lowered, body, request_id
    )
    return facts, error


def _resolve_profile(state: ServerState, facts: HttpRequestFacts) -> NamedProfile:
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
    try:
        mode = headers.parse_mode(facts.headers.get(headers.MODE))
    except ValueError as exc:
        raise ApiError(ErrorKind.INVALID_REQUEST, str(exc), param=headers.MODE) from None
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


def _rng_seed(
    state: ServerState, profile: NamedProfile, facts: HttpRequestFacts, gen: GenerationRequest, number: int
) -> list[int]:
    header = facts.headers.get(headers.SEED)
    if header is not None:
        try:
            return [int(header)]
        except ValueError:
            raise ApiError(
                ErrorKind.INVALID_REQUEST,
                f"Invalid value for header '{headers.SEED}': {header!r}; expected an integer.",
                param=headers.SEED,
            ) from None
    base = state.seed_for(profile.spec)
    if gen.seed is not None:
        return [base, gen.seed, zlib.crc32(facts.body)]
    return [base, number]


class Pipeline:
    """Serves one endpoint; an instance is bound to each route."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    async def handle(self, request: web.Request) -> web.StreamResponse:
        state = request.app[STATE]
        request_id = new_request_id()
        record = RequestRecord(request_id=request_id, provider=self.endpoint.provider, operation=self.endpoint.operation,
                               path=request.path, started_at=time.time())  # fmt: skip
        state.in_flight += 1
        try:
            return await self._handle(request, state, request_id, record)
        finally:
            state.in_flight -= 1

    async def _handle(
        self, request: web.Request, state: ServerState, request_id: str, record: RequestRecord
    ) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        facts, early_error = await read_facts(request, state, request_id)
        start = loop.time()
        record.session_id = facts.headers.get(headers.SESSION)
        record.headers = {k: facts.headers[k] for k in KEPT_HEADERS if k in facts.headers}
        try:
            if early_error is not None:
                raise early_error
            return await self._serve(request, state, facts, record, start)
        except ApiError as error:
            record.outcome = "fault" if record.fault else "error"
            record.error_kind = error.kind.value
            return await self._send(request, self.endpoint.render_error(error, facts), start, record)
        except streaming.ClientGone:
            record.outcome = "client_closed"
            return web.Response(status=499)
        except asyncio.CancelledError:
            record.outcome = "client_closed"
            raise
        except Exception:  # fail open: a provider-shaped 500, never a traceback
            log.exception("internal error while simulating %s %s", request.method, request.path)
            record.outcome = "internal_error"
            internal = ApiError(
                ErrorKind.SERVER_ERROR,
                "The simulator failed to process this request (internal error; see the llmsim log).",
            )
            return await self._send(request, self.endpoint.render_error(internal, facts), start, record)
        finally:
            record.e2e_s = loop.time() - start
            state.report(record)

    async def _serve(
        self,
        request: web.Request,
        state: ServerState,
        facts: HttpRequestFacts,
        record: RequestRecord,
        start: float,
    ) -> web.StreamResponse:
        gen = self.endpoint.parse(facts)
        gen = dataclasses.replace(gen, api_key_id=api_key_id(facts.headers, facts.query),
                                  client_request_id=headers.client_request_id(facts.headers))  # fmt: skip
        record.model, record.stream = gen.model, gen.stream
        profile = observability.session_profile(request.app, facts.headers) or _resolve_profile(state, facts)
        record.profile = profile.name
        _check_mode(facts)
        _check_provider(profile, self.endpoint.provider)
        _check_model(profile, gen)
        seed = _rng_seed(state, profile, facts, gen, state.next_request_number())
        rng = planner.new_rng(*seed)
        outcome = await fault_hooks.decide(state, profile, facts, gen, start)
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
                plan = planner.plan_response(
                    profile.spec, gen, rng, response_id=facts.request_id, created=int(time.time()),
                    active_streams=active, queue_s=queue_s, fault=fault, cache=cache,
                )  # fmt: skip
                record.queue_s, record.planned_ttft_s = queue_s, plan.timing.ttft_s
                record.response_model = plan.model
                record.prompt_tokens, record.completion_tokens = plan.prompt_tokens, plan.completion_tokens
                record.finish_reasons = [c.finish_reason for c in plan.choices]
                answer = fault_hooks.finish(self.endpoint.render(plan, gen, facts), outcome, gen)
                return await self._send(request, answer, start, record)
        except QueueFull:
            record.fault, record.fault_reason = FaultType.OVERLOADED.value, "capacity"
            raise ApiError(ErrorKind.OVERLOADED, "The server is overloaded: the request queue is full. Please retry later.",
                           headers={"retry-after": "1"}) from None  # fmt: skip

    async def _send(
        self, request: web.Request, answer: Answer, start: float, record: RequestRecord
    ) -> web.StreamResponse:
        record.status = answer.status

        def on_token(t: float) -> None:
            if record.ttft_s is None:
                record.ttft_s = t - start
            record.token_times_s.append(t - start)

        return await streaming.send(request, answer, start, on_token if answer.status == 200 else None)
