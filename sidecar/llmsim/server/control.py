"""The control API: sessions, offline simulation, per-session metrics and the OpenAPI document.

This module holds the sessions and what every control route shares (errors, body parsing, profile
references); `simulate_api.py` serves `POST /v1/simulate`, `openapi.py` the document, and the app
factory registers them all.

* `POST /v1/sessions` -> 201 with the new session's id (send it as `x-llmsim-session`).
* `DELETE /v1/sessions/{session_id}` -> completes the session and returns its final metrics.
* `GET /v1/metrics/{session_id}` -> the session's metrics.
* `POST /v1/simulate` -> simulated responses with their timing, computed by the pure planner.
* `GET /openapi.json` -> OpenAPI 3.1 document of these routes, generated from the pydantic models.

Errors use the provider routes' JSON shape: `{"error": {"message", "type", "param", "code"}}`.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError

from llmsim.errors import describe_validation_error
from llmsim.profiles import NamedProfile
from llmsim.providers import json_input
from llmsim.runtime.state import STATE
from llmsim.server import control_models as cm
from llmsim.server.observability import TELEMETRY
from llmsim.telemetry.sessions import SessionError


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


async def parse_body[M: BaseModel](request: web.Request, model: type[M]) -> M:
    raw = await request.read()
    try:
        doc = json_input.decode(raw) if raw.strip() else {}
    except json_input.JsonInputError as exc:
        raise ControlError(
            413 if exc.too_large else 400,
            exc.message,
            code="request_too_large" if exc.too_large else "invalid_json",
        ) from None
    if not isinstance(doc, dict):
        raise ControlError(400, "The request body must be a JSON object.", code="invalid_json")
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        problems = describe_validation_error(exc)
        param = problems[0].split(":", 1)[0] if problems else None
        raise ControlError(400, "; ".join(problems), code="invalid_body", param=param) from None


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def wrap(handler: Handler) -> Handler:
    """Turn ControlError into the JSON error response."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ControlError as exc:
            return error_response(exc.status, exc.message, code=exc.code, param=exc.param)

    return wrapped


def resolve_profile(request: web.Request, ref: str | Any | None, param: str = "profile") -> NamedProfile:
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
    body = await parse_body(request, cm.CreateSession)
    profile = resolve_profile(request, body.profile) if body.profile is not None else None
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
