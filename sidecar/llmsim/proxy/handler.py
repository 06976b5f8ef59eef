"""The data path: every decrypted (or plain-HTTP) request the proxy intercepts goes through the
`intercept` middleware, which picks the mode and then

* simulate: calls the simulator app's own handler (the same pipeline as `llmsim serve`), in-process;
* perturb: forwards upstream and perturbs the answer on the way back (pure plan from `perturb`);
* passthrough: forwards untouched, measuring TTFT/ITL/E2E.

The destination comes from the `Host` header and the connection (TLS or not); origin-form requests
to the proxy itself (base-url capture) are routed to the provider that the path names.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import aiohttp
import numpy as np
from aiohttp import web
from aiohttp.streams import StreamReader
from multidict import CIMultiDict

from llmsim.api.faults import FaultType
from llmsim.api.profile import Mode
from llmsim.headers import FAULT as FAULT_HEADER
from llmsim.headers import MODE as MODE_HEADER
from llmsim.headers import parse_mode
from llmsim.providers import catalog
from llmsim.providers.base import ApiError, HttpRequestFacts
from llmsim.proxy import perturb, provider_errors, safety
from llmsim.proxy.facts import RequestInfo, request_info
from llmsim.proxy.metrics import ProxyMetrics
from llmsim.proxy.redact import redact_text, redact_url
from llmsim.proxy.state import ProxyState
from llmsim.runtime import endpoints, fault_hooks, intake, seeding
from llmsim.runtime.state import STATE
from llmsim.simulation.faults import parse_forced
from llmsim.telemetry.facade import trace_carrier
from llmsim.telemetry.prometheus import observe_many
from llmsim.telemetry.records import RecordBuilder

log = logging.getLogger("llmsim.proxy")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

HOP_BY_HOP = frozenset(
    {
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
        "te", "trailer", "trailers", "transfer-encoding", "upgrade", "host", "content-length", "expect",
    }
)  # fmt: skip
UPSTREAM_HEADER = "x-llmsim-upstream"
DEFAULT_UPSTREAMS: dict[str, str] = catalog.default_upstreams()
"""Where base-url capture sends each provider's requests (azure and ollama must be configured)."""
_LOOPBACK_NAMES = frozenset({"localhost", "::1", "ip6-localhost"})
_STREAM_TYPES = ("text/event-stream", "application/x-ndjson", "application/jsonl", "application/stream+json")


@dataclass(frozen=True)
class Destination:
    scheme: str
    host: str
    port: int
    base_url_capture: bool = False


@dataclass
class DataPath:
    """What the middleware needs: state, metrics, the upstream session and its settings."""

    state: ProxyState
    metrics: ProxyMetrics
    session_factory: Callable[[], aiohttp.ClientSession]
    own_addresses: frozenset[str] = frozenset()
    """`host:port` forms of the proxy's own listeners (origin-form requests to them are base-url capture)."""
    upstreams: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_UPSTREAMS))
    observations: TextIO | None = None
    """JSON lines of measured passthrough/perturb timings (input of `llmsim profile fit`)."""
    _session: aiohttp.ClientSession | None = None
    _counter: int = 0
    in_flight: int = 0
    """Requests inside the data path right now (the GC policy collects only when this is 0)."""

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = self.session_factory()
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self.observations is not None:
            self.observations.close()

    # -- routing ---------------------------------------------------------------------------

    def destination(self, request: web.Request) -> Destination:
        secure = request.transport is not None and request.transport.get_extra_info("sslcontext") is not None
        scheme = "https" if secure else "http"
        if request.raw_path.startswith(("http://", "https://")):
            url = request.url
            return Destination(
                url.scheme, (url.host or "").lower(), url.port or (443 if url.scheme == "https" else 80)
            )
        host_header = request.headers.get("Host", "")
        host, _, port_text = host_header.rpartition(":") if _has_port(host_header) else (host_header, "", "")
        port = int(port_text) if port_text.isdigit() else (443 if secure else 80)
        host = host.lower().strip("[]")
        if not secure and self._is_base_url(request, host, port):
            return Destination(scheme, host, port, base_url_capture=True)
        return Destination(scheme, host, port)

    def _is_base_url(self, request: web.Request, host: str, port: int) -> bool:
        """Origin-form plain HTTP addressed to the proxy itself (base-url capture), as opposed to a
        request for another host that merely arrived here (e.g. redirected by iptables)."""
        if request.headers.get(UPSTREAM_HEADER):
            return True
        if f"{host}:{port}" in self.own_addresses:
            return True
        return host in _LOOPBACK_NAMES or host.startswith("127.")

    def upstream_url(self, request: web.Request, dest: Destination, info: RequestInfo) -> str:
        if dest.base_url_capture:
            base = request.headers.get(UPSTREAM_HEADER) or self.upstreams.get(info.provider)
            if not base:
                raise LookupError(
                    f"base-url capture: no upstream known for provider {info.provider!r}; "
                    f"set --upstream {info.provider}=URL or the {UPSTREAM_HEADER} header"
                )
            return base.rstrip("/") + request.raw_path
        default_port = 443 if dest.scheme == "https" else 80
        netloc = dest.host if dest.port == default_port else f"{dest.host}:{dest.port}"
        path = (
            request.raw_path if not request.raw_path.startswith(("http://", "https://")) else request.path_qs
        )
        return f"{dest.scheme}://{netloc}{path}"

    # -- the middleware --------------------------------------------------------------------

    def middleware(self) -> Any:
        @web.middleware
        async def intercept(request: web.Request, handler: Handler) -> web.StreamResponse:
            self.in_flight += 1
            try:
                return await self.handle(request, handler)
            finally:
                self.in_flight -= 1

        return intercept

    async def handle(self, request: web.Request, simulate: Handler) -> web.StreamResponse:
        dest = self.destination(request)
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        info = request_info(
            dest.host,
            dest.port,
            request.method,
            request.raw_path if not request.raw_path.startswith("http") else request.path_qs,
            headers,
            body,
        )
        in_scope = dest.base_url_capture or self.state.scope.intercepts(dest.host, dest.port)
        spec = self.state.profile.spec
        if not in_scope:
            return await self.forward(request, dest, info, body, None, Mode.PASSTHROUGH, measure=False)
        try:
            requested = parse_mode(headers.get(MODE_HEADER))
            forced = parse_forced(headers.get(FAULT_HEADER))
        except ValueError as exc:
            bad = provider_errors.invalid_request(info.provider, str(exc))
            return web.Response(status=bad.status, body=bad.body, headers=bad.headers)
        self._counter += 1
        decision = safety.decide(
            spec, info, requested=requested, paused=self.state.paused,
            activated_at=self.state.activated_at, now=self.state.clock(),
            fallback_key=f"{os.getpid()}:{self._counter}:{time.monotonic_ns()}",
            default_mode=self.state.mode_override,
        )  # fmt: skip
        self.metrics.decisions.labels(decision.mode.value, decision.reason).inc()
        if decision.mode is Mode.SIMULATE:
            return await self.simulate(request, simulate, info, body)
        plan: perturb.PerturbPlan | None = None
        substitute: web.Response | None = None
        extra_headers: dict[str, str] = {}
        if decision.mode is Mode.PERTURB:
            try:
                plan, substitute, extra_headers = await self.perturbation(request, info, body, forced)
            except Exception:  # fail open: a broken plan never blocks the request
                log.exception("perturbation plan failed; passing the request through")
                self.metrics.failopen.labels("perturb").inc()
                plan, substitute, extra_headers = None, None, {}
        if substitute is not None and plan is not None:
            self.metrics.requests.labels(
                "perturb", info.provider, plan.fault.value if plan.fault else "error"
            ).inc()
            await _sleep_until(asyncio.get_running_loop().time() + plan.added_ttft_s)
            return substitute
        return await self.forward(
            request, dest, info, body, plan, decision.mode, measure=True, extra_headers=extra_headers
        )

    async def perturbation(
        self, request: web.Request, info: RequestInfo, body: bytes, forced: FaultType | None
    ) -> tuple[perturb.PerturbPlan, web.Response | None, dict[str, str]]:
        """Added latency (pure plan) and the fault: from the simulator's fault engine and rate limiter
        when the route is one the simulator knows (same decisions and error shapes as simulate), else
        from the profile's rates. Returns (plan, a response replacing the upstream's, extra headers)."""
        spec = self.state.profile.spec
        seed = [spec.seed, self._counter] if spec.seed is not None else [int.from_bytes(os.urandom(8))]
        rng = np.random.default_rng(seed)
        endpoint = endpoints.endpoint_of(request)
        if endpoint is None:
            plan = perturb.plan_perturbation(
                spec, rng, forced=forced, activated_at=self.state.activated_at, now=self.state.clock()
            )
            if plan.fault in perturb.STATUS_FAULTS:
                err = provider_errors.error_response(info.provider, plan.fault, plan.retry_after_s)
                return plan, web.Response(status=err.status, body=err.body, headers=err.headers), {}
            return plan, None, {}
        plan = perturb.plan_perturbation(spec, rng, forced=FaultType.NONE)
        sim_state = request.app[STATE]
        headers = {k.lower(): v for k, v in request.headers.items()}
        facts = HttpRequestFacts(
            request.method, request.path, dict(request.match_info), dict(request.query), headers, body
        )
        try:
            gen = endpoint.parse(facts)
        except ApiError:
            return plan, None, {}  # the real provider answers invalid requests itself
        gen = dataclasses.replace(
            gen,
            api_key_id=intake.api_key_id(facts.headers, facts.query),
            client_request_id=info.request_id,
        )
        try:
            outcome = await fault_hooks.decide(
                sim_state,
                self.state.profile,
                gen,
                asyncio.get_running_loop().time(),
                forced=intake.forced_fault(facts.headers),
                seed=seeding.fault_seed(sim_state, spec, seeding.header_seed(facts)),
            )
        except ApiError as exc:
            answer = endpoint.render_error(exc, facts)
            return plan, web.Response(status=answer.status, headers=answer.headers, body=answer.body), {}
        fault = outcome.fault
        if fault is not None:
            factor = float(fault.detail.get("factor", spec.faults.params.slow_stream_factor))
            plan = dataclasses.replace(
                plan,
                fault=fault.fault,
                after_chunks=fault.after_tokens,
                slow_factor=factor if fault.fault is FaultType.SLOW_STREAM else 1.0,
                timeout_s=float(fault.detail.get("stall_s", plan.timeout_s)),
            )
        if outcome.error is not None:
            answer = endpoint.render_error(outcome.error, facts)
            headers_out = {**answer.headers, "x-llmsim-fault": fault.fault.value if fault else "error"}
            return plan, web.Response(status=answer.status, headers=headers_out, body=answer.body), {}
        return plan, None, dict(outcome.headers)

    async def simulate(
        self, request: web.Request, handler: Handler, info: RequestInfo, body: bytes
    ) -> web.StreamResponse:
        t0 = asyncio.get_running_loop().time()
        try:
            _rewind(request, body)
            response = await handler(request)
        except (web.HTTPException, asyncio.CancelledError):
            raise
        except Exception:
            log.exception("simulation failed for %s %s", request.method, redact_url(request.path_qs))
            self.metrics.failopen.labels("simulate").inc()
            self.metrics.requests.labels("simulate", info.provider, "error").inc()
            return _error(info.provider, FaultType.SERVER_ERROR, extra={"x-llmsim-fail-open": "1"})
        self.metrics.requests.labels(
            "simulate", info.provider, "ok" if response.status < 400 else "error"
        ).inc()
        self.metrics.e2e.labels("simulate", info.provider).observe(asyncio.get_running_loop().time() - t0)
        return response

    # -- forwarding ------------------------------------------------------------------------

    async def forward(
        self,
        request: web.Request,
        dest: Destination,
        info: RequestInfo,
        body: bytes,
        plan: perturb.PerturbPlan | None,
        mode: Mode,
        *,
        measure: bool,
        extra_headers: Mapping[str, str] | None = None,
    ) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        if plan is not None and plan.replaces_response:
            return await self._substitute(request, info, plan, t0)
        try:
            url = self.upstream_url(request, dest, info)
        except LookupError as exc:
            return _error(info.provider, FaultType.SERVER_ERROR, status=502, message=str(exc))
        headers = upstream_headers(request.headers)
        try:
            data = body if body or request.method not in ("GET", "HEAD") else None
            upstream = await self.session.request(
                request.method, url, headers=headers, data=data, allow_redirects=False
            )
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            log.warning("upstream %s unreachable: %s", redact_url(url), redact_text(str(exc)))
            self.metrics.requests.labels(mode.value, info.provider, "error").inc()
            return _error(
                info.provider,
                FaultType.SERVER_ERROR,
                status=502,
                message=f"llmsim proxy: upstream unreachable ({type(exc).__name__})",
            )
        try:
            return await self._relay(request, upstream, info, plan, mode, t0, measure, extra_headers or {})
        finally:
            upstream.release()

    async def _substitute(
        self, request: web.Request, info: RequestInfo, plan: perturb.PerturbPlan, t0: float
    ) -> web.StreamResponse:
        assert plan.fault is not None
        self.metrics.requests.labels("perturb", info.provider, plan.fault.value).inc()
        if plan.fault is FaultType.TIMEOUT:
            await asyncio.sleep(plan.timeout_s)
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=504)
        await _sleep_until(t0 + plan.added_ttft_s)
        err = provider_errors.error_response(info.provider, plan.fault, plan.retry_after_s)
        return web.Response(status=err.status, body=err.body, headers=err.headers)

    async def _relay(
        self,
        request: web.Request,
        upstream: aiohttp.ClientResponse,
        info: RequestInfo,
        plan: perturb.PerturbPlan | None,
        mode: Mode,
        t0: float,
        measure: bool,
        extra_headers: Mapping[str, str],
    ) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
        for key, value in upstream.headers.items():
            if key.lower() not in HOP_BY_HOP and key.lower() not in extra_headers:
                response.headers.add(key, value)
        for key, value in extra_headers.items():
            response.headers[key] = value
        content_type = upstream.headers.get("Content-Type", "").lower()
        encoding = upstream.headers.get("Content-Encoding", "identity").strip().lower()
        # compressed bytes have no visible event boundaries: relay them as they come, unsplit
        streamed = content_type.startswith(_STREAM_TYPES) and encoding in ("", "identity")
        if plan is not None and plan.is_noop:
            plan = None
        alters_body = plan is not None and plan.fault in perturb.STREAM_FAULTS
        if upstream.content_length is not None and not alters_body:
            response.content_length = upstream.content_length
        times: list[float] = []
        if plan is None:
            counter = perturb.EventCounter("ndjson" in content_type) if streamed and measure else None
            await response.prepare(request)
            async for data in upstream.content.iter_any():
                if measure:
                    now = loop.time()
                    n = counter.feed(data) if counter is not None else 1
                    times.extend([now] * n)
                await response.write(data)
            await response.write_eof()
        else:
            await self._perturbed(request, response, upstream, info, plan, streamed, content_type, times)
        if measure:
            self._observe(request, mode, info, upstream.status, t0, times, loop.time(), plan)
        return response

    async def _perturbed(
        self,
        request: web.Request,
        response: web.StreamResponse,
        upstream: aiohttp.ClientResponse,
        info: RequestInfo,
        plan: perturb.PerturbPlan,
        streamed: bool,
        content_type: str,
        times: list[float],
    ) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
        splitter = perturb.FrameSplitter("ndjson" in content_type) if streamed else None

        async def read() -> None:
            try:
                async for data in upstream.content.iter_any():
                    now = loop.time()
                    for piece in splitter.feed(data) if splitter is not None else [data]:
                        queue.put_nowait((now, piece))
                if splitter is not None and (rest := splitter.flush()):
                    queue.put_nowait((loop.time(), rest))
            finally:
                queue.put_nowait(None)

        reader = asyncio.create_task(read())
        first: float | None = None
        k = 0
        prepared = False
        try:
            while (item := await queue.get()) is not None:
                arrival, piece = item
                if first is None:
                    first = arrival
                if streamed and plan.fault in perturb.STREAM_FAULTS and k >= plan.after_chunks:
                    if not prepared:
                        await response.prepare(request)
                    await self._strike(request, response, info, plan.fault)
                    self.metrics.requests.labels(
                        "perturb", info.provider, plan.fault.value if plan.fault else "ok"
                    ).inc()
                    return
                due = plan.deadline(k, arrival, first) if (streamed or k == 0) else arrival
                await _sleep_until(due)
                if not prepared:
                    await response.prepare(request)
                    prepared = True
                await response.write(piece)
                times.append(loop.time())
                k += 1
            if not prepared:
                if first is None:
                    await asyncio.sleep(plan.added_ttft_s)
                await response.prepare(request)
            await response.write_eof()
        finally:
            reader.cancel()

    async def _strike(
        self, request: web.Request, response: web.StreamResponse, info: RequestInfo, fault: FaultType | None
    ) -> None:
        if fault is FaultType.MIDSTREAM_ERROR:
            await response.write(provider_errors.midstream_error_frame(info.provider))
            await response.write_eof()
            return
        if fault is FaultType.MALFORMED_CHUNK:
            await response.write(provider_errors.malformed_frame(info.provider))
        if request.transport is not None:
            request.transport.abort()

    def _observe(
        self,
        request: web.Request,
        mode: Mode,
        info: RequestInfo,
        status: int,
        t0: float,
        times: list[float],
        end: float,
        plan: perturb.PerturbPlan | None,
    ) -> None:
        m, p = mode.value, info.provider
        try:
            self._report(request, mode, info, status, t0, times, end, plan)
        except Exception:  # telemetry never breaks the data path
            log.exception("reporting a forwarded request failed")
        self.metrics.requests.labels(m, p, "ok" if status < 400 else "error").inc()
        self.metrics.e2e.labels(m, p).observe(end - t0)
        if not times:
            return
        self.metrics.ttft.labels(m, p).observe(times[0] - t0)
        gaps = [b - a for a, b in itertools.pairwise(times)]
        observe_many(self.metrics.itl.labels(m, p), gaps)
        if self.observations is not None and status < 400:
            record = {
                "mode": m, "provider": p, "model": info.model, "stream": info.stream,
                "ttftMs": round((times[0] - t0) * 1000, 3), "e2eMs": round((end - t0) * 1000, 3),
                "outputChunks": len(times), "itlMs": [round(g * 1000, 3) for g in gaps],
            }  # fmt: skip
            self.observations.write(json.dumps(record) + "\n")
            self.observations.flush()

    def _report(
        self,
        request: web.Request,
        mode: Mode,
        info: RequestInfo,
        status: int,
        t0: float,
        times: list[float],
        end: float,
        plan: perturb.PerturbPlan | None,
    ) -> None:
        """Hand the measured timings to the simulator's telemetry (same Prometheus metrics and
        traces as simulated requests, labelled with this mode)."""
        sim_state = request.app.get(STATE)
        if sim_state is None:
            return
        endpoint = endpoints.endpoint_of(request)
        fault = plan.fault.value if plan is not None and plan.fault is not None else None
        record = RecordBuilder(
            info.request_id or f"proxy-{self._counter}",
            info.provider,
            endpoint.operation if endpoint is not None else "chat",
            started_at=time.time() - (end - t0),
            mode=mode.value,
        )
        record.model = record.response_model = info.model or ""
        record.profile = self.state.profile.name
        record.stream, record.status = info.stream, status
        record.fault, record.fault_reason = fault, "perturb" if fault else None
        if status >= 400:
            record.fail(_error_kind(status))
        record.output_tokens = len(times) if info.stream else 0
        record.token_times_s = [t - t0 for t in times] if info.stream else []
        if times and not info.stream:
            record.token_times_s = [times[0] - t0]
        record.e2e_s = end - t0
        record.carrier = trace_carrier(request.headers)
        sim_state.report(record.build())


def _error_kind(status: int) -> str:
    return {400: "invalid_request", 401: "authentication", 403: "permission", 404: "not_found",
            413: "too_large", 429: "rate_limit", 503: "overloaded", 529: "overloaded"}.get(
        status, "server_error" if status >= 500 else "invalid_request")  # fmt: skip


def _rewind(request: web.Request, body: bytes) -> None:
    """Make the already-read body readable again for the simulator's pipeline (which streams
    `request.content` to enforce its own size limit). aiohttp has no public API for this."""
    reader = StreamReader(request._protocol, 2**16, loop=asyncio.get_running_loop())
    if body:
        reader.feed_data(body)
    reader.feed_eof()
    request._payload = reader


def _has_port(host_header: str) -> bool:
    if host_header.startswith("["):
        return "]:" in host_header
    return host_header.count(":") == 1


def upstream_headers(headers: Mapping[str, str]) -> CIMultiDict[str]:
    """Request headers as they go upstream: no hop-by-hop headers, no `x-llmsim-*`, no mode header."""
    out: CIMultiDict[str] = CIMultiDict()
    for key, value in headers.items():
        low = key.lower()
        if low in HOP_BY_HOP or low.startswith("x-llmsim-") or low == MODE_HEADER:
            continue
        out.add(key, value)
    return out


def _error(
    provider: str,
    fault: FaultType,
    *,
    status: int | None = None,
    message: str | None = None,
    extra: dict[str, str] | None = None,
) -> web.Response:
    err = provider_errors.error_response(provider, fault, message=message)
    headers = {**err.headers, **(extra or {})}
    if status is not None and provider == "gemini":
        body = json.loads(err.body)
        body["error"]["code"] = status
        return web.Response(status=status, body=json.dumps(body).encode(), headers=headers)
    return web.Response(status=status or err.status, body=err.body, headers=headers)


async def _sleep_until(deadline: float) -> None:
    delay = deadline - asyncio.get_running_loop().time()
    if delay > 0:
        await asyncio.sleep(delay)


def open_observations(path: Path | None) -> TextIO | None:
    """Append-mode JSONL file for measured timings (None: do not record)."""
    return None if path is None else path.open("a", encoding="utf-8")
