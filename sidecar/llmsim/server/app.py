"""The aiohttp application factory of `llmsim serve` (also embedded by the proxy)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from llmsim import streaming
from llmsim.profiles import ProfileRegistry, default_profile
from llmsim.providers import catalog, errors
from llmsim.providers.base import ApiError, BodyAnswer, ErrorKind
from llmsim.runtime import endpoints
from llmsim.runtime.state import STATE, RuntimeSettings, RuntimeState
from llmsim.server import control, models_route, observability, openapi, routes, simulate_api
from llmsim.server.pipeline import Pipeline
from llmsim.telemetry.facade import Telemetry


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if not state.ready:
        return web.json_response({"status": "not ready"}, status=503)
    return web.json_response(
        {"status": "ready", "profiles": state.registry.names(), "default": state.registry.default_name}
    )


@web.middleware
async def unknown_route(request: web.Request, handler: Any) -> web.StreamResponse:
    """Unmatched paths and methods get an OpenAI-shaped JSON error instead of aiohttp's text page."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except web.HTTPNotFound:
        error = ApiError(ErrorKind.NOT_FOUND, f"Invalid URL ({request.method} {request.path})")
    except web.HTTPMethodNotAllowed as exc:
        error = ApiError(
            ErrorKind.METHOD_NOT_ALLOWED,
            f"Method {request.method} is not allowed on {request.path}; use {', '.join(sorted(exc.allowed_methods))}.",
        )
    answer = _unrouted_answer(request, error)
    return web.Response(status=answer.status, body=answer.body, headers=answer.headers)


def _unrouted_answer(request: web.Request, error: ApiError) -> BodyAnswer:
    """The error in the shape of the provider whose path (or credentials) the request uses."""
    provider = catalog.classify(request.path, request.headers, request.query)
    return errors.error_answer(provider, error)


def create_app(
    registry: ProfileRegistry | None = None,
    settings: RuntimeSettings | None = None,
    telemetry: Telemetry | None = None,
    *,
    state: RuntimeState | None = None,
) -> web.Application:
    """Build the simulator app: every provider route, health and readiness, the control API and
    `/metrics`. `telemetry` defaults to one configured from the environment (`OTEL_*`, `LLMSIM_*`);
    `state` to a new RuntimeState over `registry` (the proxy passes the one its data path shares)."""
    if state is None:
        state = RuntimeState(registry or ProfileRegistry(default_profile()), settings)
    app = web.Application(middlewares=[unknown_route], client_max_size=state.settings.max_body_bytes + 1)
    app[STATE] = state

    async def close_runtime(app: web.Application) -> None:
        app[STATE].parser.close()
        await app[STATE].rate_limiter.close()

    app.on_cleanup.append(close_runtime)
    streaming.install_release(app)
    for route in routes.all_routes():
        endpoints.bind(app, route.method, route.path, route.endpoint, Pipeline(route.endpoint).handle)
    app.router.add_get("/v1/models", models_route.list_models)
    app.router.add_get("/v1/models/{model_id}", models_route.list_models)
    app.router.add_get("/{version:v1beta|v1alpha}/models", models_route.gemini_models)
    app.router.add_get("/{version:v1beta|v1alpha}/models/{model_id:[^/:]+}", models_route.gemini_models)
    app.router.add_get("/api/tags", models_route.ollama_tags)
    app.router.add_get("/api/version", models_route.ollama_version)
    app[models_route.LOADED] = models_route.LoadedModels()
    state.finished.append(app[models_route.LOADED].observe)
    app.router.add_get("/api/ps", models_route.ollama_ps)
    app.router.add_post("/api/show", models_route.ollama_show)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    observability.install(
        app,
        state.finished,
        telemetry or Telemetry.for_registry(state.registry),
        state.rate_limiter,
        profile=lambda: observability.active_profile(state),
    )
    app.router.add_post("/v1/sessions", control.wrap(control.create_session))
    app.router.add_delete("/v1/sessions/{session_id}", control.wrap(control.complete_session))
    app.router.add_get("/v1/metrics/{session_id}", control.wrap(control.session_metrics))
    app.router.add_post("/v1/simulate", control.wrap(simulate_api.simulate))
    app.router.add_get("/openapi.json", openapi.openapi)
    return app
