"""What keeps the worker processes of `llmsim serve --workers N` one simulator to their users.

The kernel spreads connections over the workers (SO_REUSEPORT), so any request may land on any
worker. Each worker also listens on a private Unix socket in the run directory the supervisor
made (`worker-<i>.sock`, a 0700 directory) and answers its siblings there:

* **fault decisions** (`POST /fault-clock`): worker 0 keeps the attempt counters and the time
  each profile became active, so fail-first, per-attempt fault rates and fault windows decide
  exactly as one process would for the same requests (the seed is the supervisor's, shared);
  asked only for profiles whose faults read them;
* **rate limits** (`POST /ratelimit`): worker 0 keeps the `scope: pod` buckets; `scope: shared`
  buckets are in Redis already and every worker goes there directly;
* **sessions** (`POST /sessions`, `POST /sessions/{id}/complete`, `GET /sessions/{id}`): a session
  created (or completed) on one worker is created (completed) on every worker before the answer
  goes out; each worker aggregates the requests it served, and `GET /v1/metrics/{id}` (and the
  answer to `DELETE /v1/sessions/{id}`) merges every worker's part.

`/metrics` is aggregated by prometheus-client's multiprocess mode instead (see
`telemetry.prometheus.PromMetrics.render`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import time
from array import array
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from llmsim.api.faults import RateLimits
from llmsim.api.profile import SimulationProfileSpec
from llmsim.runtime.ratelimit_store import RateLimiter
from llmsim.runtime.state import STATE, RuntimeState
from llmsim.server import control_models as cm
from llmsim.server.observability import TELEMETRY
from llmsim.simulation import ratelimit
from llmsim.telemetry import labels
from llmsim.telemetry.sessions import Session, SessionError, SessionStats

log = logging.getLogger("llmsim.workers")

WORKER_INDEX_ENV = "LLMSIM_WORKER_INDEX"
WORKER_COUNT_ENV = "LLMSIM_WORKER_COUNT"
WORKER_DIR_ENV = "LLMSIM_WORKER_DIR"
PROCESS_SEED_ENV = "LLMSIM_PROCESS_SEED"
"""Set by the supervisor for its workers (internal: not a user setting)."""

PEER_TIMEOUT_S = 10.0
"""Longest wait for a sibling's answer (they share the machine; a stuck one is a failed worker)."""


@dataclass(frozen=True)
class WorkerContext:
    """Which worker this process is, of how many, and the run directory they share."""

    index: int
    count: int
    directory: Path

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WorkerContext | None:
        env = os.environ if env is None else env
        if WORKER_DIR_ENV not in env:
            return None
        return cls(int(env[WORKER_INDEX_ENV]), int(env[WORKER_COUNT_ENV]), Path(env[WORKER_DIR_ENV]))

    def socket_path(self, index: int) -> Path:
        return self.directory / f"worker-{index}.sock"

    def ready_path(self, index: int) -> Path:
        return self.directory / f"ready-{index}"

    @property
    def others(self) -> list[int]:
        return [i for i in range(self.count) if i != self.index]


class Peers:
    """HTTP over the siblings' Unix sockets (one keep-alive client per sibling)."""

    def __init__(self, ctx: WorkerContext) -> None:
        self.ctx = ctx
        self._clients: dict[int, aiohttp.ClientSession] = {}

    def _client(self, index: int) -> aiohttp.ClientSession:
        client = self._clients.get(index)
        if client is None or client.closed:
            connector = aiohttp.UnixConnector(path=str(self.ctx.socket_path(index)))
            client = self._clients[index] = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=PEER_TIMEOUT_S)
            )
        return client

    async def call(self, index: int, method: str, path: str, body: Any = None) -> Any:
        """The JSON answer of worker `index` (None for a 404)."""
        async with self._client(index).request(method, "http://worker" + path, json=body) as response:
            if response.status == 404:
                return None
            response.raise_for_status()
            return await response.json()

    async def each_other(self, method: str, path: str, body: Any = None) -> list[Any]:
        """The answers of every other worker, asked at once."""
        return list(await asyncio.gather(*(self.call(i, method, path, body) for i in self.ctx.others)))

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()


# -- fault decisions and rate limits: worker 0 decides -------------------------------------------


class FaultClockClient:
    """`RuntimeState.coordinator` of workers other than 0: worker 0 counts attempts and activations."""

    def __init__(self, peers: Peers) -> None:
        self._peers = peers

    async def fault_clock(self, name: str, key: str, now: float) -> tuple[float, int]:
        answer = await self._peers.call(0, "POST", "/fault-clock", {"name": name, "key": key, "now": now})
        return float(answer["elapsed"]), int(answer["attempt"])


class CoordinatedRateLimiter(RateLimiter):
    """Worker N > 0's rate limiter: `scope: pod` buckets are worker 0's, shared ones Redis's."""

    def __init__(self, peers: Peers) -> None:
        super().__init__()
        self._peers = peers

    async def check(
        self, spec: RateLimits, key: str, cost: int, *, namespace: str = "default"
    ) -> ratelimit.Verdict:
        if spec.scope == "shared":
            return await super().check(spec, key, cost, namespace=namespace)
        body = {
            "spec": spec.model_dump(mode="json", by_alias=True),
            "key": key,
            "cost": cost,
            "namespace": namespace,
        }
        answer = await self._peers.call(0, "POST", "/ratelimit", body)
        return ratelimit.Verdict(**answer)


# -- sessions: replicated on creation, merged on reading -----------------------------------------


def session_part(session: Session) -> dict[str, Any]:
    """One worker's part of a session (what `merge` combines)."""
    s = session.stats
    return {
        "id": session.id,
        "profile": session.profile_name,
        "labels": session.labels,
        "createdAt": session.created_at,
        "completedAt": session.completed_at,
        "maxSamples": s.max_samples,
        "requests": s.requests,
        "active": s.active,
        "outcomes": dict(s.outcomes),
        "faults": dict(s.faults),
        "inputTokens": s.input_tokens,
        "outputTokens": s.output_tokens,
        "firstStart": s.first_start,
        "lastEnd": s.last_end,
        **{f"{name}Values": list(getattr(s, name).values) for name in ("ttft", "itl", "e2e")},
        **{f"{name}Seen": getattr(s, name).seen for name in ("ttft", "itl", "e2e")},
    }


def merge(parts: list[dict[str, Any]]) -> Session:
    """One session from every worker's part: counts added, extremes kept, latency samples pooled
    (exact percentiles while each worker holds all of its samples, `maxSamples` per latency)."""
    first = min(parts, key=lambda p: p["createdAt"])
    stats = SessionStats(max(p["maxSamples"] for p in parts))
    for p in parts:
        stats.requests += p["requests"]
        stats.active += p["active"]
        stats.outcomes += Counter(p["outcomes"])
        stats.faults += Counter(p["faults"])
        stats.input_tokens += p["inputTokens"]
        stats.output_tokens += p["outputTokens"]
        for name in ("ttft", "itl", "e2e"):
            reservoir = getattr(stats, name)
            reservoir.values.extend(array("d", p[f"{name}Values"]))
            reservoir.seen += p[f"{name}Seen"]
    starts = [p["firstStart"] for p in parts if p["firstStart"] is not None]
    ends = [p["lastEnd"] for p in parts if p["lastEnd"] is not None]
    stats.first_start = min(starts) if starts else None
    stats.last_end = max(ends) if ends else None
    completed = [p["completedAt"] for p in parts if p["completedAt"] is not None]
    return Session(
        id=first["id"],
        profile_name=first["profile"],
        spec=None,
        labels=dict(first["labels"]),
        created_at=first["createdAt"],
        stats=stats,
        completed_at=min(completed) if completed else None,
    )


def internal_app(state: RuntimeState, telemetry_of: Callable[[], Any]) -> web.Application:
    """What a worker answers its siblings on its Unix socket."""
    app = web.Application()

    async def fault_clock(request: web.Request) -> web.Response:
        body = await request.json()
        elapsed, attempt = state.local_fault_clock(body["name"], body["key"], float(body["now"]))
        return web.json_response({"elapsed": elapsed, "attempt": attempt})

    async def rate_limit(request: web.Request) -> web.Response:
        body = await request.json()
        spec = RateLimits.model_validate(body["spec"])
        verdict = await state.rate_limiter.check(
            spec, body["key"], int(body["cost"]), namespace=body["namespace"]
        )
        return web.json_response(dataclasses.asdict(verdict))

    async def create_replica(request: web.Request) -> web.Response:
        body = await request.json()
        telemetry = telemetry_of()
        spec = SimulationProfileSpec.model_validate(body["spec"]) if body["spec"] is not None else None
        try:
            session = telemetry.sessions.create(body["profile"], spec, body["labels"], body["id"])
        except SessionError:  # this worker met a request of the session first (an implicit session)
            session = telemetry.sessions.get(body["id"])
            if session is None:
                raise
            session.profile_name, session.spec, session.labels = body["profile"], spec, dict(body["labels"])
        session.created_at = body["createdAt"]
        if spec is not None:
            telemetry.models.add_known(labels.known_models([spec]))
        return web.json_response({"id": session.id})

    async def complete(request: web.Request) -> web.Response:
        telemetry = telemetry_of()
        sid = request.match_info["session_id"]
        if telemetry.complete_session(sid) is None:
            raise web.HTTPNotFound()
        session = telemetry.sessions.get(sid)
        return web.json_response(session_part(session))

    async def part(request: web.Request) -> web.Response:
        session = telemetry_of().sessions.get(request.match_info["session_id"])
        if session is None:
            raise web.HTTPNotFound()
        return web.json_response(session_part(session))

    app.router.add_post("/fault-clock", fault_clock)
    app.router.add_post("/ratelimit", rate_limit)
    app.router.add_post("/sessions", create_replica)
    app.router.add_post("/sessions/{session_id}/complete", complete)
    app.router.add_get("/sessions/{session_id}", part)
    return app


_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def control_across_workers(peers: Peers) -> Any:
    """The middleware that makes the session routes of the control API span every worker."""

    @web.middleware
    async def middleware(request: web.Request, handler: _Handler) -> web.StreamResponse:
        path, method = request.path, request.method
        if method == "POST" and path == "/v1/sessions":
            response = await handler(request)
            if response.status == 201 and isinstance(response, web.Response) and response.text:
                await _replicate(
                    request, peers, cm.SessionCreated.model_validate_json(response.text).session_id
                )
            return response
        sid = request.match_info.get("session_id")
        if sid is None or not (
            (method == "DELETE" and path.startswith("/v1/sessions/"))
            or (method == "GET" and path.startswith("/v1/metrics/"))
        ):
            return await handler(request)
        completing = method == "DELETE"
        theirs = await peers.each_other("POST" if completing else "GET",
                                        f"/sessions/{sid}/complete" if completing else f"/sessions/{sid}")  # fmt: skip
        response = await handler(request)  # this worker's own answer (it completes its part)
        telemetry = request.app[TELEMETRY]
        mine = telemetry.sessions.get(sid)
        parts = [p for p in theirs if p is not None] + ([session_part(mine)] if mine is not None else [])
        if not parts:
            return response  # nobody has it: the handler's 404
        return web.json_response(text=merge(parts).metrics().model_dump_json())

    return middleware


async def _replicate(request: web.Request, peers: Peers, sid: str) -> None:
    session = request.app[TELEMETRY].sessions.get(sid)
    if session is None:
        return
    spec = session.spec.model_dump(mode="json", by_alias=True, exclude_none=True) if session.spec else None
    body = {"id": sid, "profile": session.profile_name, "spec": spec, "labels": session.labels,
            "createdAt": session.created_at}  # fmt: skip
    await peers.each_other("POST", "/sessions", body)


def prepare(state: RuntimeState, ctx: WorkerContext) -> Peers:
    """Before the app is built: workers other than 0 ask worker 0 for attempts, activations and
    `scope: pod` rate limits. Returns the siblings' clients (for `install`)."""
    peers = Peers(ctx)
    if ctx.index != 0:
        state.coordinator = FaultClockClient(peers)
        state.rate_limiter = CoordinatedRateLimiter(peers)
    return peers


def install(app: web.Application, ctx: WorkerContext, peers: Peers) -> None:
    """Make this app one worker of `ctx`: its siblings' socket and the control API across workers."""
    state = app[STATE]
    app.middlewares.append(control_across_workers(peers))
    internal = internal_app(state, lambda: app[TELEMETRY])

    async def sibling_socket(app: web.Application) -> AsyncIterator[None]:
        runner = web.AppRunner(internal, access_log=None)
        await runner.setup()
        path = ctx.socket_path(ctx.index)
        path.unlink(missing_ok=True)
        await web.UnixSite(runner, str(path)).start()
        yield
        await peers.close()
        await runner.cleanup()

    app.cleanup_ctx.append(sibling_socket)


def announce_ready(ctx: WorkerContext) -> Callable[[str], None]:
    """run_app's `print`: called once the worker listens; tells the supervisor."""

    def ready(message: str) -> None:
        ctx.ready_path(ctx.index).write_text(f"{os.getpid()} {time.time()}\n")

    return ready
