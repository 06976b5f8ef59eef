from __future__ import annotations

import numpy as np
import pytest

from llmsim import profiles
from llmsim.api.faults import FaultType
from llmsim.proxy.perturb import PerturbPlan, plan_perturbation
from llmsim.simulation import faults


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


def test_the_plan_samples_the_added_latency_and_carries_the_cores_fault() -> None:
    spec = profiles.parse_spec(
        {
            "latency": {
                "ttftMs": {"type": "constant", "value": 200},
                "itlMs": {"type": "constant", "value": 0},
            },
            "faults": {"params": {"slowStreamFactor": 4, "afterTokens": 3}},
        },
        "t",
    )
    rng = np.random.default_rng(5)
    clean = plan_perturbation(spec, rng)
    assert clean.added_ttft_s == pytest.approx(0.2) and clean.gaps_s == () and clean.fault is None
    slow = plan_perturbation(spec, rng, faults.decision(FaultType.SLOW_STREAM, "rate", spec.faults.params))
    assert slow.slow_factor == 4 and not slow.strikes
    cut = plan_perturbation(spec, rng, faults.decision(FaultType.DISCONNECT, "forced", spec.faults.params))
    assert cut.strikes and cut.after_events == 3 and cut.slow_factor == 1.0


def test_noop_plans_are_relayed_byte_for_byte() -> None:
    params = profiles.parse_spec({}, "t").faults.params
    assert PerturbPlan(0.0, ()).is_noop
    assert not PerturbPlan(0.0, (0.001,)).is_noop
    assert not PerturbPlan(0.0, (), fault=faults.decision(FaultType.DISCONNECT, "forced", params)).is_noop
    assert PerturbPlan(0.0, (), fault=faults.decision(FaultType.RATE_LIMIT, "rate_limit", params)).is_noop
