"""What every load pattern shares while a worker runs: the clock, sending one request and recording
it, the live counters and the fail-fast rule. The patterns (open loop, closed loop, workflows) only
decide *when* to call `Sender.send`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp
import numpy as np

from llmsim.api.scenario import LoadScenarioSpec, Target
from llmsim.loadgen import client, wire
from llmsim.loadgen.requestmix import PlannedRequest
from llmsim.loadgen.results import Partial, RequestRecord
from llmsim.loadgen.scheduler import LiveStats
from llmsim.loadgen.wire import ErrorType

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
MAX_SLEEP_S = 0.25
"""Longest single sleep while waiting for a deadline, so that a stop is noticed quickly."""


class Sender:
    """One worker's connection pool, clock and results."""

    def __init__(
        self,
        spec: LoadScenarioSpec,
        session: aiohttp.ClientSession,
        partial: Partial,
        live: LiveStats,
        stop: asyncio.Event,
        api_key: str | None,
        start: float,
        worker_index: int,
        on_record: Callable[[RequestRecord], None] | None = None,
    ) -> None:
        self.spec, self.session, self.partial, self.live, self.stop = spec, session, partial, live, stop
        self.api_key = api_key
        self.start = start
        self._loop = asyncio.get_running_loop()
        self._sample_rng = np.random.default_rng([spec.seed, worker_index, 0x5A])
        self._first_outcomes: list[ErrorType | None] = []
        self._targets: dict[str, Target] = {}
        self._on_record = on_record

    def clock(self) -> float:
        """Seconds since the run's start on the event-loop clock."""
        return self._loop.time() - self.start

    async def sleep_until(self, offset_s: float) -> bool:
        """Wait until `offset_s` after the start (absolute deadline); False when stopped first."""
        while not self.stop.is_set():
            delay = offset_s - self.clock()
            if delay <= 0:
                return True
            await asyncio.sleep(min(delay, MAX_SLEEP_S))
        return False

    def _target(self, model: str | None) -> Target:
        if model is None:
            return self.spec.target
        if model not in self._targets:
            self._targets[model] = self.spec.target.model_copy(update={"model": model})
        return self._targets[model]

    async def send(self, req: PlannedRequest, capture: client.Capture | None = None) -> RequestRecord:
        """Send `req` now, measure it, record it in the partial result and the live counters."""
        spec, live = self.spec, self.live
        call = wire.build_call(self._target(req.model), req, self.api_key)
        record = RequestRecord(
            index=req.index,
            intended_s=req.intended_s,
            sent_s=self.clock(),
            stream=req.stream,
            prompt_tokens=req.prompt_tokens,
            model=req.model or "",
        )
        live.started += 1
        live.in_flight += 1
        try:
            await client.execute(
                self.session, call, spec.target.provider, record, spec.request_timeout_s, self.clock, capture
            )
        finally:
            live.in_flight -= 1
        self.partial.add(record, self._sample_rng)
        if self._on_record is not None:
            self._on_record(record)
        live.finished += 1
        live.output_tokens += record.output_tokens
        if record.ok:
            live.succeeded += 1
        else:
            live.failed += 1
        self._fail_fast(record)
        return record

    def _fail_fast(self, record: RequestRecord) -> None:
        outcomes = self._first_outcomes
        if len(outcomes) >= FAIL_FAST_AFTER:
            return
        outcomes.append(record.error)
        if len(outcomes) == FAIL_FAST_AFTER and all(e in FAIL_FAST_REASONS for e in outcomes):
            worst = max(FAIL_FAST_REASONS, key=outcomes.count)
            reason = FAIL_FAST_REASONS[worst].format(provider=self.spec.target.provider.value)
            example = self.partial.examples.get(worst.value, [""])[0]
            self.partial.notes.append(
                f"stopped early: the target {self.spec.target.url} {reason} "
                f"(the first {FAIL_FAST_AFTER} requests failed, e.g. {example})"
            )
            self.stop.set()
