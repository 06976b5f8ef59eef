"""Glue between the serving app and `llmsim.telemetry`: `/metrics`, the request observer, the
active-streams middleware, session profiles and the telemetry lifetime.

The pipeline (and the proxy's data path) report each finished request as a
`telemetry.records.RequestRecord`, which the observer hands to `Telemetry.observe`. Nothing here
can fail a request: the observer runs inside `RuntimeState.report`, which swallows errors, and the
facade swallows its own.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from llmsim.headers import PROFILE as PROFILE_HEADER
from llmsim.headers import SESSION as SESSION_HEADER
from llmsim.profiles import NamedProfile
from llmsim.runtime import endpoints
from llmsim.telemetry import labels
from llmsim.telemetry.facade import Telemetry
from llmsim.telemetry.profile_gauges import ActiveProfile, ProfileCollector
from llmsim.telemetry.records import RequestRecord

if TYPE_CHECKING:
    from llmsim.runtime.state import RuntimeState

TELEMETRY: web.AppKey[Telemetry] = web.AppKey("llmsim_telemetry", Telemetry)

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def session_profile(app: web.Application, headers: Mapping[str, str]) -> NamedProfile | None:
    """The profile of the request's session, when it has one and no `x-llmsim-profile` overrides it."""
    session_id = headers.get(SESSION_HEADER)
    if not session_id or headers.get(PROFILE_HEADER):
        return None
    telemetry = app.get(TELEMETRY)
    session = telemetry.sessions.get(session_id) if telemetry is not None else None
    if session is None or session.spec is None:
        return None
    return NamedProfile(
        name=session.profile_name or "inline", spec=session.spec, source=f"session:{session_id}"
    )


async def metrics(request: web.Request) -> web.Response:
    """`GET /metrics`: the Prometheus text exposition."""
    body, content_type = request.app[TELEMETRY].prometheus.render()
    return web.Response(body=body, headers={"Content-Type": content_type})


@web.middleware
async def active_streams(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Count provider requests in flight (`llmsim_active_streams`, the session's active count)."""
    telemetry = request.app.get(TELEMETRY)
    endpoint = endpoints.endpoint_of(request) if telemetry is not None else None
    if telemetry is None or endpoint is None:
        return await handler(request)
    gauge = None
    session_id = request.headers.get(SESSION_HEADER)
    try:
        gauge = telemetry.prometheus.active_series(labels.provider_label(endpoint.provider), "simulate")
        gauge.inc()
        if session_id:
            telemetry.sessions.started(session_id)
    except Exception:
        gauge = None
    try:
        return await handler(request)
    finally:
        if gauge is not None:
            gauge.dec()
            if session_id:
                telemetry.sessions.ended(session_id)


class RateLimiterCollector:
    """Exposes the shared rate-limit store's health at scrape time: whether it is falling back to
    per-pod buckets because Redis is unreachable, and how many checks it served that way."""

    def __init__(self, limiter: Callable[[], Any]) -> None:
        self._limiter = limiter

    def collect(self) -> Iterator[Metric]:
        limiter = self._limiter()
        degraded = GaugeMetricFamily(
            "llmsim_ratelimit_shared_degraded",
            "1 while a scope: shared rate limit falls back to per-pod buckets (Redis unreachable).",
        )
        degraded.add_metric([], 1.0 if limiter is not None and limiter.degraded else 0.0)
        fallbacks = CounterMetricFamily(
            "llmsim_ratelimit_fallbacks",
            "Rate-limit checks served from per-pod buckets because Redis was unreachable.",
        )
        fallbacks.add_metric([], float(limiter.fallbacks if limiter is not None else 0))
        yield degraded
        yield fallbacks


def active_profile(state: RuntimeState) -> ActiveProfile:
    """The profile requests without `x-llmsim-profile` get, and how long it has been active."""
    profile = state.registry.default
    start = state.activated_at.get(profile.name)  # loop time, which is time.monotonic()
    elapsed = None if start is None else time.monotonic() - start
    return ActiveProfile(profile.name, profile.spec, elapsed, state.wall_clock())


def install(
    app: web.Application,
    state_finished: list[Callable[[RequestRecord], None]],
    telemetry: Telemetry,
    rate_limiter: Any = None,
    profile: Callable[[], ActiveProfile | None] | None = None,
) -> None:
    """Attach telemetry to an app: `/metrics`, the observer, the middleware and the lifetime.
    `profile` feeds the `llmsim_profile_*` gauges (configured latency, fault rates, windows)."""
    app[TELEMETRY] = telemetry
    app.middlewares.append(active_streams)
    if rate_limiter is not None:
        telemetry.prometheus.register_collector(RateLimiterCollector(lambda: rate_limiter))
    if profile is not None:
        telemetry.prometheus.register_collector(ProfileCollector(profile))
    state_finished.append(telemetry.observe)
    app.router.add_get("/metrics", metrics)

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        await telemetry.start()
        yield
        await telemetry.aclose()

    app.cleanup_ctx.append(lifetime)
