"""The runtime's window clock: absolute windows read the wall clock (every replica agrees, a
restarted one rejoins), relative windows still count from the process's activation."""

from __future__ import annotations

import asyncio
import datetime as dt

from llmsim import profiles
from llmsim.api.faults import FaultType
from llmsim.profiles import NamedProfile, ProfileRegistry
from llmsim.runtime import fault_hooks
from llmsim.runtime.state import RuntimeSettings, RuntimeState
from llmsim.simulation.request import GenerationRequest, Message

OPENS = dt.datetime(2026, 3, 2, 14, 0, tzinfo=dt.UTC).timestamp()


def replica(doc: dict[str, object], wall: list[float]) -> tuple[RuntimeState, NamedProfile]:
    profile = NamedProfile("drill", profiles.parse_spec(doc, "test"), "test")
    state = RuntimeState(
        ProfileRegistry(profile), RuntimeSettings(process_seed=1, wall_clock=lambda: wall[0])
    )
    return state, profile


def fault_at(state: RuntimeState, profile: NamedProfile, loop_now: float) -> FaultType | None:
    gen = GenerationRequest(provider="openai", operation="chat", model="m", messages=(Message("user", "hi"),))
    outcome = asyncio.run(fault_hooks.decide(state, profile, gen, loop_now, forced=None, seed=1))
    return None if outcome.fault is None else outcome.fault.fault


def test_replicas_activated_at_different_times_open_an_absolute_window_together() -> None:
    doc = {
        "faults": {"windows": [{"fault": "overloaded", "startAt": "2026-03-02T14:00:00Z", "durationS": 300}]}
    }
    wall = [OPENS - 60]
    early, profile = replica(doc, wall)
    assert fault_at(early, profile, loop_now=1000.0) is None  # activated long before the window
    wall[0] = OPENS + 10
    late, _ = replica(doc, wall)  # a replica (or a restart) that starts inside the window
    assert fault_at(early, profile, loop_now=1070.0) is FaultType.OVERLOADED
    assert fault_at(late, profile, loop_now=5.0) is FaultType.OVERLOADED
    wall[0] = OPENS + 300
    assert fault_at(early, profile, loop_now=1360.0) is None
    assert fault_at(late, profile, loop_now=295.0) is None


def test_a_relative_window_counts_from_the_first_request_of_this_process() -> None:
    doc = {"faults": {"windows": [{"fault": "overloaded", "startS": 10, "durationS": 5}]}}
    state, profile = replica(doc, [OPENS])
    assert fault_at(state, profile, loop_now=100.0) is None  # activation: loop time 100
    assert fault_at(state, profile, loop_now=111.0) is FaultType.OVERLOADED
    state.reactivate("drill")
    assert fault_at(state, profile, loop_now=112.0) is None  # the clock restarted at 112
