"""Token-bucket arithmetic: admission, refill, the numbers the headers report, Go durations."""

from __future__ import annotations

import pytest

from llmsim.api.faults import RateLimits
from llmsim.simulation import ratelimit
from llmsim.simulation.ratelimit import BucketLimits, BucketState
from llmsim.simulation.request import GenerationRequest, Message


def limits(rpm: int | None = 60, tpm: int | None = None, burst_s: float = 60) -> BucketLimits:
    return BucketLimits.of(RateLimits(requests_per_minute=rpm, tokens_per_minute=tpm, burst_s=burst_s))


def test_a_full_bucket_admits_its_capacity_then_rejects() -> None:
    lim = limits(rpm=3)
    state: BucketState | None = None
    allowed = []
    for _ in range(4):
        state, verdict = ratelimit.take(state, lim, 0, now=100.0)
        allowed.append(verdict.allowed)
    assert allowed == [True, True, True, False]


def test_the_verdict_reports_remaining_reset_and_retry_after() -> None:
    lim = limits(rpm=60)  # one request per second, 60 at most
    _, verdict = ratelimit.take(None, lim, 0, now=0.0)
    assert verdict.allowed and verdict.limit_requests == 60 and verdict.remaining_requests == 59
    assert verdict.reset_requests_s == pytest.approx(1.0) and verdict.retry_after_s == 0
    drained = BucketState(requests=0.25, tokens=0.0, at=0.0)
    _, rejected = ratelimit.take(drained, lim, 0, now=0.0)
    assert not rejected.allowed and rejected.limited_by == "requests"
    assert rejected.retry_after_s == pytest.approx(0.75)
    assert rejected.remaining_requests == 0 and rejected.reset_requests_s == pytest.approx(59.75)


def test_waiting_the_retry_after_is_exactly_enough() -> None:
    lim = limits(rpm=120, burst_s=0.5)  # capacity 1, refills 2/s
    state, first = ratelimit.take(None, lim, 0, now=10.0)
    state, second = ratelimit.take(state, lim, 0, now=10.1)
    assert first.allowed and not second.allowed
    assert second.retry_after_s == pytest.approx(0.4)
    _, early = ratelimit.take(state, lim, 0, now=10.1 + second.retry_after_s - 0.01)
    state, on_time = ratelimit.take(state, lim, 0, now=10.1 + second.retry_after_s)
    assert not early.allowed and on_time.allowed


def test_a_rejected_request_takes_nothing() -> None:
    lim = limits(rpm=60, tpm=100)
    state = BucketState(requests=5.0, tokens=10.0, at=0.0)
    after, verdict = ratelimit.take(state, lim, 50, now=0.0)
    assert not verdict.allowed and verdict.limited_by == "tokens"
    assert after == state
    assert verdict.retry_after_s == pytest.approx(40 / (100 / 60))


def test_tokens_and_requests_are_both_debited() -> None:
    lim = limits(rpm=60, tpm=1000)
    after, verdict = ratelimit.take(None, lim, 300, now=0.0)
    assert verdict.allowed and verdict.remaining_tokens == 700 and verdict.remaining_requests == 59
    assert after.tokens == 700 and after.requests == 59
    assert verdict.reset_tokens_s == pytest.approx(300 / (1000 / 60))


def test_the_longer_wait_decides_which_limit_is_reported() -> None:
    lim = limits(rpm=60, tpm=600)
    empty = BucketState(requests=0.0, tokens=0.0, at=0.0)
    _, verdict = ratelimit.take(empty, lim, 100, now=0.0)
    assert verdict.limited_by == "tokens" and verdict.retry_after_s == pytest.approx(10.0)


def test_a_request_larger_than_the_bucket_is_flagged_too_large() -> None:
    lim = limits(rpm=None, tpm=100)
    _, verdict = ratelimit.take(None, lim, 500, now=0.0)
    assert not verdict.allowed and verdict.too_large
    assert verdict.retry_after_s == 0  # the bucket is full: waiting cannot help


def test_refill_is_capped_and_time_never_runs_backwards() -> None:
    lim = limits(rpm=60)
    state = BucketState(requests=0.0, tokens=0.0, at=100.0)
    assert ratelimit.refill(state, lim, 1000.0).requests == 60
    behind = ratelimit.refill(state, lim, 90.0)  # a replica whose clock lags
    assert behind.requests == 0.0 and behind.at == 100.0


def test_unlimited_dimensions_report_nothing() -> None:
    _, verdict = ratelimit.take(None, limits(rpm=None, tpm=1000), 10, now=0.0)
    assert (
        verdict.limit_requests is None
        and verdict.remaining_requests is None
        and verdict.reset_requests_s is None
    )


def test_burst_must_hold_at_least_one_request() -> None:
    with pytest.raises(ValueError, match=r"burstS: 0\.5 s of 60 requests/minute holds less than one request"):
        RateLimits(requests_per_minute=60, burst_s=0.5)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.0061, "7ms"),
        (0.5, "500ms"),
        (1, "1s"),
        (1.5, "1.5s"),
        (360, "6m0s"),
        (3723.4, "1h2m3.4s"),
        (59.9999, "1m0s"),
    ],
)
def test_go_durations_match_openai_reset_headers(seconds: float, text: str) -> None:
    assert ratelimit.go_duration(seconds) == text


def test_request_cost_is_input_plus_max_output_tokens() -> None:
    r = GenerationRequest(
        provider="openai", operation="chat", model="m", messages=(Message("user", "hi there"),)
    )
    with_max = GenerationRequest(**{**r.__dict__, "max_tokens": 100})
    assert ratelimit.request_cost(with_max) == ratelimit.request_cost(r) + 100


def test_bucket_key_follows_key_by() -> None:
    r = GenerationRequest(provider="openai", operation="chat", model="m", api_key_id="abc")
    assert ratelimit.bucket_key(RateLimits(requests_per_minute=1), r) == "openai|key=abc|model=m"
    assert ratelimit.bucket_key(RateLimits(requests_per_minute=1, key_by=["model"]), r) == "openai|model=m"
