"""The control API: sessions, offline simulation, per-session metrics and the OpenAPI document.

* `POST /v1/sessions` -> 201 with the new session's id (send it as `x-llmsim-session`).
* `DELETE /v1/sessions/{session_id}` -> completes the session and returns its final metrics.
* `GET /v1/metrics/{session_id}` -> the session's metrics.
* `POST /v1/simulate` -> simulated responses with their timing, computed by the pure planner.
* `GET /openapi.json` -> OpenAPI 3.1 document of these routes, generated from the pydantic models.

Errors use the provider routes' JSON shape: `{"error": {"message", "type", "param", "code"}}`.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema

from llmsim import __version__
from llmsim.api.faults import FaultType
from llmsim.errors import ProfileError, describe_validation_error
from llmsim.profiles import NamedProfile, deep_merge, dump_spec, parse_spec
from llmsim.runtime.state import STATE
from llmsim.server import control_models as cm
from llmsim.server.observability import TELEMETRY
from llmsim.simulation import faults, planner
from llmsim.simulation.plan import FaultDecision, ResponsePlan
from llmsim.simulation.request import GenerationRequest, Message, ToolChoice, ToolSpec
from llmsim.telemetry import stats
from llmsim.telemetry.sessions import SESSION_ID_PATTERN, LatencySummary, SessionError, SessionMetrics

_YIELD_EVERY = 8
"""Simulated responses computed between yields to the event loop (keeps streams on time)."""


class ControlError(Exception):
    def __init__(self, status: int, message: str, *, code: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param


def error_response(status: int, message: str, *, code: str, param: str | None = None) -> web.Response:
    kind = "invalid_request_error" if status < 500 else "server_error"
    body = cm.ErrorBody(error=cm.ErrorDetail(message=message, type=kind, param=param, code=code))
    return web.json_response(body.model_dump(mode="json"), status=status)


def _json(model: BaseModel, status: int = 200) -> web.Response:
    return web.json_response(text=model.model_dump_json(), status=status)


async def _body[M: BaseModel](request: web.Request, model: type[M]) -> M:
    raw = await request.read()
    try:
        doc = json.loads(raw) if raw.strip() else {}
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ControlError(400, f"The request body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(doc, dict):
        raise ControlError(400, "The request body must be a JSON object.", code="invalid_json")
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        problems = describe_validation_error(exc)
        param = problems[0].split(":", 1)[0] if problems else None
        raise ControlError(400, "; ".join(problems), code="invalid_body", param=param) from None


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _wrap(handler: Handler) -> Handler:
    """Turn ControlError into the JSON error response."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ControlError as exc:
            return error_response(exc.status, exc.message, code=exc.code, param=exc.param)

    return wrapped


def _profile(request: web.Request, ref: str | Any | None, param: str = "profile") -> NamedProfile:
    registry = request.app[STATE].registry
    if ref is None:
        return registry.default
    if isinstance(ref, str):
        try:
            return registry.get(ref)
        except KeyError:
            known = ", ".join(registry.names())
            raise ControlError(
                400,
                f"{param}: unknown profile {ref!r}; known: {known} (and the presets)",
                code="unknown_profile",
                param=param,
            ) from None
    return NamedProfile(name="inline", spec=ref, source="request")


# ---------------------------------------------------------------------------------------------
# sessions


async def create_session(request: web.Request) -> web.Response:
    body = await _body(request, cm.CreateSession)
    profile = _profile(request, body.profile) if body.profile is not None else None
    telemetry = request.app[TELEMETRY]
    try:
        session = telemetry.create_session(
            profile.name if profile else None, profile.spec if profile else None, body.labels, body.id
        )
    except SessionError as exc:
        raise ControlError(
            409 if "exists" in str(exc) else 400, str(exc), code="session_conflict", param="id"
        ) from None
    created = cm.SessionCreated(
        session_id=session.id,
        profile=session.profile_name,
        labels=session.labels,
        created_at=session.created_at,
    )
    return _json(created, status=201)


def _unknown_session(session_id: str) -> ControlError:
    return ControlError(
        404, f"No session with id {session_id!r}.", code="session_not_found", param="session_id"
    )


async def session_metrics(request: web.Request) -> web.Response:
    session_id = request.match_info["session_id"]
    metrics = request.app[TELEMETRY].sessions.metrics(session_id)
    if metrics is None:
        raise _unknown_session(session_id)
    return _json(metrics)


async def complete_session(request: web.Request) -> web.Response:
    session_id = request.match_info["session_id"]
    metrics = request.app[TELEMETRY].complete_session(session_id)
    if metrics is None:
        raise _unknown_session(session_id)
    return _json(metrics)


# ---------------------------------------------------------------------------------------------
# offline simulation


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
        spec, gen, elapsed_s=body.elapsed_s, attempt=0, forced=body.fault, seed=seed, key=f"sim:{index}"
    )
    if decided is not None and (decided.fault in faults.STATUS_FAULTS or decided.fault is FaultType.TIMEOUT):
        stall = spec.faults.params.timeout_s if decided.fault is FaultType.TIMEOUT else 0.0
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
        status_fault=decided.fault in faults.STATUS_FAULTS or decided.fault is FaultType.TIMEOUT,
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


async def simulate(request: web.Request) -> web.Response:
    body = await _body(request, cm.Simulate)
    profile = _apply_overrides(_profile(request, body.profile), body.overrides)
    spec = profile.spec
    seed = body.seed if body.seed is not None else spec.seed
    if seed is None:
        seed = int.from_bytes(os.urandom(4), "little")
    gen = _generation_request(body.request)
    created = int(time.time())
    started = asyncio.get_running_loop().time()
    results: list[cm.SimResult] = []
    for index in range(body.count):
        results.append(simulate_one(body, spec, gen, seed, index, created))
        if (index + 1) % _YIELD_EVERY == 0:
            await asyncio.sleep(0)
    if body.realtime and results:
        longest = min(max(r.timing.e2e_s for r in results), cm.REALTIME_MAX_WAIT_S)
        await asyncio.sleep(max(0.0, started + longest - asyncio.get_running_loop().time()))
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


# ---------------------------------------------------------------------------------------------
# OpenAPI


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json_content(name: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": _ref(name)}}}


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the control API (JSON Schema 2020-12 from the pydantic models)."""
    models: list[tuple[type[BaseModel], Any]] = [
        (cm.CreateSession, "validation"),
        (cm.SessionCreated, "serialization"),
        (cm.Simulate, "validation"),
        (cm.SimulateResult, "serialization"),
        (SessionMetrics, "serialization"),
        (cm.ErrorBody, "serialization"),
    ]
    _, top = models_json_schema(models, ref_template="#/components/schemas/{model}", by_alias=True)
    schemas = top.get("$defs", {})
    error = {"description": "Error", **_json_content("ErrorBody")}
    session_param = {
        "name": "session_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": SESSION_ID_PATTERN},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "llmsim control API",
            "version": __version__,
            "description": "Sessions, offline simulation and per-session metrics of an llmsim server.",
        },
        "paths": {
            "/v1/sessions": {
                "post": {
                    "operationId": "createSession",
                    "summary": "Create a session; send its id as `x-llmsim-session` on provider requests.",
                    "requestBody": {"required": True, **_json_content("CreateSession")},
                    "responses": {
                        "201": {"description": "Created", **_json_content("SessionCreated")},
                        "400": error,
                        "409": error,
                    },
                }
            },
            "/v1/sessions/{session_id}": {
                "delete": {
                    "operationId": "completeSession",
                    "summary": "Complete a session (emits session.completed) and return its final metrics.",
                    "parameters": [session_param],
                    "responses": {
                        "200": {"description": "OK", **_json_content("SessionMetrics")},
                        "404": error,
                    },
                }
            },
            "/v1/metrics/{session_id}": {
                "get": {
                    "operationId": "getSessionMetrics",
                    "summary": "Counts, RPS, TPS, error rates by type and latency percentiles of a session.",
                    "parameters": [session_param],
                    "responses": {
                        "200": {"description": "OK", **_json_content("SessionMetrics")},
                        "404": error,
                    },
                }
            },
            "/v1/simulate": {
                "post": {
                    "operationId": "simulate",
                    "summary": "Simulate responses with their timing (sampled TTFT, ITL series, E2E).",
                    "requestBody": {"required": True, **_json_content("Simulate")},
                    "responses": {
                        "200": {"description": "OK", **_json_content("SimulateResult")},
                        "400": error,
                    },
                }
            },
        },
        "components": {"schemas": schemas},
    }


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


def add_routes(app: web.Application) -> None:
    """Register the control routes (the app must hold STATE and, via `observability.install`, TELEMETRY)."""
    app.router.add_post("/v1/sessions", _wrap(create_session))
    app.router.add_delete("/v1/sessions/{session_id}", _wrap(complete_session))
    app.router.add_get("/v1/metrics/{session_id}", _wrap(session_metrics))
    app.router.add_post("/v1/simulate", _wrap(simulate))
    app.router.add_get("/openapi.json", openapi)
