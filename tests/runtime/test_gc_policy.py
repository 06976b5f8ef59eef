"""The latency GC policy: no automatic full collections; full ones when idle, or bounded when busy."""

from __future__ import annotations

import asyncio
import gc

import pytest

from llmsim.runtime.gc_policy import NEVER, GcPolicy


def test_apply_freezes_start_up_objects_and_disables_automatic_full_collections() -> None:
    policy = GcPolicy(in_flight=lambda: 0)
    before = gc.get_threshold()
    policy.apply()
    try:
        assert gc.get_threshold() == (700, 10, NEVER)
        assert gc.get_freeze_count() > 0
    finally:
        policy.restore()
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


class FakeTime:
    """A clock that `sleep` advances: the policy's loop runs instantly, on simulated time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.ticked = asyncio.Event()

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.ticked.set()
        await asyncio.sleep(0)  # let the test observe between ticks


async def test_full_collections_run_when_idle_and_are_forced_when_never_idle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each real full collection scans the whole test process (about 1 s each here, with the rest of
    # the suite loaded); what this test checks is when the policy collects, so count the calls.
    collects: list[int] = []
    monkeypatch.setattr(gc, "collect", lambda generation=2: collects.append(generation) or 0)
    busy = [1]
    clock = FakeTime()
    policy = GcPolicy(
        in_flight=lambda: busy[0], idle_every_s=10, max_every_s=300, clock=clock, sleep=clock.sleep
    )
    task = asyncio.create_task(policy.run(tick_s=0.5))

    async def advance(seconds: float) -> None:
        until = clock.now + seconds
        while clock.now < until:
            clock.ticked.clear()
            await clock.ticked.wait()

    try:
        await advance(299)
        assert policy.full_collections == 0, "no full collection while requests are in flight"
        await advance(2)
        assert policy.forced_collections == 1, "but one is forced after max_every_s"
        busy[0] = 0
        await advance(9)
        assert policy.full_collections == 1, "idle, but not for idle_every_s since the last one"
        await advance(2)
        assert policy.full_collections == 2 and policy.forced_collections == 1, "an idle one"
        await advance(60)
        assert policy.full_collections == 2 + 6, "then one every idle_every_s while idle"
        assert collects == [2] * policy.full_collections, "each one a full gc.collect()"
    finally:
        task.cancel()
