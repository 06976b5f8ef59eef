"""The pure fault decision: precedence, windows, fail-first, rates and their statistics."""

from __future__ import annotations

import math
from typing import Any

import pytest
from scipy import stats

from llmsim import profiles
from llmsim.api.faults import FaultType
from llmsim.api.profile import SimulationProfileSpec
from llmsim.simulation import faults
from llmsim.simulation.request import GenerationRequest, Message


def spec(**fault_doc: Any) -> SimulationProfileSpec:
    return profiles.parse_spec({"faults": fault_doc, "models": {"contextWindow": 1000}}, "test")


def req(text: str = "hello", **kw: Any) -> GenerationRequest:
    return GenerationRequest(
        provider="openai", operation="chat", model="m", messages=(Message("user", text),), **kw
    )


def decide(s: SimulationProfileSpec, r: GenerationRequest | None = None, **kw: Any) -> FaultType | None:
    args: dict[str, Any] = {"elapsed_s": 0.0, "now_unix": 0.0, "attempt": 0, "forced": None, "seed": 1, **kw}
    found = faults.decide(s, r or req(), **args)
    return None if found is None else found.fault


def test_no_faults_configured_means_no_fault() -> None:
    assert decide(spec()) is None


def test_forced_header_wins_over_everything() -> None:
    s = spec(rates={"server_error": 1.0}, windows=[{"fault": "overloaded", "durationS": 10}])
    found = faults.decide(s, req(), elapsed_s=1, now_unix=0.0, attempt=0, forced=FaultType.QUOTA, seed=1)
    assert found is not None and found.fault is FaultType.QUOTA and found.reason == "forced"


def test_forced_none_switches_off_injected_faults() -> None:
    s = spec(
        rates={"server_error": 1.0},
        windows=[{"fault": "overloaded", "durationS": 10}],
        failFirst={"attempts": 3},
    )
    assert decide(s, elapsed_s=1, forced=FaultType.NONE) is None
    assert decide(s, elapsed_s=1) is FaultType.OVERLOADED


def test_a_prompt_over_the_context_window_is_rejected_unless_another_fault_is_forced() -> None:
    long = req("word " * 2000)
    found = faults.decide(spec(), long, elapsed_s=0, now_unix=0.0, attempt=0, forced=FaultType.NONE, seed=1)
    assert found is not None and found.fault is FaultType.CONTEXT_LENGTH and found.reason == "context"
    assert found.detail["context_window"] == 1000 and found.detail["prompt_tokens"] > 1000
    assert decide(spec(), long, forced=FaultType.OVERLOADED) is FaultType.OVERLOADED


def test_count_tokens_is_never_rejected_for_length() -> None:
    counting = GenerationRequest(
        provider="anthropic", operation="count_tokens", model="m", messages=(Message("user", "w " * 5000),)
    )
    assert decide(spec(), counting) is None


@pytest.mark.parametrize(
    ("elapsed", "expected"),
    [(9.9, None), (10.0, FaultType.OVERLOADED), (39.9, FaultType.OVERLOADED), (40.0, None), (1000.0, None)],
)
def test_a_one_shot_window_is_open_from_start_for_its_duration(
    elapsed: float, expected: FaultType | None
) -> None:
    s = spec(windows=[{"fault": "overloaded", "startS": 10, "durationS": 30}])
    assert decide(s, elapsed_s=elapsed) is expected


@pytest.mark.parametrize(
    ("elapsed", "expected"),
    [
        (5.0, None),
        (10.0, FaultType.SERVER_ERROR),
        (14.9, FaultType.SERVER_ERROR),
        (15.0, None),
        (70.0, FaultType.SERVER_ERROR),
        (76.0, None),
    ],
)
def test_a_repeating_window_reopens_every_period(elapsed: float, expected: FaultType | None) -> None:
    s = spec(windows=[{"fault": "server_error", "startS": 10, "durationS": 5, "everyS": 60}])
    assert decide(s, elapsed_s=elapsed) is expected


def test_windows_are_checked_in_order_before_fail_first_and_rates() -> None:
    s = spec(
        windows=[{"fault": "overloaded", "durationS": 10}, {"fault": "server_error", "durationS": 20}],
        failFirst={"attempts": 1, "fault": "quota"},
        rates={"rate_limit": 1.0},
    )
    assert decide(s, elapsed_s=5) is FaultType.OVERLOADED
    assert decide(s, elapsed_s=15) is FaultType.SERVER_ERROR
    assert decide(s, elapsed_s=25, attempt=0) is FaultType.QUOTA
    assert decide(s, elapsed_s=25, attempt=1) is FaultType.RATE_LIMIT


def test_fail_first_fails_exactly_n_attempts_then_succeeds() -> None:
    s = spec(failFirst={"attempts": 3, "fault": "overloaded"})
    assert [decide(s, attempt=a) for a in range(5)] == [FaultType.OVERLOADED] * 3 + [None, None]


def test_request_key_prefers_the_client_request_id_unless_keyed_by_conversation() -> None:
    with_id = req(client_request_id="abc")
    assert faults.request_key(spec().faults, with_id) == "rid:abc"
    assert faults.request_key(spec().faults, req()).startswith("conv:")
    by_conv = spec(failFirst={"attempts": 1, "key": "conversation"}).faults
    assert faults.request_key(by_conv, with_id) == faults.request_key(by_conv, req())


def test_conversation_id_depends_on_messages_and_model_only() -> None:
    assert faults.conversation_id(req("a")) == faults.conversation_id(req("a", stream=True, max_tokens=5))
    assert faults.conversation_id(req("a")) != faults.conversation_id(req("b"))
    other_model = GenerationRequest(
        provider="openai", operation="chat", model="n", messages=(Message("user", "a"),)
    )
    assert faults.conversation_id(req("a")) != faults.conversation_id(other_model)


def test_decisions_are_a_pure_function_of_seed_key_and_attempt() -> None:
    s = spec(rates={"server_error": 0.3, "disconnect": 0.2})
    keys = [f"k{i}" for i in range(300)]
    first = [decide(s, key=k, attempt=a, seed=5) for k in keys for a in range(2)]
    again = [decide(s, key=k, attempt=a, seed=5) for k in reversed(keys) for a in reversed(range(2))]
    assert first == list(reversed(again))  # same fate regardless of order (no shared random stream)
    other_seed = [decide(s, key=k, attempt=a, seed=6) for k in keys for a in range(2)]
    assert first != other_seed


def test_stream_faults_carry_after_tokens_and_retry_faults_carry_retry_after() -> None:
    s = spec(params={"afterTokens": 7, "retryAfterS": 3, "slowStreamFactor": 4, "timeoutS": 9})
    cut = faults.decide(s, req(), elapsed_s=0, now_unix=0.0, attempt=0, forced=FaultType.DISCONNECT, seed=1)
    limited = faults.decide(
        s, req(), elapsed_s=0, now_unix=0.0, attempt=0, forced=FaultType.RATE_LIMIT, seed=1
    )
    failed = faults.decide(
        s, req(), elapsed_s=0, now_unix=0.0, attempt=0, forced=FaultType.SERVER_ERROR, seed=1
    )
    slow = faults.decide(s, req(), elapsed_s=0, now_unix=0.0, attempt=0, forced=FaultType.SLOW_STREAM, seed=1)
    stall = faults.decide(s, req(), elapsed_s=0, now_unix=0.0, attempt=0, forced=FaultType.TIMEOUT, seed=1)
    assert cut is not None and cut.after_tokens == 7 and cut.retry_after_s is None
    assert limited is not None and limited.retry_after_s == 3 and limited.after_tokens == 0
    assert failed is not None and failed.retry_after_s is None
    assert slow is not None and slow.detail["factor"] == 4
    assert stall is not None and stall.detail["stall_s"] == 9


def test_parse_forced_accepts_known_names_and_names_the_choices_otherwise() -> None:
    assert faults.parse_forced(" Rate_Limit ") is FaultType.RATE_LIMIT
    assert faults.parse_forced(None) is None and faults.parse_forced("") is None
    with pytest.raises(ValueError, match="x-llmsim-fault: unknown fault 'boom'; expected one of: rate_limit"):
        faults.parse_forced("boom")


def binomial_bounds(n: int, p: float, alpha: float = 1e-4) -> tuple[int, int]:
    """Counts outside [lo, hi] have probability < alpha under Binomial(n, p)."""
    return int(stats.binom.ppf(alpha / 2, n, p)), int(stats.binom.isf(alpha / 2, n, p))


def test_observed_rates_match_the_configured_ones_within_a_binomial_bound() -> None:
    rates = {"rate_limit": 0.05, "server_error": 0.02, "disconnect": 0.1, "slow_stream": 0.2}
    s = spec(rates=rates)
    n = 20_000
    seen: dict[FaultType | None, int] = {}
    for i in range(n):
        fault = decide(s, key=f"conv:{i}", seed=42)
        seen[fault] = seen.get(fault, 0) + 1
    for name, p in rates.items():
        lo, hi = binomial_bounds(n, p)
        assert lo <= seen.get(FaultType(name), 0) <= hi, (name, seen)
    lo, hi = binomial_bounds(n, 1 - sum(rates.values()))
    assert lo <= seen.get(None, 0) <= hi
    assert set(seen) <= {None, *map(FaultType, rates)}


def test_repeated_attempts_of_one_request_also_follow_the_rate() -> None:
    s = spec(rates={"overloaded": 0.25})
    n = 4000
    hits = sum(decide(s, key="conv:same", attempt=a, seed=3) is FaultType.OVERLOADED for a in range(n))
    lo, hi = binomial_bounds(n, 0.25)
    assert lo <= hits <= hi


def test_a_window_probability_hits_that_share_of_requests() -> None:
    s = spec(windows=[{"fault": "overloaded", "durationS": 100, "probability": 0.3}])
    n = 5000
    hits = sum(decide(s, elapsed_s=50, key=f"rid:{i}") is FaultType.OVERLOADED for i in range(n))
    lo, hi = binomial_bounds(n, 0.3)
    assert lo <= hits <= hi


def test_unit_is_uniform_enough() -> None:
    values = [faults.unit(9, f"k{i}", 0, "rates") for i in range(5000)]
    assert all(0.0 <= v < 1.0 for v in values)
    assert stats.kstest(values, "uniform").pvalue > 1e-4
    assert math.isclose(sum(values) / len(values), 0.5, abs_tol=0.02)
