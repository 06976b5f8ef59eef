"""`GET /v1/models[/{id}]`: OpenAI's model list, or Gemini's when the credentials are Gemini's.

DESIGN.md: where two providers share a path, the request's credentials decide
(`x-goog-api-key` or `key=` means Gemini; `Authorization: Bearer` means OpenAI); see
`providers.catalog.classify`, which also knows Anthropic's `anthropic-version`/`x-api-key` and a
provider's own host (the proxy simulating `api.anthropic.com`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from fnmatch import fnmatchcase
from typing import Any

from aiohttp import web

from llmsim.providers import anthropic, catalog, gemini, ollama, openai_common
from llmsim.providers.base import ApiError, ErrorKind, decode_json, json_body
from llmsim.runtime.intake import new_request_id
from llmsim.runtime.state import STATE
from llmsim.telemetry.records import RequestRecord

GeminiLister = Callable[[list[str], str | None], tuple[int, dict[str, Any]]]
"""(listed model names, model id or None) -> (status, body) in Gemini's shape."""

gemini_lister: GeminiLister | None = gemini.list_models
"""Answers Gemini-credentialed list calls (the Gemini provider's model list)."""


def _openai_model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 1700000000, "owned_by": "llmsim"}


async def list_models(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    listed = list(state.registry.default.spec.models.listed)
    model_id = request.match_info.get("model_id")
    provider = catalog.classify(request.path, request.headers, request.query, request.host)
    if provider == "gemini" and gemini_lister is not None:
        status, body = gemini_lister(listed, model_id)
        return web.Response(status=status, body=json_body(body), content_type="application/json")
    if provider == "anthropic":
        strict = state.registry.default.spec.models.strict
        status, body = anthropic.list_models(listed, model_id, strict=strict)
        return web.Response(status=status, body=json_body(body), content_type="application/json")
    request_id = "req_" + new_request_id()
    headers = {"x-request-id": request_id}
    if model_id is None:
        listing: dict[str, Any] = {"object": "list", "data": [_openai_model(m) for m in listed]}
        return web.Response(body=json_body(listing), content_type="application/json", headers=headers)
    if model_id in listed or not state.registry.default.spec.models.strict:
        return web.Response(
            body=json_body(_openai_model(model_id)), content_type="application/json", headers=headers
        )
    error = ApiError(ErrorKind.NOT_FOUND, f"The model '{model_id}' does not exist", param="model")
    answer = openai_common.error_answer(error, request_id)
    return web.Response(status=answer.status, body=answer.body, headers=answer.headers)


async def gemini_models(request: web.Request) -> web.StreamResponse:
    """`GET /{v1beta,v1alpha}/models[/{model_id}]`: only Gemini lives under these prefixes."""
    spec = request.app[STATE].registry.default.spec
    status, body = gemini.list_models(
        list(spec.models.listed), request.match_info.get("model_id"), strict=spec.models.strict
    )
    return web.Response(status=status, body=json_body(body), content_type="application/json")


async def ollama_tags(request: web.Request) -> web.StreamResponse:
    """`GET /api/tags`: the profile's listed models as Ollama's local models."""
    listed = list(request.app[STATE].registry.default.spec.models.listed)
    return web.Response(body=json_body(ollama.tags_body(listed, 1700000000)), content_type="application/json")


class LoadedModels:
    """Which models Ollama would have loaded: each one served by an Ollama route in the last
    `ollama.KEEP_ALIVE_S` seconds (a RequestRecord observer)."""

    def __init__(self) -> None:
        self.expires: dict[str, float] = {}

    def observe(self, record: RequestRecord) -> None:
        if record.provider == ollama.PROVIDER and record.model and record.outcome == "ok":
            self.expires[record.model] = record.started_at + record.e2e_s + ollama.KEEP_ALIVE_S


LOADED: web.AppKey[LoadedModels] = web.AppKey("llmsim_ollama_loaded", LoadedModels)


async def ollama_ps(request: web.Request) -> web.StreamResponse:
    """`GET /api/ps`: the models used through the Ollama routes within the keep-alive time."""
    window = request.app[STATE].registry.default.spec.models.context_window
    body = ollama.ps_body(request.app[LOADED].expires, time.time(), window)
    return web.Response(body=json_body(body), content_type="application/json")


async def ollama_version(request: web.Request) -> web.StreamResponse:
    """`GET /api/version`."""
    return web.Response(body=json_body({"version": ollama.VERSION}), content_type="application/json")


async def ollama_show(request: web.Request) -> web.StreamResponse:
    """`POST /api/show` with `{"model": ...}`: 404 in Ollama's shape for models the profile rejects."""
    try:
        doc = decode_json(await request.read())
    except ApiError as exc:
        answer = ollama.error_answer(exc)
        return web.Response(status=answer.status, body=answer.body, headers=answer.headers)
    model = doc.get("model") if isinstance(doc, dict) else None
    if not isinstance(model, str) or not model:
        answer = ollama.error_answer(ApiError(ErrorKind.INVALID_REQUEST, "model is required"))
        return web.Response(status=answer.status, body=answer.body, headers=answer.headers)
    spec = request.app[STATE].registry.default.spec
    if spec.models.strict and not any(fnmatchcase(model, pattern) for pattern in spec.models.allow):
        answer = ollama.error_answer(ApiError(ErrorKind.NOT_FOUND, ollama.not_found_message(model)))
        return web.Response(status=answer.status, body=answer.body, headers=answer.headers)
    return web.Response(body=json_body(ollama.show_body(model, 1700000000)), content_type="application/json")
