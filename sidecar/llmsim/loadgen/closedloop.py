"""Closed-loop load: slots (virtual users, or parallel workflows) that each start their next unit of
work when the previous one has ended, after a think time; a ramp spreads their starts.

A slot's intended send time is when it became ready (its previous answer plus think time), so the
schedule lag still shows an overloaded event loop. Slots stop starting work at `durationS` or when
the worker's share of `iterations` is used up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import numpy as np

from llmsim.api.distributions import Distribution
from llmsim.loadgen.requestmix import LazyDraws
from llmsim.loadgen.sending import Sender

Unit = Callable[[int, float], Awaitable[None]]
"""One unit of work: `unit(index, ready_s)`; `index` is unique per (slot, iteration)."""


@dataclass
class Budget:
    """Units this worker may still start (None: unlimited)."""

    remaining: int | None

    def take(self) -> bool:
        if self.remaining is None:
            return True
        if self.remaining <= 0:
            return False
        self.remaining -= 1
        return True


def share(total: int | None, parallelism: int, worker_index: int) -> int | None:
    """Worker `worker_index`'s share of `total` units (the first workers take the remainder)."""
    if total is None:
        return None
    return total // parallelism + (1 if worker_index < total % parallelism else 0)


class ThinkTime:
    """Think time after unit `index` (seeded, the same for a given index whatever the timing)."""

    def __init__(self, dist: Distribution | None, seed: int) -> None:
        self._draws = None if dist is None else LazyDraws(dist, np.random.default_rng([seed, 0x7415]))

    def __getitem__(self, index: int) -> float:
        return 0.0 if self._draws is None else max(0.0, self._draws[index])


def ramp_offset(slot: int, slots: int, ramp_up_s: float | None) -> float:
    """When slot `slot` of `slots` starts: evenly spread over the ramp (slot 0 at once)."""
    return 0.0 if not ramp_up_s else slot * ramp_up_s / slots


def target_slots(t: np.ndarray, slots: int, ramp_up_s: float | None) -> np.ndarray:
    """Slots started by time `t` (the nominal concurrency of the ramp)."""
    if not ramp_up_s:
        return np.full(np.shape(t), float(slots))
    started = np.minimum(slots, np.floor(np.asarray(t, dtype=float) * slots / ramp_up_s) + 1)
    return np.asarray(started, dtype=float)


async def run_slots(
    sender: Sender,
    slots: Sequence[int],
    total_slots: int,
    budget: Budget,
    ramp_up_s: float | None,
    think: ThinkTime,
    unit: Unit,
) -> int:
    """Run the worker's `slots` until the run's duration, the budget or a stop ends them; return how
    many requests were abandoned in flight when the run stopped."""
    duration = sender.spec.duration_s

    async def slot_loop(slot: int) -> None:
        ready = ramp_offset(slot, total_slots, ramp_up_s)
        j = 0
        while ready < duration and not sender.stop.is_set():
            if not await sender.sleep_until(ready) or not budget.take():
                return
            index = j * total_slots + slot
            await unit(index, ready)
            j += 1
            ready = sender.clock() + think[index]

    tasks = [asyncio.create_task(slot_loop(s)) for s in slots]
    return await wait_or_cancel(sender, tasks)


STOP_GRACE_S = 2.0


async def wait_or_cancel(sender: Sender, tasks: Sequence[asyncio.Task[None]]) -> int:
    """Wait for `tasks` until the duration plus the request timeout (or a short grace after a stop);
    cancel the rest and return how many requests were in flight then (abandoned)."""
    pending = set(tasks)
    give_up = sender.spec.duration_s + sender.spec.request_timeout_s + 5
    stop_seen: float | None = None
    while pending:
        now = sender.clock()
        if sender.stop.is_set() and stop_seen is None:
            stop_seen = now
        limit = give_up if stop_seen is None else min(give_up, stop_seen + STOP_GRACE_S)
        if now >= limit:
            break
        _, pending = await asyncio.wait(pending, timeout=min(0.25, limit - now))
    abandoned = sender.live.in_flight if pending else 0
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)
    return abandoned
