"""`GET /openapi.json`: the OpenAPI 3.1 document of the control API, generated from its pydantic
models (JSON Schema 2020-12)."""

from __future__ import annotations

import functools
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from llmsim import __version__
from llmsim.server import control_models as cm
from llmsim.telemetry.sessions import SESSION_ID_PATTERN, SessionMetrics


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
