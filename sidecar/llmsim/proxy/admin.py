"""The admin server (`--admin`, default 127.0.0.1:15090): health, readiness, metrics (open), and
the kill switch (`POST /pause`, `/resume`, `/reset`: bearer token only, see `admin_auth.py`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from llmsim.proxy.admin_auth import AdminToken, unauthorized
from llmsim.proxy.audit import ControlAudit
from llmsim.proxy.metrics import ProxyMetrics
from llmsim.proxy.state import ProxyState

STATE: web.AppKey[ProxyState] = web.AppKey("proxy_state", ProxyState)
EXTRA_METRICS: web.AppKey[Callable[[], bytes]] = web.AppKey("proxy_extra_metrics")
METRICS: web.AppKey[ProxyMetrics] = web.AppKey("proxy_metrics", ProxyMetrics)
TOKEN: web.AppKey[AdminToken] = web.AppKey("proxy_admin_token", AdminToken)
AUDIT: web.AppKey[ControlAudit] = web.AppKey("proxy_audit", ControlAudit)


def _caller(request: web.Request) -> str:
    """Who called (as far as the admin port can tell: the token's holder, from this peer)."""
    agent = request.headers.get("User-Agent", "")
    return f"admin token holder at {request.remote}" + (f" ({agent[:80]})" if agent else "")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def authenticated(handler: Handler) -> Handler:
    """Answer 401 (JSON) unless the request carries the admin token."""

    async def checked(request: web.Request) -> web.StreamResponse:
        refusal = request.app[TOKEN].refusal(request.headers.get("Authorization"))
        if refusal is not None:
            request.app[METRICS].admin_refusals.labels(refusal[0]).inc()
            return unauthorized(*refusal)
        return await handler(request)

    return checked


def _status(state: ProxyState) -> dict[str, object]:
    spec = state.profile.spec
    return {
        "profile": state.profile.name,
        "source": state.profile.source,
        "generation": state.generation,
        "mode": spec.mode.value,
        "paused": state.paused or spec.paused,
        "failsafe": state.failsafe,
        "watching": state.api_authoritative,
        "activatedAt": state.activated_at.isoformat(),
    }


async def healthz(request: web.Request) -> web.Response:
    """200 while the proxy runs (liveness): it fails open, so it is healthy even when paused."""
    return web.json_response({"status": "ok", **_status(request.app[STATE])})


async def readyz(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if not state.ready:
        return web.json_response({"status": "starting"}, status=503)
    return web.json_response({"status": "ready", **_status(state)})


async def metrics(request: web.Request) -> web.Response:
    registry = request.app[METRICS]
    registry.paused.set(1 if request.app[STATE].paused else 0)
    body = generate_latest(registry.registry)
    extra = request.app.get(EXTRA_METRICS)
    if extra is not None:
        body += extra()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def pause(request: web.Request) -> web.Response:
    request.app[STATE].pause()
    request.app[AUDIT].record("paused", "admin-api", _caller(request), "POST /pause")
    return web.json_response({"status": "paused", **_status(request.app[STATE])})


async def resume(request: web.Request) -> web.Response:
    request.app[STATE].resume()
    request.app[AUDIT].record("resumed", "admin-api", _caller(request), "POST /resume")
    return web.json_response({"status": "resumed", **_status(request.app[STATE])})


async def reset(request: web.Request) -> web.Response:
    request.app[STATE].reset()
    request.app[AUDIT].record("reset", "admin-api", _caller(request), "POST /reset")
    return web.json_response({"status": "reset", **_status(request.app[STATE])})


def create_admin_app(
    state: ProxyState,
    proxy_metrics: ProxyMetrics,
    token: AdminToken,
    extra_metrics: Callable[[], bytes] | None = None,
    audit: ControlAudit | None = None,
) -> web.Application:
    """`token`: what the control routes require; `extra_metrics`: more text exposition appended
    to /metrics (the simulator's telemetry)."""
    app = web.Application()
    app[STATE] = state
    app[METRICS] = proxy_metrics
    app[TOKEN] = token
    app[AUDIT] = audit or ControlAudit(state, proxy_metrics)
    if extra_metrics is not None:
        app[EXTRA_METRICS] = extra_metrics
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/pause", authenticated(pause))
    app.router.add_post("/resume", authenticated(resume))
    app.router.add_post("/reset", authenticated(reset))
    return app
