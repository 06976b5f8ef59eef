"""One worker's run: build its share of the schedule, send it open-loop, collect a Partial."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from pathlib import Path

import aiohttp
import numpy as np

from llmsim.api.scenario import LoadScenarioSpec
from llmsim.errors import LLMSimError
from llmsim.loadgen import client, patterns, wire
from llmsim.loadgen.requestmix import PlannedRequest, PromptSource
from llmsim.loadgen.results import Partial, RequestRecord, window_length
from llmsim.loadgen.scheduler import LiveStats, Scheduler
from llmsim.loadgen.wire import ErrorType

START_LEAD_S = 0.2
"""The schedule starts this long after set-up, so that the first deadlines are not already late."""
FAIL_FAST_AFTER = 10
"""Stop early when this many first answers all failed in a way that says the target is unusable."""
FAIL_FAST_REASONS = {
    ErrorType.CONNECT: "is unreachable",
    ErrorType.AUTH: "is rejecting the API key",
    ErrorType.NOT_FOUND: "answers 404 Not Found (check the URL, provider format and model)",
    ErrorType.MALFORMED: "does not answer in the {provider} format",
}
"""Error types that stop a run early when every one of the first answers has one, and what the
note says about the target."""
STOP_GRACE_S = 2.0


MAX_REQUESTS = 20_000_000
"""Largest schedule a run may hold (every worker computes the whole schedule)."""
MAX_WINDOWS = 10_000


def schedule(spec: LoadScenarioSpec) -> np.ndarray:
    """Intended send offsets of the whole (all-worker) schedule."""
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
    times = schedule(spec)
    mine = patterns.worker_share(times, spec.parallelism, worker_index)
    mix = PromptSource(spec.requests, len(times), spec.seed, base_dir)
    partial = Partial(
        window_s=window_s, n_windows=n_windows, workers=[worker_index], parallelism=spec.parallelism
    )
    partial.scheduled = len(mine)
    partial.started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    live = live or LiveStats()
    live.scheduled, live.duration_s = len(mine), spec.duration_s
    stop = stop or asyncio.Event()
    sample_rng = np.random.default_rng([spec.seed, worker_index, 0x5A])
    loop = asyncio.get_running_loop()
    first_outcomes: list[ErrorType | None] = []

    connector = aiohttp.TCPConnector(limit=spec.max_concurrency, limit_per_host=0, ttl_dns_cache=300)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=True) as session:
        start = loop.time() + START_LEAD_S

        def clock() -> float:
            return loop.time() - start

        async def fire(req: PlannedRequest, deadline: float) -> None:
            call = wire.build_call(spec.target, req, api_key)
            record = RequestRecord(
                index=req.index,
                intended_s=req.intended_s,
                sent_s=clock(),
                stream=req.stream,
                prompt_tokens=req.prompt_tokens,
            )
            live.started += 1
            live.in_flight += 1
            try:
                await client.execute(
                    session, call, spec.target.provider, record, spec.request_timeout_s, clock
                )
            finally:
                live.in_flight -= 1
            partial.add(record, sample_rng)
            if on_record is not None:
                on_record(record)
            live.finished += 1
            live.output_tokens += record.output_tokens
            if record.ok:
                live.succeeded += 1
            else:
                live.failed += 1
            if len(first_outcomes) < FAIL_FAST_AFTER:
                first_outcomes.append(record.error)
                if len(first_outcomes) == FAIL_FAST_AFTER and all(
                    e in FAIL_FAST_REASONS for e in first_outcomes
                ):
                    worst = max(FAIL_FAST_REASONS, key=first_outcomes.count)
                    reason = FAIL_FAST_REASONS[worst].format(provider=spec.target.provider.value)
                    example = partial.examples.get(worst.value, [""])[0]
                    partial.notes.append(
                        f"stopped early: the target {spec.target.url} {reason} "
                        f"(the first {FAIL_FAST_AFTER} requests failed, e.g. {example})"
                    )
                    stop.set()

        items = ((float(times[i]), mix.request(int(i), float(times[i]))) for i in mine)
        scheduler = Scheduler(spec.max_concurrency, stop)

        async def tick() -> None:
            while True:
                live.elapsed_s = max(0.0, clock())
                await asyncio.sleep(0.1)

        ticker = asyncio.create_task(tick())
        try:
            started = await scheduler.run(items, fire, start)
            grace = STOP_GRACE_S if stop.is_set() else spec.request_timeout_s + 5
            cancelled = await scheduler.drain(grace)
        finally:
            ticker.cancel()
        if started < len(mine):
            if not partial.notes:
                partial.notes.append(f"stopped early at {clock():.1f} s of {spec.duration_s:g} s")
            partial.notes.append(f"{len(mine) - started} of {len(mine)} scheduled requests were not sent")
        if cancelled:
            partial.notes.append(f"{cancelled} requests in flight were abandoned when the run stopped")
    partial.elapsed_s = max(
        partial.elapsed_s, min(clock(), spec.duration_s) if partial.total.requests else 0.0
    )
    return partial
