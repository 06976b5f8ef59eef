"""Open-loop scheduling by absolute deadlines on the event-loop clock.

Each request has an intended send time; the scheduler waits for that deadline (never for a
duration after the previous send, so sleep overshoot does not accumulate) and starts the request
whatever the state of earlier ones (open loop). A concurrency cap makes a request wait for a free
slot; that wait, like any event-loop delay, shows up as schedule lag = actual send - deadline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

MAX_SLEEP_S = 0.25
"""Longest single sleep, so that a stop request is noticed quickly during quiet stretches."""


@dataclass
class LiveStats:
    """Counters for the progress display (updated by the runner, read by the display)."""

    scheduled: int = 0
    started: int = 0
    finished: int = 0
    succeeded: int = 0
    failed: int = 0
    in_flight: int = 0
    output_tokens: int = 0
    elapsed_s: float = 0.0
    duration_s: float = 0.0


class Scheduler:
    """Runs `fire(item, deadline)` for each (offset, item) at loop time `start + offset`."""

    def __init__(self, max_concurrency: int, stop: asyncio.Event | None = None) -> None:
        self._slots = asyncio.Semaphore(max_concurrency)
        self._stop = stop or asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def run(
        self,
        items: Iterable[tuple[float, T]],
        fire: Callable[[T, float], Awaitable[None]],
        start: float,
    ) -> int:
        """Schedule every item (unless stopped); return how many were started. Waits for the
        started ones to finish (a stop cancels those still running after `drain_s`)."""
        loop = asyncio.get_running_loop()
        started = 0
        for offset, item in items:
            deadline = start + offset
            while not self._stop.is_set():
                delay = deadline - loop.time()
                if delay <= 0:
                    break
                await asyncio.sleep(min(delay, MAX_SLEEP_S))
            if self._stop.is_set():
                break
            await self._slots.acquire()
            if self._stop.is_set():
                self._slots.release()
                break
            task = asyncio.create_task(self._guarded(fire(item, deadline)))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            started += 1
        return started

    async def drain(self, grace_s: float) -> int:
        """Wait for running requests up to `grace_s`; cancel the rest; return how many were cancelled."""
        if not self._tasks:
            return 0
        _, pending = await asyncio.wait(set(self._tasks), timeout=grace_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
        return len(pending)

    async def _guarded(self, work: Awaitable[None]) -> None:
        try:
            await work
        finally:
            self._slots.release()
