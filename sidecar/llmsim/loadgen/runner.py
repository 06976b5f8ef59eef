"""One worker's run: set up, drive its share of the load with the scenario's pattern (open loop by
a schedule, or closed loop by users or workflows), collect a Partial."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from pathlib import Path

import aiohttp
import numpy as np

from llmsim.api.scenario import ClosedLoop, LoadScenarioSpec, WorkflowRun
from llmsim.errors import LLMSimError
from llmsim.loadgen import closedloop, patterns
from llmsim.loadgen.requestmix import PlannedRequest, PromptSource
from llmsim.loadgen.results import Partial, RequestRecord, window_length
from llmsim.loadgen.scheduler import LiveStats, Scheduler
from llmsim.loadgen.sending import Sender
from llmsim.loadgen.workflows import WorkflowDriver

START_LEAD_S = 0.2
"""The schedule starts this long after set-up, so that the first deadlines are not already late."""
STOP_GRACE_S = 2.0
CLOSED_LOOP_DRAWS = 1024
"""Request-mix draws made up front for a closed loop (more are drawn as the run needs them)."""


MAX_REQUESTS = 20_000_000
"""Largest schedule a run may hold (every worker computes the whole schedule)."""
MAX_WINDOWS = 10_000


def schedule(spec: LoadScenarioSpec) -> np.ndarray:
    """Intended send offsets of the whole (all-worker) schedule of an open-loop pattern."""
    assert not isinstance(spec.pattern, ClosedLoop | WorkflowRun)
    expected = patterns.expected_count(spec.pattern, spec.duration_s, 0.0, spec.duration_s, spec.seed)
    if expected > MAX_REQUESTS:
        raise LLMSimError(
            f"pattern: about {expected:,.0f} requests over durationS {spec.duration_s:g} s; "
            f"at most {MAX_REQUESTS:,} per run (shorten the run or lower the rate)"
        )
    rng = np.random.default_rng([spec.seed, 0xA77])
    return patterns.arrival_times(spec.pattern, spec.duration_s, rng, spec.arrival, spec.seed)


async def run_worker(
    spec: LoadScenarioSpec,
    *,
    api_key: str | None,
    worker_index: int = 0,
    base_dir: Path | None = None,
    live: LiveStats | None = None,
    stop: asyncio.Event | None = None,
    on_record: Callable[[RequestRecord], None] | None = None,
) -> Partial:
    """Run worker `worker_index` of `spec.parallelism` and return what it measured. `on_record`
    sees every finished request (the `--metrics` exporter)."""
    window_s, n_windows = window_length(spec.duration_s, spec.window_s)
    if n_windows > MAX_WINDOWS:
        raise LLMSimError(
            f"windowS: {window_s:g} s over durationS {spec.duration_s:g} s makes {n_windows:,} windows; "
            f"at most {MAX_WINDOWS:,}"
        )
    open_loop = not isinstance(spec.pattern, ClosedLoop | WorkflowRun)
    times = schedule(spec) if open_loop else np.zeros(0)
    mix = PromptSource(spec.requests, len(times) if open_loop else CLOSED_LOOP_DRAWS, spec.seed, base_dir)
    partial = Partial(
        window_s=window_s, n_windows=n_windows, workers=[worker_index], parallelism=spec.parallelism
    )
    partial.started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    live = live or LiveStats()
    live.duration_s = spec.duration_s
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    connector = aiohttp.TCPConnector(limit=spec.max_concurrency, limit_per_host=0, ttl_dns_cache=300)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=True) as session:
        sender = Sender(
            spec, session, partial, live, stop, api_key, loop.time() + START_LEAD_S, worker_index, on_record
        )

        async def tick() -> None:
            while True:
                live.elapsed_s = max(0.0, sender.clock())
                await asyncio.sleep(0.1)

        ticker = asyncio.create_task(tick())
        try:
            if open_loop:
                await _open_loop(spec, sender, times, mix, worker_index)
            else:
                await _closed_loop(spec, sender, mix, worker_index)
        finally:
            ticker.cancel()
    partial.elapsed_s = max(
        partial.elapsed_s, min(sender.clock(), spec.duration_s) if partial.total.requests else 0.0
    )
    return partial


async def _open_loop(
    spec: LoadScenarioSpec, sender: Sender, times: np.ndarray, mix: PromptSource, worker_index: int
) -> None:
    partial, live = sender.partial, sender.live
    mine = patterns.worker_share(times, spec.parallelism, worker_index)
    partial.scheduled = live.scheduled = len(mine)

    async def fire(req: PlannedRequest, _deadline: float) -> None:
        await sender.send(req)

    items = ((float(times[i]), mix.request(int(i), float(times[i]))) for i in mine)
    scheduler = Scheduler(spec.max_concurrency, sender.stop)
    started = await scheduler.run(items, fire, sender.start)
    grace = STOP_GRACE_S if sender.stop.is_set() else spec.request_timeout_s + 5
    cancelled = await scheduler.drain(grace)
    if started < len(mine):
        if not partial.notes:
            partial.notes.append(f"stopped early at {sender.clock():.1f} s of {spec.duration_s:g} s")
        partial.notes.append(f"{len(mine) - started} of {len(mine)} scheduled requests were not sent")
    if cancelled:
        partial.notes.append(f"{cancelled} requests in flight were abandoned when the run stopped")


async def _closed_loop(spec: LoadScenarioSpec, sender: Sender, mix: PromptSource, worker_index: int) -> None:
    pattern = spec.pattern
    assert isinstance(pattern, ClosedLoop | WorkflowRun)
    partial = sender.partial
    slots = pattern.users if isinstance(pattern, ClosedLoop) else pattern.parallel_workflows
    mine = list(range(worker_index, slots, spec.parallelism))
    budget = closedloop.Budget(closedloop.share(pattern.iterations, spec.parallelism, worker_index))
    think = closedloop.ThinkTime(pattern.think_time_s, spec.seed)
    if isinstance(pattern, ClosedLoop):

        async def unit(index: int, ready_s: float) -> None:
            await sender.send(mix.request(index, ready_s))

        noun = "requests"
    else:
        unit = WorkflowDriver(spec, sender, mix)
        noun = "conversations"
    planned = budget.remaining
    sender.live.scheduled = planned or 0
    abandoned = await closedloop.run_slots(sender, mine, slots, budget, pattern.ramp_up_s, think, unit)
    done = (planned - (budget.remaining or 0)) if planned is not None else partial.total.requests
    partial.scheduled = planned if planned is not None else done
    if planned is not None and budget.remaining:
        reason = "stopped early" if sender.stop.is_set() else f"durationS {spec.duration_s:g} s ended the run"
        partial.notes.append(f"{reason} after {done} of {planned} {noun} (iterations)")
    elif sender.stop.is_set() and not partial.notes:
        partial.notes.append(f"stopped early at {sender.clock():.1f} s of {spec.duration_s:g} s")
    if abandoned:
        partial.notes.append(f"{abandoned} requests in flight were abandoned when the run stopped")
