"""The latency GC policy: no automatic full collections; full ones when idle, or bounded when busy."""

from __future__ import annotations

import asyncio
import gc

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


async def test_full_collections_run_when_idle_and_are_forced_when_never_idle() -> None:
    busy = [1]
    policy = GcPolicy(in_flight=lambda: busy[0], idle_every_s=0.05, max_every_s=0.3)
    task = asyncio.create_task(policy.run(tick_s=0.02))
    try:
        await asyncio.sleep(0.15)
        assert policy.full_collections == 0, "no full collection while requests are in flight"
        await asyncio.sleep(0.3)
        assert policy.forced_collections >= 1, "but one is forced after max_every_s"
        forced = policy.full_collections
        busy[0] = 0
        await asyncio.sleep(0.15)
        assert policy.full_collections > forced and policy.forced_collections == forced
    finally:
        task.cancel()
