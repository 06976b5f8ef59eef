from __future__ import annotations

import numpy as np
import pytest

from llmsim import profiles
from llmsim.api.faults import FaultType
from llmsim.proxy.perturb import FrameSplitter, PerturbPlan, plan_perturbation
from llmsim.simulation.faults import parse_forced


def test_deadlines_add_ttft_and_gaps_from_absolute_times() -> None:
    plan = PerturbPlan(added_ttft_s=0.1, gaps_s=(0.01,))
    assert plan.deadline(0, 5.0, 5.0) == pytest.approx(5.1)
    # chunk 3 arrived 60 ms after the first: 100 ms TTFT + 60 ms + 3 added gaps
    assert plan.deadline(3, 5.06, 5.0) == pytest.approx(5.19)


def test_deadlines_never_precede_arrival_and_do_not_accumulate_lateness() -> None:
    plan = PerturbPlan(added_ttft_s=0.0, gaps_s=(), slow_factor=2.0)
    assert plan.deadline(1, 5.02, 5.0) == pytest.approx(5.04)
    assert plan.deadline(2, 5.04, 5.0) == pytest.approx(5.08)  # from the first chunk, not from chunk 1
    assert PerturbPlan(0.0, ()).deadline(4, 7.0, 5.0) == 7.0


def test_cumulative_gap_cycles_through_the_samples() -> None:
    plan = PerturbPlan(0.0, (0.01, 0.02, 0.03))
    assert plan.cumulative_gap(0) == 0
    assert plan.cumulative_gap(2) == pytest.approx(0.03)
    assert plan.cumulative_gap(7) == pytest.approx(2 * 0.06 + 0.01)


def test_plan_samples_the_profile_and_draws_faults_at_their_rates() -> None:
    spec = profiles.parse_spec(
        {
            "latency": {
                "ttftMs": {"type": "constant", "value": 200},
                "itlMs": {"type": "constant", "value": 0},
            },
            "faults": {"rates": {"server_error": 0.2, "slow_stream": 0.1}, "params": {"slowStreamFactor": 4}},
        },
        "t",
    )
    rng = np.random.default_rng(5)
    plans = [plan_perturbation(spec, rng) for _ in range(3000)]
    assert all(p.added_ttft_s == pytest.approx(0.2) and p.gaps_s == () for p in plans)
    errors = sum(p.fault is FaultType.SERVER_ERROR for p in plans) / len(plans)
    slow = [p for p in plans if p.fault is FaultType.SLOW_STREAM]
    assert abs(errors - 0.2) < 4 * (0.2 * 0.8 / 3000) ** 0.5
    assert abs(len(slow) / 3000 - 0.1) < 4 * (0.1 * 0.9 / 3000) ** 0.5
    assert all(p.slow_factor == 4 for p in slow)
    assert all(p.replaces_response for p in plans if p.fault is FaultType.SERVER_ERROR)


def test_forced_fault_and_none() -> None:
    spec = profiles.parse_spec({"faults": {"rates": {"server_error": 1.0}}}, "t")
    rng = np.random.default_rng(0)
    assert plan_perturbation(spec, rng, forced=FaultType.DISCONNECT).fault is FaultType.DISCONNECT
    assert plan_perturbation(spec, rng, forced=FaultType.NONE).fault is None
    with pytest.raises(ValueError, match="x-llmsim-fault"):
        parse_forced("explode")


def test_noop_plans_are_relayed_byte_for_byte() -> None:
    assert PerturbPlan(0.0, ()).is_noop
    assert not PerturbPlan(0.0, (0.001,)).is_noop
    assert not PerturbPlan(0.0, (), fault=FaultType.DISCONNECT).is_noop


def test_splitter_yields_whole_events_only() -> None:
    sse = FrameSplitter(ndjson=False)
    assert sse.feed(b"data: 1\n\nda") == [b"data: 1\n\n"]
    assert sse.feed(b"ta: 2\r\n\r\nevent: x\n") == [b"data: 2\n\n"]
    assert sse.flush() == b"event: x\n"
    nd = FrameSplitter(ndjson=True)
    assert nd.feed(b'{"a":1}\n{"b"') == [b'{"a":1}\n']
    assert nd.feed(b":2}\n") == [b'{"b":2}\n']


@pytest.mark.parametrize("cut", range(1, 30))
def test_event_counter_agrees_with_the_splitter_wherever_reads_are_cut(cut: int) -> None:
    from llmsim.proxy.perturb import EventCounter

    stream = b"data: 1\n\ndata: 2\r\n\r\nevent: x\ndata: 3\n\n\ndata: 4\n\n"
    counter, splitter = EventCounter(ndjson=False), FrameSplitter(ndjson=False)
    counted = counter.feed(stream[:cut]) + counter.feed(stream[cut:])
    assert counted == len(splitter.feed(stream)) == 4
    nd = EventCounter(ndjson=True)
    assert nd.feed(b'{"a":1}\n{"b"') + nd.feed(b":2}\n") == 2
