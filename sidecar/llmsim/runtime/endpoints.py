"""The one route -> endpoint lookup.

The app factory binds each provider route with `bind`, which remembers the endpoint serving it;
`endpoint_of` answers for a request whose route aiohttp has resolved (in a handler or in a
middleware of the same app), so the simulator's telemetry middleware and the proxy's data path
find the endpoint the same way, without introspecting bound handlers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from llmsim.providers.base import Endpoint

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ENDPOINTS: web.AppKey[dict[web.AbstractRoute, Endpoint]] = web.AppKey("llmsim_endpoints", dict)


def bind(app: web.Application, method: str, path: str, endpoint: Endpoint, handler: Handler) -> None:
    """Add the route `method path` served by `handler`, and remember that `endpoint` serves it."""
    route = app.router.add_route(method, path, handler)
    app.setdefault(ENDPOINTS, {})[route] = endpoint


def endpoint_of(request: web.Request) -> Endpoint | None:
    """The endpoint the request's route serves (None for other routes and unmatched paths)."""
    table = request.app.get(ENDPOINTS)
    if table is None:
        return None
    return table.get(request.match_info.route)
