"""The data path: every decrypted (or plain-HTTP) request the proxy intercepts goes through the
`intercept` middleware of the simulator app it runs, which decides the mode (`safety`) and then

* simulate: calls the simulator app's own handler (the same pipeline as `llmsim serve`), in-process;
* perturb: asks for the fault and the added latency (`perturbation`), answers a fault that
  replaces the response itself, and otherwise forwards upstream and perturbs the answer (`relay`);
* passthrough: forwards untouched, measuring TTFT/ITL/E2E (`relay`).

Where a request goes is `routing`'s business, what is reported `reporting`'s; each request is one
`Exchange`. Fail open: a broken perturbation passes the request through, a broken simulation
answers with the provider's 500, an unreachable upstream with its 502; nothing hangs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.base_protocol import BaseProtocol
from aiohttp.streams import StreamReader

from llmsim import streaming
from llmsim.api.profile import Mode
from llmsim.providers import errors
from llmsim.providers.base import Answer, ApiError, ErrorKind
from llmsim.proxy import perturbation, relay, safety
from llmsim.proxy.exchange import Exchange
from llmsim.proxy.facts import request_info
from llmsim.proxy.metrics import ProxyMetrics
from llmsim.proxy.redact import redact_url
from llmsim.proxy.reporting import Reporter
from llmsim.proxy.routing import UPSTREAM_HEADER, Router, UpstreamRefused, target
from llmsim.proxy.state import ProxyState
from llmsim.runtime import endpoints, intake
from llmsim.runtime.state import RuntimeState

log = logging.getLogger("llmsim.proxy")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

FAIL_OPEN_HEADER = "x-llmsim-fail-open"
OFFLOAD_BODY_BYTES = 256 * 1024
"""Bodies larger than this are parsed for the request's facts in a worker thread, off the loop
(json.loads of a 30 MB body takes a few hundred milliseconds)."""


class DataPath:
    """The proxy's request handling; `middleware()` goes in front of the simulator app's routes."""

    def __init__(
        self,
        state: ProxyState,
        runtime: RuntimeState,
        metrics: ProxyMetrics,
        router: Router,
        session_factory: Callable[[], aiohttp.ClientSession],
        reporter: Reporter,
    ) -> None:
        self.state = state
        self.runtime = runtime
        self.metrics = metrics
        self.router = router
        self.session_factory = session_factory
        self.reporter = reporter
        self._session: aiohttp.ClientSession | None = None
        self._counter = 0
        self.in_flight = 0
        """Requests inside the data path right now (the GC policy collects only when this is 0)."""
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = self.session_factory()
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        self.reporter.close()

    def middleware(self) -> Any:
        @web.middleware
        async def intercept(request: web.Request, handler: Handler) -> web.StreamResponse:
            self.in_flight += 1
            self._idle.clear()
            try:
                return await self.handle(request, handler)
            finally:
                self.in_flight -= 1
                if self.in_flight == 0:
                    self._idle.set()

        return intercept

    async def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no request is in the data path (at most `timeout_s`); False on timeout."""
        if self.in_flight == 0:
            return True
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def handle(self, request: web.Request, simulate: Handler) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        dest = self.router.destination(request)
        in_scope = dest.base_url_capture or self.state.scope.intercepts(dest.host, dest.port)
        lowered = {k.lower(): v for k, v in request.headers.items()}
        try:
            body, too_large = await request.read(), None
        except web.HTTPRequestEntityTooLarge as exc:
            if not in_scope:
                raise
            body, too_large = b"", ApiError(ErrorKind.TOO_LARGE, f"Request body too large: {exc.text}")
        # the body is parsed only for LLM traffic; what cannot be parsed is simply not understood
        facts = (dest.host, dest.port, request.method, target(request), lowered, body if in_scope else b"")
        if len(facts[-1]) > OFFLOAD_BODY_BYTES:  # a large JSON parse would stall every stream
            info = await asyncio.to_thread(request_info, *facts)
        else:
            info = request_info(*facts)
        self._counter += 1
        profile = self.state.profile
        ex = Exchange(
            request, dest, info, body, endpoints.endpoint_of(request), self._counter,
            started=loop.time(), started_at=time.time(), profile=profile.name,
        )  # fmt: skip
        if not in_scope:
            ex.measure = False
            return await self._forward(ex)
        if too_large is not None:
            return await self._answer(ex, perturbation.render_error(ex, too_large), too_large)
        ex.mode = self.state.mode_override or profile.spec.mode
        try:
            requested = intake.requested_mode(lowered)
            intake.forced_fault(lowered)
            ex.upstream_base = self.router.upstream_override(request, dest, profile.spec, self.state.scope)
        except UpstreamRefused as exc:
            refused = ApiError(ErrorKind.INVALID_REQUEST, str(exc), param=UPSTREAM_HEADER)
            return await self._answer(ex, perturbation.render_error(ex, refused), refused)
        except ApiError as exc:
            return await self._answer(ex, perturbation.render_error(ex, exc), exc)
        decision = safety.decide(
            profile.spec, info, requested=requested, paused=self.state.paused,
            activated_at=self.state.activated_at, now=self.state.clock(),
            fallback_key=f"{os.getpid()}:{self._counter}:{time.monotonic_ns()}",
            default_mode=self.state.mode_override, failsafe=self.state.failsafe is not None,
        )  # fmt: skip
        self.metrics.decisions.labels(decision.mode.value, decision.reason).inc()
        ex.mode = decision.mode
        if decision.mode is Mode.SIMULATE:
            return await self._simulate(ex, simulate)
        if decision.mode is Mode.PERTURB:
            try:
                decided = await perturbation.decide(self.runtime, profile, ex)
            except ApiError as exc:
                return await self._answer(ex, perturbation.render_error(ex, exc), exc)
            except Exception:  # fail open: a broken plan never blocks the request
                log.exception("perturbation plan failed; passing the request through")
                self.metrics.failopen.labels("perturb").inc()
            else:
                ex.plan, ex.generation, ex.extra_headers = decided.plan, decided.generation, decided.headers
                ex.fault = decided.plan.fault
                if decided.substitute is not None:
                    return await self._answer(ex, decided.substitute, decided.error)
        return await self._forward(ex)

    async def _simulate(self, ex: Exchange, handler: Handler) -> web.StreamResponse:
        request = ex.request
        try:
            _rewind(request, ex.body)
            return await handler(request)
        except (web.HTTPException, asyncio.CancelledError):
            raise
        except Exception:
            log.exception("simulation failed for %s %s", request.method, redact_url(request.path_qs))
            self.metrics.failopen.labels("simulate").inc()
            error = errors.internal_error()
            answer = errors.error_answer(ex.info.provider, error, ex.request_id)
            answer = dataclasses.replace(answer, headers={**answer.headers, FAIL_OPEN_HEADER: "1"})
            return await self._answer(ex, answer, error)

    async def _forward(self, ex: Exchange) -> web.StreamResponse:
        try:
            url = self.router.upstream_url(ex.request, ex.destination, ex.info.provider, ex.upstream_base)
            response = await relay.forward(ex, self.session, url)
        except (LookupError, relay.UpstreamUnreachable) as exc:
            if isinstance(exc, relay.UpstreamUnreachable):
                log.warning("%s: %s", redact_url(ex.info.path), exc)
            error = ApiError(ErrorKind.BAD_GATEWAY, str(exc))
            return await self._answer(ex, errors.error_answer(ex.info.provider, error, ex.request_id), error)
        except (streaming.ClientGone, ConnectionError):
            ex.gone = True
            response = web.Response(status=499)
        except asyncio.CancelledError:
            ex.gone = True
            self._report(ex)
            raise
        self._report(ex)
        return response

    async def _answer(
        self, ex: Exchange, answer: Answer, error: ApiError | None = None
    ) -> web.StreamResponse:
        """Answer the client ourselves (a substituted fault, a refused header, a fail-open error)."""
        ex.status, ex.error = answer.status, error
        try:
            response = await streaming.send(ex.request, answer, ex.started, ex.written)
        except (streaming.ClientGone, ConnectionError):
            ex.gone = True
            response = web.Response(status=499)
        self._report(ex)
        return response

    def _report(self, ex: Exchange) -> None:
        if ex.measure:
            self.reporter.report(ex, asyncio.get_running_loop().time())


class _Detached(BaseProtocol):
    """The flow control of a rewound body: none. The body is already in memory, so the reader
    must never pause (or resume) the real connection, whose parser is elsewhere (pausing it from
    here tripped aiohttp's parser for bodies over twice the reader's limit, 131,072 bytes)."""

    def pause_reading(self) -> None:
        pass

    def resume_reading(self, resume_parser: bool = True) -> None:
        pass


def _rewind(request: web.Request, body: bytes) -> None:
    """Make the already-read body readable again for the simulator's pipeline (which streams
    `request.content` to enforce its own size limit). aiohttp has no public API for this."""
    loop = asyncio.get_running_loop()
    reader = StreamReader(_Detached(loop), 2**16, loop=loop)
    if body:
        reader.feed_data(body)
    reader.feed_eof()
    request._payload = reader
